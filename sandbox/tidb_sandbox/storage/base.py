"""What every storage location offers, whatever the provider behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass


class StorageError(Exception):
    """A storage failure with an operator-like reason and a BR-like message.

    reason: KeyNotExist (Secret lacks a key), StorageAuthFailed (server refused the credentials),
    BucketNotFound, ObjectNotFound, InvalidStorage (the CR's block is unusable), StorageUnavailable.
    code: the provider's own error code when there is one (InvalidAccessKeyId, AuthorizationFailure, ...).
    """

    def __init__(self, reason: str, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class ObjectNotFound(StorageError):
    def __init__(self, url: str) -> None:
        super().__init__("ObjectNotFound", f"the object {url} does not exist", code="NoSuchKey")
        self.url = url


@dataclass(frozen=True)
class ObjectInfo:
    rel: str  # path relative to the location's prefix
    size: int


def join_key(prefix: str, rel: str) -> str:
    rel = rel.lstrip("/")
    return f"{prefix}/{rel}" if prefix else rel


def clean_prefix(prefix: str | None) -> str:
    return (prefix or "").strip("/")


class Location(ABC):
    """One provider block of a CR bound to its prefix; all paths are relative to that prefix."""

    url: str  # BR URL, the same text the operator writes to status.backupPath

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def url_of(self, rel: str) -> str:
        return self.url + rel.lstrip("/")

    @contextmanager
    def failures(self, action: str, rel: str) -> Iterator[None]:
        """Turn the provider SDK's exceptions into StorageError, worded `failed to <action> <url>: ...`."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            error = self.translate(exc, f"failed to {action} {self.url_of(rel)}")
            if error is None:
                raise
            raise error from exc

    def translate(self, exc: Exception, failed: str) -> StorageError | None:
        """The StorageError for a provider exception, or None to let it through unchanged."""
        return None

    @abstractmethod
    def put(self, rel: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, rel: str) -> bytes: ...

    @abstractmethod
    def exists(self, rel: str) -> bool: ...

    @abstractmethod
    def list(self, rel_prefix: str = "") -> list[ObjectInfo]: ...

    @abstractmethod
    def delete(self, rels: Iterable[str]) -> int:
        """Delete in batches; objects already gone are not an error. Returns how many were deleted."""

    @abstractmethod
    def ensure_bucket(self) -> None:
        """Create the bucket / container / directory if missing (sandbox setup, not a BR action)."""

    def put_many(self, items: dict[str, bytes], *, concurrency: int = 16) -> None:
        """Upload many objects with bounded parallelism; the first failure is raised."""
        if not items:
            return
        if len(items) == 1 or concurrency <= 1:
            for rel, data in items.items():
                self.put(rel, data)
            return
        with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
            futures = [pool.submit(self.put, rel, data) for rel, data in items.items()]
            for future in futures:
                future.result()

    def get_many(self, rels: Iterable[str], *, concurrency: int = 16) -> dict[str, bytes]:
        """Fetch many objects with bounded parallelism; a missing one raises ObjectNotFound."""
        wanted = list(dict.fromkeys(rels))
        if len(wanted) <= 1 or concurrency <= 1:
            return {rel: self.get(rel) for rel in wanted}
        with ThreadPoolExecutor(max_workers=min(concurrency, len(wanted))) as pool:
            return dict(zip(wanted, pool.map(self.get, wanted), strict=True))
