"""Snapshot (full) backups on storage: one prefix per backup, `backupmeta` written last."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..data.mvcc import Row
from .base import Location, ObjectNotFound
from .br_common import (
    BACKUPMETA,
    BRError,
    dump_json,
    dump_lines,
    load_json,
    load_lines,
    sha256_hex,
    store_of,
    ts_text,
)

LOCK_FILE = "backup.lock"
LOCK_TEXT = b"DO NOT DELETE\nThis file exists to remind other backup jobs won't use this path"
ROWS_PER_FILE = 4096  # one SST per "region" of this many rows
SYSTEM_STORE = 1  # the store leading the region of the `mysql` schema


@dataclass(frozen=True)
class FileMeta:
    name: str
    size: int
    sha256: str
    total_kvs: int
    # System tables (mysql.*): every full backup carries them, a restore leaves them out (as BR does
    # without --with-sys-table). They are why even an empty cluster's backup has an SST and a size.
    system: bool = False


@dataclass(frozen=True)
class SnapshotMeta:
    cluster_id: int
    start_version: int
    end_version: int  # the BackupTS (status.commitTs)
    files: tuple[FileMeta, ...]
    backup_size: int
    total_kvs: int

    @property
    def commit_ts(self) -> int:
        return self.end_version


@dataclass(frozen=True)
class SnapshotInfo:
    size: int  # bytes of all SSTs, system tables included (status.backupSize)
    file_count: int
    total_kvs: int
    commit_ts: int


def write_snapshot(
    loc: Location,
    rows: dict[str, Row],
    *,
    commit_ts: int,
    cluster_id: int,
    stores: int = 3,
    rows_per_file: int = ROWS_PER_FILE,
    stop_before_meta: bool = False,
) -> SnapshotInfo:
    """Write a full backup of `rows` as of `commit_ts`.

    Order matters as in BR: backup.lock, then data files, then backupmeta, so a backup that stops
    half-way (`stop_before_meta` simulates that) leaves no backupmeta and is not a backup.
    """
    _check_unused(loc)
    loc.put(LOCK_FILE, LOCK_TEXT)
    files = _data_files(rows, stores, rows_per_file)
    system_rows = _system_rows(commit_ts)
    system = dump_lines({"k": k, "v": v} for k, v in system_rows.items())
    system_name = f"{SYSTEM_STORE}/0_{sha256_hex(system)[:16]}_write.sst"
    loc.put_many({system_name: system, **{name: content for name, (content, _) in files.items()}})
    metas = [FileMeta(system_name, len(system), sha256_hex(system), len(system_rows), system=True)]
    metas += [
        FileMeta(name=name, size=len(content), sha256=sha256_hex(content), total_kvs=count)
        for name, (content, count) in sorted(files.items())
    ]
    size = sum(meta.size for meta in metas)
    if not stop_before_meta:
        loc.put(BACKUPMETA, dump_json(_meta_json(cluster_id, commit_ts, metas, size, len(rows))))
    return SnapshotInfo(size=size, file_count=len(metas), total_kvs=len(rows), commit_ts=commit_ts)


def snapshot_meta(loc: Location) -> SnapshotMeta | None:
    """The backup's metadata, or None when there is no finished snapshot backup at this prefix."""
    try:
        raw = load_json(loc.get(BACKUPMETA), f"{loc.url}{BACKUPMETA}")
    except ObjectNotFound:
        return None
    if int(raw.get("end_version", 0)) <= 0:
        return None  # a log backup's backupmeta
    return _parse_meta(raw)


def read_snapshot(loc: Location, *, concurrency: int = 16) -> tuple[SnapshotMeta, dict[str, Row]]:
    """Load and verify every data file; any missing or altered file fails the restore."""
    meta = snapshot_meta(loc)
    if meta is None:
        if loc.exists(BACKUPMETA):
            raise BRError(f"{loc.url} holds a log backup, not a snapshot backup")
        raise BRError(
            f"failed to read backupmeta in {loc.url}: the file does not exist "
            "(the backup did not finish, or the path is wrong)",
            code="ErrStorageInvalidConfig",
            cause="invalid external storage config",
        )
    try:
        contents = loc.get_many([file.name for file in meta.files], concurrency=concurrency)
    except ObjectNotFound as exc:
        raise BRError(
            f"backup file {exc.url} listed in backupmeta is missing",
            code="ErrRestoreInvalidBackup",
            cause="invalid restore backup",
        ) from exc
    rows: dict[str, Row] = {}
    for file in meta.files:
        content = contents[file.name]
        if len(content) != file.size or sha256_hex(content) != file.sha256:
            raise BRError(
                f"checksum mismatch for {loc.url}{file.name}: "
                f"expected size {file.size} sha256 {file.sha256}, "
                f"got size {len(content)} sha256 {sha256_hex(content)}",
                code="ErrRestoreChecksumMismatch",
                cause="restore checksum mismatch",
            )
        if file.system:
            continue
        for record in load_lines(content, f"{loc.url}{file.name}"):
            rows[record["k"]] = record["v"]
    if len(rows) != meta.total_kvs:
        raise BRError(
            f"backup at {loc.url} holds {len(rows)} rows but backupmeta says {meta.total_kvs}",
            code="ErrRestoreChecksumMismatch",
            cause="restore checksum mismatch",
        )
    return meta, rows


def _check_unused(loc: Location) -> None:
    names = {info.rel for info in loc.list()}
    if BACKUPMETA in names:
        raise BRError(
            f"backup meta file exists in {loc.url}, there may be some backup files in the path already, "
            "please specify a correct backup directory!"
        )
    if LOCK_FILE in names and any(name.endswith(".sst") for name in names):
        raise BRError(
            f"backup lock file and sst file exist in {loc.url}, there are some backup files in the path "
            "already, but hasn't checkpoint metadata, please specify a correct backup directory!"
        )


def _data_files(rows: dict[str, Row], stores: int, rows_per_file: int) -> dict[str, tuple[bytes, int]]:
    """Rows go to their store, then into key-range files (SSTs) of at most rows_per_file rows."""
    by_store: dict[int, list[str]] = {}
    for key in sorted(rows):
        by_store.setdefault(store_of(key, stores), []).append(key)
    files: dict[str, tuple[bytes, int]] = {}
    for store, keys in sorted(by_store.items()):
        for index, start in enumerate(range(0, len(keys), rows_per_file), start=1):
            chunk = keys[start : start + rows_per_file]
            content = dump_lines({"k": key, "v": rows[key]} for key in chunk)
            files[f"{store}/{index}_{sha256_hex(content)[:16]}_write.sst"] = (content, len(chunk))
    return files


def _system_rows(commit_ts: int) -> dict[str, Row]:
    gc_safe_point = ts_text(max(commit_ts - (10 * 60_000 << 18), 0))
    return {
        "mysql/tidb/bootstrapped": {"VARIABLE_NAME": "bootstrapped", "VARIABLE_VALUE": "True"},
        "mysql/tidb/tikv_gc_safe_point": {
            "VARIABLE_NAME": "tikv_gc_safe_point",
            "VARIABLE_VALUE": gc_safe_point,
        },
        "mysql/user/%/root": {"Host": "%", "User": "root", "plugin": "mysql_native_password"},
    }


def _meta_json(cluster_id: int, commit_ts: int, files: list[FileMeta], size: int, kvs: int) -> dict[str, Any]:
    return {
        "format": "tidb-sandbox/backupmeta-v1 (JSON model of brpb.BackupMeta)",
        "cluster_id": cluster_id,
        "start_version": 0,
        "end_version": commit_ts,
        "backup_size": size,
        "total_kvs": kvs,
        "files": [asdict(file) for file in files],
    }


def _parse_meta(raw: dict[str, Any]) -> SnapshotMeta:
    files = tuple(
        FileMeta(
            name=f["name"],
            size=int(f["size"]),
            sha256=f["sha256"],
            total_kvs=int(f["total_kvs"]),
            system=bool(f.get("system", False)),
        )
        for f in raw.get("files", [])
    )
    return SnapshotMeta(
        cluster_id=int(raw["cluster_id"]),
        start_version=int(raw.get("start_version", 0)),
        end_version=int(raw["end_version"]),
        files=files,
        backup_size=int(raw.get("backup_size", 0)),
        total_kvs=int(raw.get("total_kvs", sum(f.total_kvs for f in files if not f.system))),
    )
