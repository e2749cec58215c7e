"""Inspect and delete BR backup data where a cluster's backups live: S3 (or S3-compatible), Azure Blob, or a folder.

Prefixes are folders: `root/snapshot-1` and `root/snapshot-1/` both mean everything under `root/snapshot-1/`,
never `root/snapshot-10/`. Credentials come only from Airflow connections and are never logged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Literal

from airflow.sdk import BaseHook

from ..cr.logical import is_dump_key
from ..cr.names import is_snapshot_prefix
from ..tso import tso_to_dt
from .storage_backends import Backend, ObjectEntry, backend_for

Provider = Literal["s3", "azblob", "local"]
PROVIDERS: tuple[Provider, ...] = ("s3", "azblob", "local")

BACKUPMETA = "backupmeta"  # BR writes it last: present means the snapshot finished writing
LOG_CHECKPOINT_DIR = "v1/global_checkpoint/"
LOG_DATA_DIR = "v1/"  # data files: v1/<YYYYMMDD>/<HH>/<store_id>/<min_ts>-<uuid>.log
TRUNCATE_SAFEPOINT = "v1_stream_trancate_safepoint.txt"
SNAPSHOT_FOLDER_PREFIX = "snapshot-"
CHECK_FOLDER = ".tidb-pitr-check"  # `check`'s probe objects: the only place it writes, under the cluster's root
SAMPLE_SIZE = 20
ERROR_KEYS_IN_MESSAGE = 20


@dataclass(frozen=True)
class SnapshotCheck:
    prefix: str
    exists_backupmeta: bool
    objects: int
    total_bytes: int
    backupmeta_bytes: int


@dataclass(frozen=True)
class LogVolume:
    """Log backup data a restore replays, as the listings show it (no object is read)."""

    bytes: int
    files: int
    hours: int  # hour folders listed (one listing each)


@dataclass(frozen=True)
class DeleteResult:
    prefix: str
    keys: int  # deleted (or, on a dry run, that would be deleted); already-gone objects count as deleted
    bytes: int
    dry_run: bool
    sample: list[str] = field(default_factory=list)


class StorageDeleteRefused(ValueError):
    """A deletion outside what this project may delete; nothing was deleted."""


class StorageDeleteError(RuntimeError):
    """Some objects could not be deleted; raised only after every batch was attempted.

    `failures` maps every failed key to its reason; the message names the first few.
    """

    def __init__(self, where: str, failures: dict[str, str]) -> None:
        self.failures = dict(sorted(failures.items()))
        shown = [f"{key} ({reason})" for key, reason in islice(self.failures.items(), ERROR_KEYS_IN_MESSAGE)]
        more = len(self.failures) - len(shown)
        tail = f", ... and {more} more" if more > 0 else ""
        super().__init__(f"failed to delete {len(self.failures)} object(s) in {where}: {'; '.join(shown)}{tail}")


def _clean_path(path: str, *, what: str) -> str:
    """`path` without leading/trailing slashes; refuses `.`/`..`/empty segments (they could escape a folder)."""
    cleaned = path.strip("/")
    if cleaned and any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise ValueError(f"{what} {path!r} has an empty, '.' or '..' segment")
    return cleaned


def _folder(prefix: str, *, allow_root: bool) -> str:
    """The folder form of a prefix (`a/b/`), or `""` for the whole bucket when `allow_root`."""
    cleaned = _clean_path(prefix, what="prefix")
    if not cleaned:
        if allow_root:
            return ""
        # Safety rule: one typo must not wipe a whole bucket/container/volume.
        raise ValueError(f"refusing an empty or root prefix ({prefix!r}): name the folder to delete")
    return cleaned + "/"


def _key(key: str) -> str:
    cleaned = _clean_path(key, what="key")
    if not cleaned:
        raise ValueError("empty object key")
    return cleaned


def _hour_folders(start: datetime, end: datetime) -> Iterator[str]:
    """`<YYYYMMDD>/<HH>/` for every UTC hour from start's to end's, then one more (see log_volume)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour <= end + timedelta(hours=1):
        yield hour.strftime("%Y%m%d/%H/")
        hour += timedelta(hours=1)


def _log_min_ts(key: str) -> int | None:
    """The TSO a data file's name starts with (`<min_ts>-<uuid>.log`), or None for anything else."""
    name = key.rsplit("/", 1)[-1]
    head, dash, _ = name.partition("-")
    return int(head) if dash and head.isdigit() and name.endswith(".log") else None


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class BackupStorageHook(BaseHook):
    """BR backup data in one bucket (s3), container (azblob) or base directory (local).

    No `conn_type`/`conn_name_attr`: this hook wraps S3Hook and WasbHook and uses *their* connections
    (`aws`, `wasb`), so registering a connection type of its own would only duplicate their forms.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        conn_id: str | None,
        bucket: str,
        managed_root: str | None = None,
        max_concurrency: int = 8,
        page_size: int = 1000,
    ) -> None:
        super().__init__()
        # Deletions are confined to `<managed_root>/snapshot-<14 digits>`; without a root, nothing is deleted.
        self.managed_root = _clean_path(managed_root, what="managed_root") if managed_root else None
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}; got {provider!r}")
        if not bucket:
            raise ValueError("bucket (container, or base directory for local) is required")
        if max_concurrency < 1 or page_size < 1:
            raise ValueError("max_concurrency and page_size must be at least 1")
        self.provider = provider
        self.conn_id = conn_id
        self.bucket = bucket
        self.max_concurrency = max_concurrency
        self._backend: Backend = backend_for(provider, conn_id, bucket, page_size)

    def get_conn(self) -> Any:
        """The native client: a boto3 S3 client, an azure ContainerClient, or the base Path."""
        return self._backend.client()

    def url(self, key: str = "") -> str:
        """Where a key lives, for messages (`s3://bucket/key`, `azure://container/key`, `local:///base/key`)."""
        return self._backend.url(key.lstrip("/"))

    def list_keys(self, prefix: str) -> Iterator[ObjectEntry]:
        """Every object under the folder `prefix` (`""` = the whole bucket), page by page."""
        return self._backend.objects(_folder(prefix, allow_root=True))

    def list_snapshot_prefixes(self, root: str) -> list[str]:
        """The `<root>/snapshot-*` folders one level below root, sorted, without a trailing slash."""
        folder = _folder(root, allow_root=True)
        found = self._backend.folders(folder + SNAPSHOT_FOLDER_PREFIX)
        return sorted(name.rstrip("/") for name in found)

    def snapshot_info(self, prefix: str) -> SnapshotCheck:
        """Counts and sizes under a snapshot folder, and whether its `backupmeta` is there, in one listing pass."""
        folder = _folder(prefix, allow_root=False)
        meta_key = folder + BACKUPMETA
        objects = total = 0
        meta_size: int | None = None
        for entry in self._backend.objects(folder):
            objects += 1
            total += entry.size
            if entry.key == meta_key:
                meta_size = entry.size
        return SnapshotCheck(
            prefix=folder.rstrip("/"),
            exists_backupmeta=meta_size is not None,
            objects=objects,
            total_bytes=total,
            backupmeta_bytes=meta_size or 0,
        )

    def log_checkpoint(self, log_prefix: str) -> int:
        """The global checkpoint BR's restore checks: the largest `v1/global_checkpoint/*.ts` (little-endian
        uint64 TSOs) under the log backup's folder; 0 when there is none yet."""
        folder = _folder(log_prefix, allow_root=False)
        best = 0
        for entry in self._backend.objects(folder + LOG_CHECKPOINT_DIR):
            if entry.key.endswith(".ts"):
                data = self._backend.read(entry.key)
                if len(data) == 8:
                    best = max(best, struct.unpack("<Q", data)[0])
        return best

    def log_volume(self, log_prefix: str, start_ts: int, end_ts: int) -> LogVolume:
        """Bytes and count of the log data files a restore of (start_ts, end_ts] replays, from listings only.

        TiKV writes each flush's file as `v1/<YYYYMMDD>/<HH>/<store_id>/<min_ts>-<uuid>.log`, the date and hour
        (UTC) being those of the file's *max_ts* (tikv `components/backup-stream/src/router.rs`,
        `path_to_log_file`; the sandbox's `storage/br_log.py` does too). So one
        listing per hour from start's to end's, plus the next hour for files that begin by end_ts and end
        after it. A file counts when start_ts <= min_ts <= end_ts: that leaves out files wholly before
        start_ts in its hour, and misses only a file straddling start_ts (one flush per store). A storage
        error propagates: the caller decides what an unknown volume means.
        """
        if end_ts < start_ts:
            raise ValueError(f"end_ts {end_ts} is before start_ts {start_ts}")
        folder = _folder(log_prefix, allow_root=False) + LOG_DATA_DIR
        total = files = hours = 0
        for hour in _hour_folders(tso_to_dt(start_ts), tso_to_dt(end_ts)):
            hours += 1
            for entry in self._backend.objects(folder + hour):
                min_ts = _log_min_ts(entry.key)
                if min_ts is not None and start_ts <= min_ts <= end_ts:
                    total += entry.size
                    files += 1
        return LogVolume(bytes=total, files=files, hours=hours)

    def truncate_safepoint(self, log_prefix: str) -> int:
        """`br log truncate`'s safepoint (`v1_stream_trancate_safepoint.txt`, sic): nothing before it remains."""
        key = _folder(log_prefix, allow_root=False) + TRUNCATE_SAFEPOINT
        try:
            text = self._backend.read(key).decode().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text.isdigit() else 0

    def read_object(self, key: str) -> bytes:
        """The object's content; FileNotFoundError when it does not exist."""
        return self._backend.read(_key(key))

    def exists(self, key: str) -> bool:
        return self._backend.exists(_key(key))

    def probe_key(self, name: str) -> str:
        """`<managed_root>/.tidb-pitr-check/<name>`: where `check` may write and delete, and nowhere else."""
        if self.managed_root is None:
            raise StorageDeleteRefused("no managed root: the probe's folder is under the cluster's root")
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"probe name must be one path segment, got {name!r}")
        return f"{self.managed_root}/{CHECK_FOLDER}/{name}"

    def write_probe(self, name: str, data: bytes) -> str:
        """Write one probe object (never elsewhere than `probe_key`); returns its key."""
        key = self.probe_key(name)
        self._backend.write(key, data)
        return key

    def delete_probe(self, name: str) -> None:
        """Delete one probe object (absent is fine); StorageDeleteError with the store's reason otherwise."""
        key = self.probe_key(name)
        failures = self._backend.delete_batch([key])
        if failures:
            raise StorageDeleteError(self.url(key), failures)
        self._backend.after_delete(key.rsplit("/", 1)[0])

    def delete_prefix(self, prefix: str, *, dry_run: bool = False) -> DeleteResult:
        """Delete every object under the folder `prefix` (never empty or root).

        Listing streams into delete batches (S3 1000 keys, Azure 256 blobs), `max_concurrency` batches in flight.
        Already-gone objects count as deleted, so a retry is harmless. Other failures are collected over all
        batches and raised together as StorageDeleteError. A dry run lists and counts, and deletes nothing.
        """
        folder = _folder(prefix, allow_root=False)
        self.check_deletable(folder)
        counted = {"keys": 0, "bytes": 0}
        sample: list[str] = []

        def keys() -> Iterator[str]:
            for entry in self._backend.objects(folder):
                counted["keys"] += 1
                counted["bytes"] += entry.size
                if len(sample) < SAMPLE_SIZE:
                    sample.append(entry.key)
                yield entry.key

        if dry_run:
            for _ in keys():
                pass
        else:
            failures = self._delete_all(keys())
            self._backend.after_delete(folder)
            if failures:
                raise StorageDeleteError(self.url(folder), failures)
        result = DeleteResult(folder.rstrip("/"), counted["keys"], counted["bytes"], dry_run, sample)
        verb = "would delete" if dry_run else "deleted"
        self.log.info("%s %d object(s), %d bytes under %s", verb, result.keys, result.bytes, self.url(folder))
        return result

    def check_deletable(self, prefix: str) -> None:
        """Defence in depth: refuse any folder but `<managed_root>/snapshot-<14 digits>` (a snapshot this
        cluster's retention may delete), whatever the caller planned."""
        folder = _clean_path(prefix, what="prefix")
        if self.managed_root is None:
            raise StorageDeleteRefused(f"refusing to delete {self.url(folder)}: this storage hook has no managed "
                                       "root, so no folder is known to be this project's to delete")
        if not is_snapshot_prefix(self.managed_root, folder):
            raise StorageDeleteRefused(
                f"refusing to delete {self.url(folder)}: only snapshot folders of this cluster, "
                f"{self.managed_root}/snapshot-<YYYYMMDDHHMMSS>, may be deleted; anything else may hold a log "
                f"backup or backups this project did not make")

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete the given objects (batched, bounded concurrency, absent ones are fine); returns how many.

        Every key must lie in a folder `check_deletable` accepts."""
        cleaned = [_key(key) for key in keys]
        for key in cleaned:
            self.check_deletable(key.rsplit("/", 1)[0] if "/" in key else "")
        failures = self._delete_all(cleaned)
        if failures:
            raise StorageDeleteError(self.url(), failures)
        return len(cleaned)

    def delete_dump(self, root: str, key: str) -> None:
        """Delete one Dumpling archive, `<root>/backup-<RFC3339>.tgz` (absent is fine); nothing else.

        Logical backups share their folder (`root`) with any other Dumpling backup written there, so only
        the one archive a CR of this project names is deleted, never a folder."""
        cleaned = _key(key)
        if not is_dump_key(root, cleaned):
            raise StorageDeleteRefused(f"refusing to delete {self.url(cleaned)}: only Dumpling archives "
                                       f"{root}/backup-<RFC3339>.tgz may be deleted")
        failures = self._delete_all([cleaned])
        if failures:
            raise StorageDeleteError(self.url(cleaned), failures)

    def _delete_all(self, keys: Iterable[str]) -> dict[str, str]:
        """Run the backend's batches in a pool, at most `max_concurrency` in flight, so listing never runs far ahead."""
        failures: dict[str, str] = {}

        def harvest(done: Iterable[Future[dict[str, str]]]) -> None:
            for future in done:
                failures.update(future.result())

        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="storage-delete") as pool:
            pending: set[Future[dict[str, str]]] = set()
            for batch in _chunks(keys, self._backend.batch_size):
                if len(pending) >= self.max_concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    harvest(done)
                pending.add(pool.submit(_attempt, self._backend.delete_batch, batch))
            harvest(wait(pending).done)
        return failures


def _attempt(delete: Callable[[list[str]], dict[str, str]], batch: list[str]) -> dict[str, str]:
    # A whole-batch failure (network, throttling past retries) marks its keys failed; the other batches go on.
    try:
        return delete(batch)
    except Exception as err:  # reported per key by the caller, not swallowed
        reason = f"{type(err).__name__}: {err}"
        return {key: reason for key in batch}
