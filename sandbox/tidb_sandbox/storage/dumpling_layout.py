"""What Dumpling writes and TiDB Lightning reads: SQL files of one consistent snapshot, archived as the
backup manager uploads them.

Files (Dumpling's SQL output, names as in pingcap/tidb `dumpling/tests/*/run.sh`):
- `metadata`: the start and finish times and, under `SHOW MASTER STATUS:`, `Pos: <snapshot TSO>`;
- `<db>-schema-create.sql`: `CREATE DATABASE`;
- `<db>.<table>-schema.sql`: `CREATE TABLE`;
- `<db>.<table>.<index:09d>.sql`: `INSERT` statements, a new file every `--rows` rows.

The backup manager dumps into `/backup/<bucket>/<prefix>/backup-<RFC3339>`, tars and gzips that folder into
`backup-<RFC3339>.tgz` (entries under `backup-<RFC3339>/`) and uploads it as one object
(`cmd/backup-manager/app/export/export.go`, `archiveBackupData`, release-1.6); the import side downloads it,
unpacks it and reads the commit TS from `metadata` the same way (`GetCommitTsFromMetadata`,
`cmd/backup-manager/app/util/util.go`).
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..data.schema import TableDef, database_definition, parse_key, row_key, table_key

METADATA = "metadata"
ARCHIVE_EXTENSION = ".tgz"
INDEX_DIGITS = 9
_HEAD = "/*!40101 SET NAMES binary*/;\n"


def backup_folder(started: datetime) -> str:
    """`backup-<time.RFC3339>` of the Job's start, UTC, whole seconds (export.go `getBackupRelativePath`)."""
    return "backup-" + started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{text}'"


def metadata_text(ts: int, started: datetime, finished: datetime) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    return (f"Started dump at: {started.strftime(fmt)}\nSHOW MASTER STATUS:\n\t\tLog: tidb-binlog\n"
            f"\t\tPos: {ts}\n\t\tGTID:\n\nFinished dump at: {finished.strftime(fmt)}\n")


def commit_ts_from_metadata(text: str) -> str:
    """`GetCommitTsFromMetadata`: the value after ':' on the first line containing `Pos`."""
    for line in text.split("\n"):
        if "Pos" not in line:
            continue
        parts = line.split(":")
        if len(parts) != 2:
            raise ValueError(f"parse mydumper's metadata file failed, str: {line}")
        return parts[1].strip()
    return ""


def _create_table(table: TableDef) -> str:
    lines = []
    for column in table.columns:
        null = "NOT NULL" if column.name == "id" else "DEFAULT NULL"
        lines.append(f"  {_quote_ident(column.name)} {column.type} {null}")
    lines.append("  PRIMARY KEY (`id`) /*T![clustered_index] CLUSTERED */")
    body = ",\n".join(lines)
    return (f"{_HEAD}CREATE TABLE {_quote_ident(table.name)} (\n{body}\n) "
            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;\n")


def dump_files(rows: dict[str, Any], ts: int, started: datetime, finished: datetime,
               rows_per_file: int = 0) -> dict[str, bytes]:
    """The files Dumpling writes for `rows` (MVCC keys of one read at `ts`), by file name."""
    files: dict[str, bytes] = {METADATA: metadata_text(ts, started, finished).encode()}
    tables: dict[tuple[str, str], TableDef] = {}
    data: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for key, value in rows.items():
        parts = parse_key(key)
        if parts is None:
            continue
        if parts.table is None:
            files[f"{parts.database}-schema-create.sql"] = (
                f"{_HEAD}CREATE DATABASE {_quote_ident(parts.database)} "
                f"/*!40100 DEFAULT CHARACTER SET {value.get('charset', 'utf8mb4')} */;\n").encode()
        elif parts.handle is None:
            tables[(parts.database, parts.table)] = TableDef.from_definition(parts.database, parts.table, value)
        else:
            data.setdefault((parts.database, parts.table), []).append((parts.handle, value))
    for (db, name), table in tables.items():
        files[f"{db}.{name}-schema.sql"] = _create_table(table).encode()
        table_rows = sorted(data.get((db, name), []), key=lambda item: item[0])
        chunk = rows_per_file if rows_per_file > 0 else max(len(table_rows), 1)
        columns = [c.name for c in table.columns]
        for index, start in enumerate(range(0, len(table_rows), chunk)):
            values = ",\n".join("(" + ",".join(_literal(row.get(c)) for c in columns) + ")"
                                for _, row in table_rows[start:start + chunk])
            files[f"{db}.{name}.{index:0{INDEX_DIGITS}d}.sql"] = (
                f"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n{_HEAD}"
                f"INSERT INTO {_quote_ident(name)} VALUES\n{values};\n").encode()
    return files


def archive(folder: str, files: dict[str, bytes]) -> bytes:
    """A gzipped tar of the dump folder, entries `<folder>/<file>` (what `archiveBackupData` makes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def unarchive(data: bytes, folder: str) -> dict[str, bytes]:
    """The files of `<folder>/` in the archive, by name (ValueError on a broken archive)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith(folder + "/"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[member.name[len(folder) + 1:]] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"unarchive backup data failed, err: {err}") from err
    return found


# -- reading the files back (TiDB Lightning, tidb backend) ------------------------------------------
_COLUMN = re.compile(r"^\s+`((?:[^`]|``)+)`\s+(\S+)")
_DATA_FILE = re.compile(r"^(?P<db>[^.]+)\.(?P<table>[^.]+)\.(?P<index>\d+)\.sql$")
_SCHEMA_FILE = re.compile(r"^(?P<db>[^.]+)\.(?P<table>[^.]+)-schema\.sql$")
_DB_FILE = re.compile(r"^(?P<db>[^.]+)-schema-create\.sql$")


def _parse_values(text: str) -> list[list[Any]]:
    """The tuples of `INSERT INTO t VALUES (..),(..);` as Python values."""
    at = text.index(" VALUES") + len(" VALUES")
    tuples: list[list[Any]] = []
    current: list[Any] | None = None
    i, n = at, len(text)
    while i < n:
        ch = text[i]
        if ch == "(":
            current = []
            i += 1
        elif ch == ")":
            if current is not None:
                tuples.append(current)
            current = None
            i += 1
        elif ch == "'":
            out, i = [], i + 1
            while text[i] != "'":
                if text[i] == "\\":
                    nxt = text[i + 1]
                    out.append({"n": "\n", "0": "\0"}.get(nxt, nxt))
                    i += 2
                else:
                    out.append(text[i])
                    i += 1
            assert current is not None
            current.append("".join(out))
            i += 1
        elif ch in ", \n\t;":
            i += 1
        else:
            j = i
            while j < n and text[j] not in ",)":
                j += 1
            token = text[i:j].strip()
            assert current is not None
            if token.upper() == "NULL":
                current.append(None)
            elif re.fullmatch(r"-?\d+", token):
                current.append(int(token))
            else:
                current.append(float(token))
            i = j
    return tuples


def _columns_of(schema_sql: str) -> list[tuple[str, str]]:
    columns = []
    for line in schema_sql.splitlines():
        match = _COLUMN.match(line)
        if match:
            columns.append((match.group(1).replace("``", "`"), match.group(2)))
    return columns


def load_dump(files: dict[str, bytes], table_ids: Iterable[int]) -> dict[str, Any]:
    """Rows (MVCC keys) that replaying the dump's SQL creates; new tables take ids from `table_ids`,
    as Lightning's CREATE TABLE gets fresh ones in the target."""
    ids = iter(table_ids)
    rows: dict[str, Any] = {}
    for name in sorted(files):
        if match := _DB_FILE.match(name):
            rows[match.group("db")] = database_definition()
    for name in sorted(files):
        if match := _SCHEMA_FILE.match(name):
            db, table = match.group("db"), match.group("table")
            columns = _columns_of(files[name].decode())
            rows.setdefault(db, database_definition())
            rows[table_key(db, table)] = {"id": next(ids), "primaryKey": "id",
                                          "columns": [{"name": c, "type": t} for c, t in columns]}
    for name in sorted(files):
        match = _DATA_FILE.match(name)
        if not match:
            continue
        db, table = match.group("db"), match.group("table")
        definition = rows.get(table_key(db, table))
        if definition is None:
            raise ValueError(f"table `{db}`.`{table}` schema not found")
        columns = [c["name"] for c in definition["columns"]]
        for values in _parse_values(files[name].decode()):
            row = dict(zip(columns, values, strict=True))
            rows[row_key(db, table, int(row["id"]))] = row
    return rows
