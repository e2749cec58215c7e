"""Pieces shared by the snapshot and log layouts: BR's errors, file encodings, key placement."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from ..data.tso import tso_to_dt

BACKUPMETA = "backupmeta"  # metautil.MetaFile: the same name for snapshot and log backups


class BRError(ValueError):
    """A failure BR itself reports (as opposed to the storage refusing a request).

    `message` (and str()) reads like BR's error line: `<annotation>: [BR:<class>:<code>]<cause>`.
    A ValueError because nearly all of them are BR's ErrInvalidArgument family.
    """

    def __init__(
        self, annotation: str, *, code: str = "ErrInvalidArgument", cause: str = "invalid argument"
    ) -> None:
        self.annotation = annotation
        self.code = code
        self.message = f"{annotation}: [BR:{_error_class(code)}:{code}]{cause}"
        super().__init__(self.message)


def _error_class(code: str) -> str:
    if code.startswith("ErrStorage") or code.startswith("ErrBackupMeta"):
        return "ExternalStorage"
    if code.startswith("ErrRestore"):
        return "Restore"
    return "Common"


def ts_text(ts: int) -> str:
    """A TSO's time as BR prints it (Go's time.String() in UTC): 2022-10-10 04:45:32.283 +0000 UTC."""
    dt = tso_to_dt(ts)
    fraction = f"{dt.microsecond // 1000:03d}".rstrip("0")
    return dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + " +0000 UTC"


def store_of(key: str, stores: int) -> int:
    """Which TiKV store (1..stores) leads the region holding `key`; stable across runs."""
    return zlib.crc32(key.encode()) % stores + 1


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise BRError(f"failed to parse {what}", code="ErrBackupMetaInvalid", cause=str(exc)) from exc


def dump_lines(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(dump_json(record) + b"\n" for record in records)


def load_lines(data: bytes, what: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.splitlines(), start=1):
        if line:
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise BRError(
                    f"failed to decode {what} line {number}", code="ErrRestoreInvalidBackup", cause=str(exc)
                ) from exc
