"""ADMIN CHECKSUM TABLE: a table's row KV pairs folded like TiDB folds them (crc64 of key+value per pair,
XOR over all pairs). The key is TiDB's row key, which carries the table ID, so equal rows give equal
checksums only under equal table IDs: a restore that gave the table a new ID changes Checksum_crc64_xor
and keeps Total_kvs and Total_bytes (the ID is fixed-width in the key)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ..data.mvcc import Row
from ..data.schema import parse_key
from . import crc64

_SIGN = 1 << 63


@dataclass(frozen=True)
class TableChecksum:
    crc64_xor: int
    total_kvs: int
    total_bytes: int


def encode_kv(key: str, row: Row) -> tuple[bytes, bytes]:
    """The bytes a row stands for: its key, and its value as canonical JSON (sorted keys, no spaces)."""
    return key.encode(), json.dumps(row, sort_keys=True, separators=(",", ":")).encode()


def _comparable_int(value: int) -> bytes:
    """tidb `pkg/util/codec` `EncodeInt`: 8 bytes big-endian with the sign bit flipped."""
    return struct.pack(">Q", (value + _SIGN) & (_SIGN * 2 - 1))


def row_key(table_id: int, key: str) -> bytes:
    """tidb `pkg/tablecodec` `EncodeRowKeyWithHandle`: t{tableID}_r{handle}, both as comparable ints."""
    parts = parse_key(key)
    handle = parts.handle if parts is not None and parts.handle is not None else 0
    return b"t" + _comparable_int(table_id) + b"_r" + _comparable_int(handle)


def table_checksum(rows: Mapping[str, Row], table_id: int) -> TableChecksum:
    """As tidb `pkg/executor/checksum.go` (`checksumWorker` over the table's record range, keys from
    `tablecodec`): crc64 of each row key (with `table_id`) and value, XORed."""
    xor = kvs = size = 0
    for key, row in rows.items():
        _, value_bytes = encode_kv(key, row)
        key_bytes = row_key(table_id, key)
        xor ^= crc64.update(crc64.checksum(key_bytes), value_bytes)
        kvs += 1
        size += len(key_bytes) + len(value_bytes)
    return TableChecksum(xor, kvs, size)
