"""Inspect and delete BR backup data where a cluster's backups live: S3 (or S3-compatible), Azure Blob, or a folder.

Prefixes are folders: `root/snapshot-1` and `root/snapshot-1/` both mean everything under `root/snapshot-1/`,
never `root/snapshot-10/`. Credentials come only from Airflow connections and are never logged.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from airflow.sdk import BaseHook

from ..cr.names import is_snapshot_prefix
from ..tso import tso_to_dt

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

Provider = Literal["s3", "azblob", "local"]
PROVIDERS: tuple[Provider, ...] = ("s3", "azblob", "local")

BACKUPMETA = "backupmeta"  # BR writes it last: present means the snapshot finished writing
LOG_CHECKPOINT_DIR = "v1/global_checkpoint/"
LOG_DATA_DIR = "v1/"  # data files: v1/<YYYYMMDD>/<HH>/<store_id>/<min_ts>-<uuid>.log
TRUNCATE_SAFEPOINT = "v1_stream_trancate_safepoint.txt"
SNAPSHOT_FOLDER_PREFIX = "snapshot-"
S3_DELETE_BATCH = 1000  # DeleteObjects limit
AZURE_DELETE_BATCH = 256  # blob batch limit (sub-requests per batch)
LOCAL_DELETE_BATCH = 1000  # just a unit of work for the thread pool
SAMPLE_SIZE = 20
ERROR_KEYS_IN_MESSAGE = 20


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int


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


class _Backend(Protocol):
    batch_size: int

    def client(self) -> Any: ...
    def url(self, key: str) -> str: ...
    def folders(self, prefix: str) -> Iterator[str]: ...
    def objects(self, folder: str) -> Iterator[ObjectEntry]: ...
    def read(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete_batch(self, keys: list[str]) -> dict[str, str]: ...
    def after_delete(self, folder: str) -> None: ...


class _S3Backend:
    batch_size = S3_DELETE_BATCH

    def __init__(self, conn_id: str | None, bucket: str, page_size: int) -> None:
        # Imported here so that a local-only deployment needs neither provider installed.
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        # conn_id None = boto3's default credential chain (IRSA, instance profile); MinIO/Ceph via endpoint_url extra.
        self.hook = S3Hook(aws_conn_id=conn_id)
        self.bucket = bucket
        self.page_size = min(page_size, 1000)

    def client(self) -> Any:
        return self.hook.get_conn()  # cached by the hook; boto3 clients are thread-safe

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _pages(self, prefix: str, **extra: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client().get_paginator("list_objects_v2")
        yield from paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}, **extra
        )

    def folders(self, prefix: str) -> Iterator[str]:
        for page in self._pages(prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"]

    def objects(self, folder: str) -> Iterator[ObjectEntry]:
        for page in self._pages(folder):
            for item in page.get("Contents", []):
                yield ObjectEntry(item["Key"], int(item["Size"]))

    def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client().get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _s3_missing(err):
                raise FileNotFoundError(self.url(key)) from err
            raise
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _s3_missing(err):
                return False
            raise
        return True

    def delete_batch(self, keys: list[str]) -> dict[str, str]:
        # Quiet mode: the answer lists only failures. Absent keys are reported as deleted by S3 anyway.
        response = self.client().delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        return {
            error["Key"]: f"{error.get('Code')}: {error.get('Message', '')}".strip()
            for error in response.get("Errors", [])
            if error.get("Code") != "NoSuchKey"
        }

    def after_delete(self, folder: str) -> None:
        pass


def _s3_missing(err: Any) -> bool:
    error = err.response.get("Error", {})
    return error.get("Code") in ("404", "NoSuchKey", "NotFound")


class _AzureBackend:
    batch_size = AZURE_DELETE_BATCH

    def __init__(self, conn_id: str | None, container: str, page_size: int) -> None:
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

        if not conn_id:
            raise ValueError("azblob needs a wasb connection id (connection string, or account name and key)")
        self.hook = WasbHook(wasb_conn_id=conn_id)
        self.container = container
        self.page_size = page_size
        self._client: ContainerClient | None = None

    def client(self) -> ContainerClient:
        if self._client is None:
            self._client = self.hook.get_conn().get_container_client(self.container)
        return self._client

    def url(self, key: str) -> str:
        return f"azure://{self.container}/{key}"

    def folders(self, prefix: str) -> Iterator[str]:
        from azure.storage.blob import BlobPrefix

        # walk_blobs returns one level; only the virtual folders (BlobPrefix) are wanted.
        for item in self.client().walk_blobs(name_starts_with=prefix, delimiter="/", results_per_page=self.page_size):
            if isinstance(item, BlobPrefix):
                yield item.name

    def objects(self, folder: str) -> Iterator[ObjectEntry]:
        for blob in self.client().list_blobs(name_starts_with=folder or None, results_per_page=self.page_size):
            yield ObjectEntry(blob.name, int(blob.size or 0))

    def read(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client().download_blob(key).readall()
        except ResourceNotFoundError as err:
            raise FileNotFoundError(self.url(key)) from err

    def exists(self, key: str) -> bool:
        return bool(self.client().get_blob_client(key).exists())

    def delete_batch(self, keys: list[str]) -> dict[str, str]:
        # One blob-batch request per 256 blobs. Azurite (3.37, the sandbox's) supports the batch API, including
        # delete_snapshots and per-blob 404/412 sub-responses, so there is no per-blob fallback.
        # "include" also removes blob snapshots, which would otherwise make the delete fail (SnapshotsPresent).
        responses = self.client().delete_blobs(*keys, delete_snapshots="include", raise_on_any_failure=False)
        failures: dict[str, str] = {}
        for key, response in zip(keys, responses, strict=True):
            status = response.status_code
            if status == 404 or 200 <= status < 300:  # 404 BlobNotFound: already gone is success
                continue
            failures[key] = f"HTTP {status} {response.headers.get('x-ms-error-code', '')}".strip()
        return failures

    def after_delete(self, folder: str) -> None:
        pass


class _LocalBackend:
    batch_size = LOCAL_DELETE_BATCH

    def __init__(self, base: str) -> None:
        if not base:
            raise ValueError("local storage needs the base directory (the PVC mount path on the worker)")
        self.base = Path(base)

    def client(self) -> Path:
        return self.base

    def url(self, key: str) -> str:
        return f"local://{self.base / key}"

    def _path(self, key: str) -> Path:
        return self.base / key  # keys are cleaned (no '..' segments), so this stays under base

    def folders(self, prefix: str) -> Iterator[str]:
        parent, _, start = prefix.rpartition("/")
        directory = self._path(parent) if parent else self.base
        if not directory.is_dir():
            return
        for entry in os.scandir(directory):
            if entry.is_dir() and entry.name.startswith(start):
                yield f"{parent}/{entry.name}/" if parent else f"{entry.name}/"

    def objects(self, folder: str) -> Iterator[ObjectEntry]:
        top = self._path(folder) if folder else self.base
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()  # a stable, roughly lexicographic order like the object stores
            relative = Path(dirpath).relative_to(self.base).as_posix()
            for name in sorted(filenames):
                key = name if relative == "." else f"{relative}/{name}"
                try:
                    yield ObjectEntry(key, os.stat(os.path.join(dirpath, name)).st_size)
                except FileNotFoundError:
                    continue  # removed while we walked

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_batch(self, keys: list[str]) -> dict[str, str]:
        failures: dict[str, str] = {}
        for key in keys:
            try:
                os.remove(self._path(key))
            except FileNotFoundError:
                continue
            except OSError as err:
                failures[key] = f"{type(err).__name__}: {err.strerror}"
        return failures

    def after_delete(self, folder: str) -> None:
        # Object stores have no folders; on a volume, remove the now-empty directories so listings match.
        top = self._path(folder)
        if not top.is_dir():
            return
        for dirpath, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass  # not empty: something under it could not be deleted (already reported)


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
        self._backend: _Backend
        if provider == "s3":
            self._backend = _S3Backend(conn_id, bucket, page_size)
        elif provider == "azblob":
            self._backend = _AzureBackend(conn_id, bucket, page_size)
        else:
            self._backend = _LocalBackend(bucket)

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
        `path_to_log_file`; the sandbox's `storage/br_log.py` files them under the min_ts hour). So one
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
        from ..cr.logical import is_dump_key

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
