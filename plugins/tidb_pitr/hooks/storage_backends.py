"""Where `BackupStorageHook` reads and deletes: one small backend per provider (S3, Azure Blob, a local folder)
over the provider's own hook or the file system. Listing, reading, batch deletion, and one small write (the check's
probe); the safety rules (which prefixes may be deleted or written, batching over threads) stay in `storage.py`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

S3_DELETE_BATCH = 1000  # DeleteObjects limit
AZURE_DELETE_BATCH = 256  # blob batch limit (sub-requests per batch)
LOCAL_DELETE_BATCH = 1000  # just a unit of work for the thread pool


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int


class Backend(Protocol):
    batch_size: int

    def client(self) -> Any: ...
    def url(self, key: str) -> str: ...
    def folders(self, prefix: str) -> Iterator[str]: ...
    def objects(self, folder: str) -> Iterator[ObjectEntry]: ...
    def read(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def write(self, key: str, data: bytes) -> None: ...
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

    def write(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)

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

    def write(self, key: str, data: bytes) -> None:
        self.client().upload_blob(key, data, overwrite=True)

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

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

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


def backend_for(provider: str, conn_id: str | None, bucket: str, page_size: int) -> Backend:
    """The backend of `provider` (`s3`, `azblob`, else local) over `bucket` (container, base directory)."""
    if provider == "s3":
        return _S3Backend(conn_id, bucket, page_size)
    if provider == "azblob":
        return _AzureBackend(conn_id, bucket, page_size)
    return _LocalBackend(bucket)
