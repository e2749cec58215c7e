"""ADMIN CHECKSUM TABLE: a table's row KV pairs folded like TiDB folds them (crc64 of key+value per pair,
XOR over all pairs), so equal rows under equal keys give equal checksums wherever they were restored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..data.mvcc import Row
from . import crc64


@dataclass(frozen=True)
class TableChecksum:
    crc64_xor: int
    total_kvs: int
    total_bytes: int


def encode_kv(key: str, row: Row) -> tuple[bytes, bytes]:
    """The bytes a row stands for: its key, and its value as canonical JSON (sorted keys, no spaces)."""
    return key.encode(), json.dumps(row, sort_keys=True, separators=(",", ":")).encode()


def table_checksum(rows: Mapping[str, Row]) -> TableChecksum:
    xor = kvs = size = 0
    for key, row in rows.items():
        key_bytes, value_bytes = encode_kv(key, row)
        xor ^= crc64.update(crc64.checksum(key_bytes), value_bytes)
        kvs += 1
        size += len(key_bytes) + len(value_bytes)
    return TableChecksum(xor, kvs, size)
