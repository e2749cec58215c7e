"""What a restore asks a TiDB over SQL: does the target hold anything BR would refuse to restore over?

Through Airflow's MySQL provider (`MySqlHook`, an Airflow `mysql` connection per cluster: `sql_conn_id`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..planning.drill import GcState, TableSum, fingerprint_sql, select_tables
from ..tso import dt_to_tso

# TiDB's memory and system schemas (`IsMemOrSysDB`): never user data.
SYSTEM_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema", "metrics_schema"})
MAX_LISTED = 10  # BR lists up to ten tables, then "..."


def user_objects(databases: Iterable[str], tables: Iterable[tuple[str, str]]) -> list[str]:
    """BR's rule for "not an empty cluster" (`AssertUserDBsEmpty` in br/pkg/restore/misc.go): every table
    outside the system schemas, and every database outside them without tables except the empty `test`
    database a fresh TiDB creates. As `db.table` (or `db`), sorted."""
    by_db: dict[str, list[str]] = {}
    for db in databases:
        if db.lower() not in SYSTEM_DATABASES:
            by_db.setdefault(db, [])
    for db, table in tables:
        if db.lower() not in SYSTEM_DATABASES:
            by_db.setdefault(db, []).append(table)
    found = []
    for db, names in sorted(by_db.items()):
        if names:
            found.extend(f"{db}.{t}" for t in sorted(names))
        elif db.lower() != "test":
            found.append(db)
    return found


def listed(objects: list[str], limit: int = MAX_LISTED) -> str:
    shown = objects[:limit]
    return ", ".join(shown) + (f" and {len(objects) - limit} more" if len(objects) > limit else "")


def target_user_objects(conn_id: str) -> list[str]:
    """The user databases and tables of the TiDB behind `conn_id` (raises what the driver raises)."""
    hook = _hook(conn_id)
    databases = [row[0] for row in hook.get_records("SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA")]
    tables = [(row[0], row[1]) for row in hook.get_records(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES")]
    return user_objects(databases, tables)


def connection_login(conn_id: str) -> str | None:
    """The user name the Airflow connection logs in with (no password is read)."""
    return _hook(conn_id).get_connection(conn_id).login


# --- restore drills: GC, table checksums, emptying a scratch cluster --------------------------------------

# TiDB refuses reads below the GC safe point: 9006 (GC life time is shorter than the read) and 8055
# (snapshot is older than the safe point, on SET @@tidb_snapshot).
GC_ERRORS = frozenset({9006, 8055})
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class SourceNotReadable(Exception):
    """The source cannot be read at the asked time any more: the GC has passed it."""


def parse_go_duration(text: str) -> timedelta:
    """`10m0s`, `1h30m0s`, `24h0m0s`: how TiDB prints tidb_gc_life_time (Go's time.Duration.String)."""
    value = text.strip()
    parts = _GO_DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a Go duration: {text!r}")
    return timedelta(seconds=sum(float(n) * _GO_UNITS[u] for n, u in parts))


def parse_gc_time(text: str) -> datetime:
    """The GC worker's times in mysql.tidb: Go layout `20060102-15:04:05.000 -0700` (tikvutil.GCTimeFormat)."""
    value = text.strip()
    for layout in ("%Y%m%d-%H:%M:%S.%f %z", "%Y%m%d-%H:%M:%S %z"):
        try:
            return datetime.strptime(value, layout)
        except ValueError:
            continue
    raise ValueError(f"not a TiDB GC time (20060102-15:04:05.000 -0700): {text!r}")


def _hook(conn_id: str) -> Any:
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    return MySqlHook(mysql_conn_id=conn_id)


def gc_state(conn_id: str) -> Any:
    """The source's GC life time and safe point, as TiDB's GC worker keeps them (mysql.tidb) and the
    variable says (tidb_gc_life_time)."""
    hook = _hook(conn_id)
    life = hook.get_first("SELECT @@GLOBAL.tidb_gc_life_time")
    row = hook.get_first("SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_safe_point'")
    if not life or not row:
        raise ValueError(f"connection {conn_id!r}: TiDB did not report tidb_gc_life_time and "
                         "mysql.tidb.tikv_gc_safe_point")
    return GcState(life_time=parse_go_duration(str(life[0])), safe_point_ts=dt_to_tso(parse_gc_time(str(row[0]))))


def _error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def table_checksums(conn_id: str, rules: list[str], at_ts: int | None = None, *, parallel: int = 4,
                    timeout: float | None = None) -> dict[str, Any]:
    """`db.table` -> TableSum for each user table the rules select, read now or as of `at_ts`: ADMIN CHECKSUM
    TABLE, the table ID, and the row fingerprint (`fingerprint_sql`), up to `parallel` tables at once, each on
    its own connection, within `timeout` seconds per table (a table that takes longer keeps no fingerprint,
    and says why).

    Raises SourceNotReadable when `at_ts` is below the GC safe point."""
    conn = _hook(conn_id).get_conn()
    try:
        cursor = conn.cursor()
        try:
            if at_ts is not None:
                cursor.execute(f"SET @@tidb_snapshot = '{int(at_ts)}'")
            cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TIDB_TABLE_ID FROM INFORMATION_SCHEMA.TABLES")
            found = {f"{db}.{name}": table_id for db, name, kind, table_id in cursor.fetchall()
                     if str(kind).upper() == "BASE TABLE"}
            names = select_tables(found, rules)
            sums: dict[str, Any] = {}
            if names:
                listed_names = ", ".join(quote_name(n.split(".", 1)[0]) + "." + quote_name(n.split(".", 1)[1])
                                         for n in names)
                cursor.execute(f"ADMIN CHECKSUM TABLE {listed_names}")
                for db, table, crc, kvs, size in cursor.fetchall():
                    key = f"{db}.{table}"
                    match = next((n for n in names if n.lower() == key.lower()), key)
                    sums[match] = TableSum(int(crc), int(kvs), int(size), found.get(match))
                cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
                               "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")
                columns: dict[str, list[str]] = {}
                for db, table, column in cursor.fetchall():
                    columns.setdefault(f"{db}.{table}".lower(), []).append(str(column))
            if sums:
                fingerprints = _fingerprints(conn_id, {n: columns.get(n.lower(), []) for n in sums}, at_ts,
                                             parallel, timeout)
                sums = {n: replace(sums[n], **fingerprints[n]) for n in sums}
            return sums
        finally:
            cursor.close()
    except Exception as exc:
        if at_ts is not None and _error_code(exc) in GC_ERRORS:
            raise SourceNotReadable(str(exc)) from exc
        raise
    finally:
        conn.close()


def _fingerprint(conn_id: str, name: str, columns: list[str], at_ts: int | None) -> tuple[int, int]:
    """(rows, BIT_XOR of CRC32) of one table, on its own connection, read at the exact TSO when given."""
    conn = _hook(conn_id).get_conn()
    try:
        cursor = conn.cursor()
        try:
            if at_ts is not None:
                cursor.execute(f"SET @@tidb_snapshot = '{int(at_ts)}'")
            database, table = name.split(".", 1)
            cursor.execute(fingerprint_sql(database, table, columns))
            count, xor = cursor.fetchone()
            return int(count), int(xor or 0)
        finally:
            cursor.close()
    finally:
        conn.close()


def _fingerprints(conn_id: str, tables: dict[str, list[str]], at_ts: int | None, parallel: int,
                  timeout: float | None) -> dict[str, dict[str, Any]]:
    """TableSum fields per table: rows and rows_crc32_xor, or fingerprint_problem. A GC error on any table
    is raised (the whole read is then not at T); others are kept per table."""
    results: dict[str, dict[str, Any]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="fingerprint")
    try:
        futures = {name: pool.submit(_fingerprint, conn_id, name, cols, at_ts) for name, cols in tables.items()}
        started = time.monotonic()
        for position, (name, future) in enumerate(futures.items()):
            # Tables run `parallel` at a time: a table's timeout starts when the ones before it could have ended.
            wave = 1 + position // max(1, parallel)
            left = None if timeout is None else max(0.0, timeout * wave - (time.monotonic() - started))
            try:
                rows, xor = future.result(timeout=left)
                results[name] = {"rows": rows, "rows_crc32_xor": xor}
            except FuturesTimeout:
                results[name] = {"fingerprint_problem": f"the row fingerprint took longer than {timeout:g} s"}
            except Exception as exc:
                if at_ts is not None and _error_code(exc) in GC_ERRORS:
                    raise
                results[name] = {"fingerprint_problem": f"the row fingerprint failed: {type(exc).__name__}: {exc}"}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def drop_user_databases(conn_id: str) -> list[str]:
    """DROP every user database of the TiDB behind `conn_id`; returns what it dropped. Only for a cluster
    the configuration marks `scratch: true` (the caller checks)."""
    hook = _hook(conn_id)
    databases = [row[0] for row in hook.get_records("SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA")]
    tables = [(row[0], row[1]) for row in hook.get_records(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES")]
    dropped = sorted({o.split(".", 1)[0] for o in user_objects(databases, tables)})
    for db in dropped:
        hook.run(f"DROP DATABASE IF EXISTS {quote_name(db)}")
    return dropped


def drop_tables(conn_id: str, names: list[str]) -> list[str]:
    """DROP TABLE IF EXISTS each `db.table` of `names` on the TiDB behind `conn_id`; returns them. Only for a
    cluster the configuration marks `scratch: true`, and only tables a drill restored (the caller checks)."""
    hook = _hook(conn_id)
    for name in names:
        db, _, table = name.partition(".")
        hook.run(f"DROP TABLE IF EXISTS {quote_name(db)}.{quote_name(table)}")
    return list(names)


# --- drills: what the comparison will read, and the source's own now -----------------------------------------

def source_now_ts(conn_id: str) -> int:
    """The source's current TSO (TIDB_CURRENT_TSO()): its GC and T are measured on its clock, not the worker's."""
    row = _hook(conn_id).get_first("SELECT TIDB_CURRENT_TSO()")
    if not row or row[0] is None:
        raise ValueError(f"connection {conn_id!r}: TiDB did not answer TIDB_CURRENT_TSO()")
    return int(row[0])


def own_grants(conn_id: str) -> list[str]:
    """`SHOW GRANTS`: the connection's account's grant lines, as TiDB shows them (check)."""
    return [str(row[0]) for row in _hook(conn_id).get_records("SHOW GRANTS")]


def current_version_and_tso(conn_id: str) -> tuple[str, int]:
    """`SELECT VERSION(), TIDB_CURRENT_TSO()` in one round trip: who answers, and PD's clock now (check)."""
    row = _hook(conn_id).get_first("SELECT VERSION(), TIDB_CURRENT_TSO()")
    if not row or row[1] is None:
        raise ValueError(f"connection {conn_id!r}: TiDB did not answer SELECT VERSION(), TIDB_CURRENT_TSO()")
    return str(row[0]), int(row[1])


def table_sizes(conn_id: str, rules: list[str]) -> dict[str, int]:
    """`db.table` -> DATA_LENGTH + INDEX_LENGTH (bytes, TiDB's estimate) of the user tables the rules select."""
    records = _hook(conn_id).get_records(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, DATA_LENGTH, INDEX_LENGTH FROM INFORMATION_SCHEMA.TABLES")
    found = {f"{db}.{name}": int(data or 0) + int(index or 0) for db, name, kind, data, index in records
             if str(kind).upper() == "BASE TABLE"}
    return {name: found[name] for name in select_tables(found, rules)}


# --- a filtered restore: the source's tables at T, the target's TiDB ----------------------------------------

def tables_at(conn_id: str, at_ts: int) -> list[str]:
    """The user base tables (`db.table`) of the TiDB behind `conn_id` as of TSO `at_ts` (`@@tidb_snapshot`), sorted.

    Raises SourceNotReadable when `at_ts` is below the GC safe point."""
    conn = _hook(conn_id).get_conn()
    try:
        cursor = conn.cursor()
        try:
            cursor.execute(f"SET @@tidb_snapshot = '{int(at_ts)}'")
            cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES")
            return sorted(f"{db}.{name}" for db, name, kind in cursor.fetchall()
                          if str(kind).upper() == "BASE TABLE" and str(db).lower() not in SYSTEM_DATABASES)
        finally:
            cursor.close()
    except Exception as exc:
        if _error_code(exc) in GC_ERRORS:
            raise SourceNotReadable(str(exc)) from exc
        raise
    finally:
        conn.close()


def server_version(conn_id: str) -> str:
    """`SELECT VERSION()`: TiDB answers '8.0.11-TiDB-v8.5.5'."""
    row = _hook(conn_id).get_first("SELECT VERSION()")
    if not row or row[0] is None:
        raise ValueError(f"connection {conn_id!r}: TiDB did not answer SELECT VERSION()")
    return str(row[0])
