"""User databases and tables of a simulated cluster, and how they map onto MVCC keys.

Keys:
- `<db>`: a database's definition (charset, collation);
- `<db>/<table>`: a table's definition (id, columns, primary key);
- `<db>/<table>/<handle>`: a row, the handle zero-padded so keys sort like TiDB's integer handles.

Definitions are MVCC records like rows, so BR snapshots, logs and restores (which do not look inside keys)
carry the schema with the data, and a restored cluster shows the same databases and tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HANDLE_DIGITS = 10
DEFAULT_CHARSET = "utf8mb4"
DEFAULT_COLLATION = "utf8mb4_bin"  # TiDB's default collation for utf8mb4


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as TiDB prints it in COLUMN_TYPE, e.g. "bigint(20)"


@dataclass(frozen=True)
class TableDef:
    database: str
    name: str
    table_id: int
    columns: tuple[Column, ...]
    partition_ids: tuple[int, ...] = ()  # a partitioned table's partitions, which take global IDs too

    @property
    def key(self) -> str:
        return table_key(self.database, self.name)

    def definition(self) -> dict[str, Any]:
        """The value of the table's definition record."""
        value: dict[str, Any] = {"id": self.table_id,
                                 "columns": [{"name": c.name, "type": c.type} for c in self.columns],
                                 "primaryKey": "id"}
        if self.partition_ids:
            value["partitions"] = [{"id": p} for p in self.partition_ids]
        return value

    @classmethod
    def from_definition(cls, database: str, name: str, value: dict[str, Any]) -> TableDef:
        columns = tuple(Column(str(c["name"]), str(c["type"])) for c in value.get("columns") or [])
        partitions = tuple(int(p["id"]) for p in value.get("partitions") or [])
        return cls(database, name, int(value.get("id") or 0), columns, partitions)


def definition_ids(key: str, value: dict[str, Any] | None) -> list[int]:
    """The global IDs a table's definition record holds (the table's and its partitions'), [] for any
    other record."""
    parts = parse_key(key)
    if value is None or parts is None or parts.table is None or parts.is_row:
        return []
    return [int(value.get("id") or 0), *(int(p["id"]) for p in value.get("partitions") or [])]


def database_definition() -> dict[str, Any]:
    return {"charset": DEFAULT_CHARSET, "collation": DEFAULT_COLLATION}


def database_key(database: str) -> str:
    return database


def table_key(database: str, table: str) -> str:
    return f"{database}/{table}"


def table_prefix(database: str, table: str) -> str:
    """Every row key of the table starts with this; its definition key does not."""
    return f"{database}/{table}/"


def row_key(database: str, table: str, handle: int) -> str:
    return f"{database}/{table}/{handle:0{HANDLE_DIGITS}d}"


@dataclass(frozen=True)
class KeyParts:
    database: str
    table: str | None = None
    handle: int | None = None

    @property
    def is_row(self) -> bool:
        return self.handle is not None


def parse_key(key: str) -> KeyParts | None:
    """What a key names, or None for a key outside this layout."""
    parts = key.split("/")
    if not all(parts) or len(parts) > 3:
        return None
    if len(parts) == 1:
        return KeyParts(parts[0])
    if len(parts) == 2:
        return KeyParts(parts[0], parts[1])
    if not parts[2].isdigit():
        return None
    return KeyParts(parts[0], parts[1], int(parts[2]))


def is_definition_key(key: str) -> bool:
    parts = parse_key(key)
    return parts is not None and not parts.is_row
