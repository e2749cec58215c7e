"""Log (PITR) backups on storage: one prefix per log task, laid out as TiKV and BR do.

    backupmeta                                  task start (start_version), end_version 0
    v1/<YYYYMMDD>/<HH>/<store>/<min_ts>-<uuid>.log   one file per store per flush (as TiKV writes them);
                                                the UTC date/hour is that of the file's min_ts
    v1/backupmeta/<flush>-<min>-<min>-<max>.meta  one per flush: files, their ts ranges, checksums; the name
                                                carries TSOs as 16 hex digits (BR's legacy name format:
                                                flush ts, min begin ts, min ts, max ts) so readers skip
                                                metas outside their range without fetching them
    v1/global_checkpoint/<store>.ts             8-byte little-endian TSO (BR reads LittleEndian.Uint64)
    v1_stream_trancate_safepoint.txt            decimal TSO, written by `br log truncate` (sic)
    truncating.lock                             held while a truncate runs
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..data.mvcc import Change
from ..data.tso import tso_to_dt
from .base import Location, ObjectNotFound
from .br_common import BACKUPMETA, BRError, dump_json, dump_lines, load_json, load_lines, sha256_hex, store_of

META_DIR = "v1/backupmeta/"
CHECKPOINT_DIR = "v1/global_checkpoint/"
TRUNCATE_SAFEPOINT = "v1_stream_trancate_safepoint.txt"
TRUNCATE_LOCK = "truncating.lock"
TRUNCATE_HINT = (
    "There might be another truncate task running, or a truncate task that didn't exit properly. "
    f"You may check the metadata and continue by waiting for the other task to finish or by manually "
    f"deleting the lock file {TRUNCATE_LOCK} at the external storage."
)


@dataclass(frozen=True)
class LogFile:
    path: str
    store_id: int
    min_ts: int
    max_ts: int
    length: int
    sha256: str
    count: int


@dataclass(frozen=True)
class LogMeta:
    path: str
    flush_ts: int
    store_ids: tuple[int, ...]
    min_ts: int
    max_ts: int
    files: tuple[LogFile, ...]


@dataclass(frozen=True)
class FlushInfo:
    flush_ts: int
    meta_path: str | None  # None for a flush that carried no changes
    files: int
    bytes: int
    changes: int


@dataclass(frozen=True)
class LogRange:
    """`br log metadata`: what this log backup can restore."""

    min_ts: int  # max(task start-ts, truncate safepoint)
    max_ts: int  # max(min_ts, global checkpoint)
    cluster_id: int = 0
    start_ts: int = 0
    safepoint: int = 0
    checkpoint: int = 0


@dataclass(frozen=True)
class TruncateResult:
    deleted_files: int
    deleted_bytes: int
    rewritten_metas: int
    deleted_metas: int
    safepoint: int  # the truncate safepoint after this run
    dry_run: bool = False


def start_log(loc: Location, *, start_ts: int, cluster_id: int, task_name: str) -> None:
    """`br log start`: record the task in the prefix's backupmeta (start_version only)."""
    existing = _backupmeta(loc)
    if existing is not None:
        if int(existing.get("end_version", 0)) > 0:
            raise BRError(f"the storage {loc.url} has been used for full backup")
        if int(existing.get("cluster_id", 0)) != cluster_id:
            raise BRError(
                f"the storage {loc.url} holds the log backup of another cluster "
                f"(cluster ID {existing.get('cluster_id')}); please use another storage"
            )
    loc.put(
        BACKUPMETA,
        dump_json(
            {
                "format": "tidb-sandbox/backupmeta-v1 (JSON model of brpb.BackupMeta)",
                "cluster_id": cluster_id,
                "start_version": start_ts,
                "end_version": 0,
                "task_name": task_name,
            }
        ),
    )


def flush_log(loc: Location, changes: Sequence[Change], *, flush_ts: int, stores: int = 3,
              write_checkpoint: bool = True) -> FlushInfo:
    """One flush of every store: data files, then the meta naming them, then (unless told not to) the
    global checkpoint. A live task uploads the checkpoint later, once the advancer has moved it."""
    return flush_log_history(loc, [(changes, flush_ts)], stores=stores, write_checkpoint=write_checkpoint)[0]


def write_global_checkpoint(loc: Location, checkpoint: int, *, stores: int = 3) -> None:
    """What each TiKV store uploads once the global checkpoint reaches it: `v1/global_checkpoint/<store>.ts`."""
    data = struct.pack("<Q", checkpoint)
    loc.put_many({f"{CHECKPOINT_DIR}{store}.ts": data for store in range(1, stores + 1)})


def flush_log_history(
    loc: Location,
    flushes: Iterable[tuple[Sequence[Change], int]],
    *,
    stores: int = 3,
    concurrency: int = 32,
    write_checkpoint: bool = True,
) -> list[FlushInfo]:
    """Many past flushes, given as (changes, flush_ts), in one go (seeding history): the same objects the
    flushes would write one by one, uploaded together; the global checkpoint ends at the last flush_ts.
    """
    data_objects: dict[str, bytes] = {}
    meta_objects: dict[str, bytes] = {}
    infos: list[FlushInfo] = []
    last_flush = 0
    for changes, flush_ts in flushes:
        late = [c.ts for c in changes if c.ts > flush_ts]
        if late:
            raise ValueError(f"flush at {flush_ts} carries changes from the future (ts {max(late)})")
        last_flush = max(last_flush, flush_ts)
        files = _build_files(changes, stores, data_objects)
        if not files:
            infos.append(FlushInfo(flush_ts, None, 0, 0, 0))
            continue
        low, high = min(f.min_ts for f in files), max(f.max_ts for f in files)
        meta = LogMeta(
            path=f"{META_DIR}{flush_ts:016X}-{low:016X}-{low:016X}-{high:016X}.meta",
            flush_ts=flush_ts,
            store_ids=tuple(sorted({f.store_id for f in files})),
            min_ts=low,
            max_ts=high,
            files=tuple(files),
        )
        if meta.path in meta_objects:
            raise ValueError(f"two flushes at the same ts {flush_ts}")
        meta_objects[meta.path] = _meta_bytes(meta)
        infos.append(FlushInfo(flush_ts, meta.path, len(files), sum(f.length for f in files), len(changes)))
    # A meta must never name a file that is not there yet, nor a checkpoint pass a missing meta.
    loc.put_many(data_objects, concurrency=concurrency)
    loc.put_many(meta_objects, concurrency=concurrency)
    if last_flush and write_checkpoint:
        write_global_checkpoint(loc, last_flush, stores=stores)
    return infos


def log_metadata(loc: Location) -> LogRange:
    """`br log metadata`: log-min-ts = max(start, safepoint), log-max-ts = max(min, global checkpoint)."""
    meta = _backupmeta(loc)
    if meta is None:
        raise BRError(f"failed to read backupmeta in {loc.url}: there is no log backup at this path")
    if int(meta.get("end_version", 0)) > 0:
        raise BRError(f"the storage {loc.url} has been used for full backup")
    start = int(meta.get("start_version", 0))
    safepoint = read_safepoint(loc)
    checkpoint = global_checkpoint(loc)
    low = max(start, safepoint)
    return LogRange(
        min_ts=low,
        max_ts=max(low, checkpoint),
        cluster_id=int(meta.get("cluster_id", 0)),
        start_ts=start,
        safepoint=safepoint,
        checkpoint=checkpoint,
    )


def global_checkpoint(loc: Location) -> int:
    """The largest TSO over v1/global_checkpoint/*.ts (0 before the first flush)."""
    paths = [info.rel for info in loc.list(CHECKPOINT_DIR) if info.rel.endswith(".ts")]
    best = 0
    for path, content in loc.get_many(paths).items():
        if len(content) != 8:
            raise BRError(
                f"the length of global checkpoint file '{path}' is {len(content)}, not 8",
                code="ErrBackupMetaInvalid",
                cause="invalid metadata file",
            )
        best = max(best, struct.unpack("<Q", content)[0])
    return best


def read_safepoint(loc: Location) -> int:
    try:
        text = loc.get(TRUNCATE_SAFEPOINT).decode().strip()
    except ObjectNotFound:
        return 0
    try:
        return int(text)
    except ValueError as exc:
        raise BRError(f"invalid truncate safepoint {text!r} in {loc.url}{TRUNCATE_SAFEPOINT}") from exc


def list_metas(
    loc: Location, *, after_ts: int = 0, until_ts: int | None = None, concurrency: int = 32
) -> list[LogMeta]:
    """Flush metas, oldest first. Like BR, metas whose name shows they hold nothing in
    (after_ts, until_ts] are skipped without being fetched.
    """
    paths = []
    for info in loc.list(META_DIR):
        if not info.rel.endswith(".meta"):
            continue
        bounds = _name_bounds(info.rel)
        if bounds is not None:
            low, high = bounds
            if high <= after_ts or (until_ts is not None and low > until_ts):
                continue
        paths.append(info.rel)
    raw = loc.get_many(paths, concurrency=concurrency)
    metas = [_parse_meta(path, load_json(content, f"{loc.url}{path}")) for path, content in raw.items()]
    return sorted(metas, key=lambda m: (m.flush_ts, m.path))


def _files_in_range(loc: Location, after_ts: int, until_ts: int, concurrency: int) -> list[LogFile]:
    """The data files a restore of (after_ts, until_ts] reads: those overlapping the range."""
    return [
        file
        for meta in list_metas(loc, after_ts=after_ts, until_ts=until_ts, concurrency=concurrency)
        for file in meta.files
        if file.max_ts > after_ts and file.min_ts <= until_ts
    ]


def log_bytes(loc: Location, after_ts: int, until_ts: int, *, concurrency: int = 32) -> int:
    """Bytes of the data files `read_log` fetches for (after_ts, until_ts], from the metas alone."""
    return sum(file.length for file in _files_in_range(loc, after_ts, until_ts, concurrency))


def read_log(loc: Location, after_ts: int, until_ts: int, *, concurrency: int = 32) -> list[Change]:
    """Changes with after_ts < ts <= until_ts, sorted by ts; only files overlapping the range are fetched."""
    wanted = _files_in_range(loc, after_ts, until_ts, concurrency)
    try:
        contents = loc.get_many([file.path for file in wanted], concurrency=concurrency)
    except ObjectNotFound as exc:
        raise BRError(
            f"log file {exc.url} named by a metadata file is missing",
            code="ErrRestoreInvalidBackup",
            cause="invalid restore backup",
        ) from exc
    changes: list[Change] = []
    for file in wanted:
        content = contents[file.path]
        if len(content) != file.length or sha256_hex(content) != file.sha256:
            raise BRError(
                f"checksum mismatch for log file {loc.url}{file.path}",
                code="ErrRestoreChecksumMismatch",
                cause="restore checksum mismatch",
            )
        for record in load_lines(content, f"{loc.url}{file.path}"):
            change = Change.from_json(record)
            if after_ts < change.ts <= until_ts:
                changes.append(change)
    changes.sort(key=lambda c: (c.ts, c.key))
    return changes


def truncate_log(loc: Location, until_ts: int, *, dry_run: bool = False) -> TruncateResult:
    """`br log truncate --until`: delete data files entirely before `until` (max_ts < until).

    Files holding any change at or after `until` stay whole, so every restore starting at or after
    `until` still works. The safepoint is written before anything is deleted, as BR does (pingcap/tidb
    br/pkg/task/stream.go `RunStreamTruncate`: `SetTSToFile(..., TruncateSafePointFileName)` before
    `RemoveDataFilesAndUpdateMetadataInBatch`): an interrupted run then leaves only unreferenced files behind,
    never a log-min-ts older than data this run already removed.
    """
    if until_ts <= 0:
        raise BRError("--until must be set to a TSO or a datetime with time zone")
    if loc.exists(TRUNCATE_LOCK):
        raise BRError(
            f"failed to lock {loc.url}{TRUNCATE_LOCK}: the lock file exists. {TRUNCATE_HINT}",
            code="ErrLocked",
            cause="resource locked",
        )
    if not dry_run:
        loc.put(TRUNCATE_LOCK, dump_json({"hint": "held by br log truncate", "until": until_ts}))
    try:
        old_safepoint = read_safepoint(loc)
        rewrites: dict[str, bytes] = {}
        emptied: list[str] = []
        doomed: list[LogFile] = []
        for meta in list_metas(loc):
            drop = [f for f in meta.files if f.max_ts < until_ts]
            if not drop:
                continue
            doomed.extend(drop)
            keep = tuple(f for f in meta.files if f.max_ts >= until_ts)
            if keep:
                rewrites[meta.path] = _meta_bytes(
                    replace(
                        meta,
                        files=keep,
                        store_ids=tuple(sorted({f.store_id for f in keep})),
                        min_ts=min(f.min_ts for f in keep),
                        max_ts=max(f.max_ts for f in keep),
                    )
                )
            else:
                emptied.append(meta.path)
        safepoint = max(old_safepoint, until_ts)
        if not dry_run:
            if until_ts > old_safepoint:
                loc.put(TRUNCATE_SAFEPOINT, str(until_ts).encode())
            loc.put_many(rewrites)
            loc.delete(emptied)
            loc.delete(f.path for f in doomed)
        return TruncateResult(
            deleted_files=len(doomed),
            deleted_bytes=sum(f.length for f in doomed),
            rewritten_metas=len(rewrites),
            deleted_metas=len(emptied),
            safepoint=old_safepoint if dry_run else safepoint,
            dry_run=dry_run,
        )
    finally:
        if not dry_run:
            loc.delete([TRUNCATE_LOCK])


def log_file_path(store: int, min_ts: int, max_ts: int) -> str:
    """`v1/<date>/<hour>/<store>/<min_ts>-<uuid>.log`, date and hour (UTC) of `max_ts`, as TiKV names them."""
    return f"v1/{tso_to_dt(max_ts).strftime('%Y%m%d/%H')}/{store}/{min_ts}-{uuid.uuid4().hex}.log"


def _build_files(changes: Sequence[Change], stores: int, out: dict[str, bytes]) -> list[LogFile]:
    groups: dict[int, list[Change]] = {}
    for change in changes:
        groups.setdefault(store_of(change.key, stores), []).append(change)
    files = []
    for store, group in sorted(groups.items()):
        group.sort(key=lambda c: (c.ts, c.key))
        content = dump_lines(c.to_json() for c in group)
        # The folder is the hour of the file's newest change, its name starts with the oldest one (tikv/tikv
        # components/backup-stream/src/router.rs `path_to_log_file`: "using the max_ts for preventing remove
        # some records wrong"), so a flush across an hour boundary lands in the later hour's folder.
        path = log_file_path(store, group[0].ts, group[-1].ts)
        out[path] = content
        files.append(
            LogFile(
                path=path,
                store_id=store,
                min_ts=group[0].ts,
                max_ts=group[-1].ts,
                length=len(content),
                sha256=sha256_hex(content),
                count=len(group),
            )
        )
    return files


def _meta_bytes(meta: LogMeta) -> bytes:
    body = asdict(meta)
    body.pop("path")
    body["format"] = "tidb-sandbox/log-meta-v1 (JSON model of brpb.Metadata)"
    return dump_json(body)


def _parse_meta(path: str, raw: dict[str, Any]) -> LogMeta:
    files = tuple(
        LogFile(
            path=f["path"],
            store_id=int(f["store_id"]),
            min_ts=int(f["min_ts"]),
            max_ts=int(f["max_ts"]),
            length=int(f["length"]),
            sha256=f["sha256"],
            count=int(f.get("count", 0)),
        )
        for f in raw.get("files", [])
    )
    return LogMeta(
        path=path,
        flush_ts=int(raw["flush_ts"]),
        store_ids=tuple(int(s) for s in raw.get("store_ids", [])),
        min_ts=int(raw["min_ts"]),
        max_ts=int(raw["max_ts"]),
        files=files,
    )


def _name_bounds(path: str) -> tuple[int, int] | None:
    """(min ts, max ts) from a meta's name; a name rewritten by truncate keeps its older, lower min."""
    parts = path.rsplit("/", 1)[-1].removesuffix(".meta").split("-")
    try:
        if len(parts) == 4 and all(len(part) == 16 for part in parts):
            return int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        pass
    return None


def _backupmeta(loc: Location) -> dict[str, Any] | None:
    try:
        return dict(load_json(loc.get(BACKUPMETA), f"{loc.url}{BACKUPMETA}"))
    except ObjectNotFound:
        return None
