"""INFORMATION_SCHEMA.SCHEMATA, TABLES and COLUMNS with TiDB's columns, and a small evaluator for the queries tools
send them: column lists, WHERE with comparisons, IN, LIKE, IS NULL, AND/OR/NOT, ORDER BY, LIMIT, COUNT(*).

TABLES lists the user tables only: the sandbox does not model the system schemas' tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timezone
from typing import Any

from mysql_mimic import ColumnType, ResultColumn, ResultSet
from sqlglot import expressions as exp

from ..data.schema import DEFAULT_CHARSET, DEFAULT_COLLATION
from ..data.tso import tso_to_dt
from . import errors
from .catalog import Catalog
from .checksum import encode_kv, row_key

Row = dict[str, Any]
_S, _I, _D = ColumnType.VAR_STRING, ColumnType.LONGLONG, ColumnType.DATETIME

SCHEMATA = [("CATALOG_NAME", _S), ("SCHEMA_NAME", _S), ("DEFAULT_CHARACTER_SET_NAME", _S),
            ("DEFAULT_COLLATION_NAME", _S), ("SQL_PATH", _S), ("TIDB_PLACEMENT_POLICY_NAME", _S)]
TABLES = [("TABLE_CATALOG", _S), ("TABLE_SCHEMA", _S), ("TABLE_NAME", _S), ("TABLE_TYPE", _S), ("ENGINE", _S),
          ("VERSION", _I), ("ROW_FORMAT", _S), ("TABLE_ROWS", _I), ("AVG_ROW_LENGTH", _I), ("DATA_LENGTH", _I),
          ("MAX_DATA_LENGTH", _I), ("INDEX_LENGTH", _I), ("DATA_FREE", _I), ("AUTO_INCREMENT", _I),
          ("CREATE_TIME", _D), ("UPDATE_TIME", _D), ("CHECK_TIME", _D), ("TABLE_COLLATION", _S), ("CHECKSUM", _I),
          ("CREATE_OPTIONS", _S), ("TABLE_COMMENT", _S), ("TIDB_TABLE_ID", _I), ("TIDB_ROW_ID_SHARDING_INFO", _S),
          ("TIDB_PK_TYPE", _S), ("TIDB_PLACEMENT_POLICY_NAME", _S)]


def schemata_rows(catalog: Catalog, tz: timezone) -> list[Row]:
    return [dict(zip([c for c, _ in SCHEMATA], ("def", name, DEFAULT_CHARSET, DEFAULT_COLLATION, None, None),
                     strict=True)) for name in catalog.schema_names()]


def tables_rows(catalog: Catalog, tz: timezone) -> list[Row]:
    rows = []
    for table in catalog.user_tables():
        data = catalog.rows(table)
        table_id = table.definition.table_id  # keys as ADMIN CHECKSUM counts them (checksum.row_key)
        size = sum(len(row_key(table_id, key)) + len(encode_kv(key, row)[1]) for key, row in data.items())
        created = tso_to_dt(table.created_ts).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        values = ("def", table.database, table.name, "BASE TABLE", "InnoDB", 10, "Compact", len(data),
                  size // len(data) if data else 0, size, 0, 0, 0, None, created, None, None, DEFAULT_COLLATION,
                  None, "", "", table.definition.table_id, "NOT_SHARDED(PK_IS_HANDLE)", "CLUSTERED", None)
        rows.append(dict(zip([c for c, _ in TABLES], values, strict=True)))
    return rows


COLUMNS = [("TABLE_CATALOG", _S), ("TABLE_SCHEMA", _S), ("TABLE_NAME", _S), ("COLUMN_NAME", _S),
           ("ORDINAL_POSITION", _I), ("COLUMN_DEFAULT", _S), ("IS_NULLABLE", _S), ("DATA_TYPE", _S),
           ("COLUMN_TYPE", _S), ("COLUMN_KEY", _S)]


def columns_rows(catalog: Catalog, tz: timezone) -> list[Row]:
    """One row per column of each user table, in definition order (ORDINAL_POSITION from 1)."""
    rows = []
    for table in catalog.user_tables():
        for position, column in enumerate(table.definition.columns, start=1):
            is_key = column.name == "id"  # the sandbox's tables have `id` as their clustered primary key
            values = ("def", table.database, table.name, column.name, position, None, "NO" if is_key else "YES",
                      column.type.split("(", 1)[0].lower(), column.type, "PRI" if is_key else "")
            rows.append(dict(zip([c for c, _ in COLUMNS], values, strict=True)))
    return rows


VIEWS: dict[str, tuple[list[tuple[str, ColumnType]], Callable[[Catalog, timezone], list[Row]]]] = {
    "SCHEMATA": (SCHEMATA, schemata_rows),
    "TABLES": (TABLES, tables_rows),
    "COLUMNS": (COLUMNS, columns_rows),
}


def query(select: exp.Select, view: str, catalog: Catalog, tz: timezone) -> ResultSet:
    if view.upper() not in VIEWS:
        raise errors.not_supported(f"INFORMATION_SCHEMA.{view}")
    columns, make_rows = VIEWS[view.upper()]
    return evaluate(select, f"INFORMATION_SCHEMA.{view}", columns, make_rows(catalog, tz))


def evaluate(select: exp.Select, label: str, columns: list[tuple[str, ColumnType]], rows: list[Row]) -> ResultSet:
    """A SELECT over one in-memory table (`label` names it in refusals), with the clauses listed above."""
    for arg in ("joins", "group", "having", "distinct", "windows", "qualify", "laterals", "pivots"):
        if select.args.get(arg):
            raise errors.not_supported(f"{arg.upper()} on {label}")
    types = _Types(dict(columns), label)
    where = select.args.get("where")
    if where is not None:
        rows = [row for row in rows if _eval(where.this, row, types) is True]
    order = select.args.get("order")
    if order is not None:
        for ordered in reversed(order.expressions):
            name = _column_name(ordered.this, types, "order clause")
            rows.sort(key=lambda r, n=name: (r[n] is not None, _sort_key(r[n])), reverse=bool(ordered.args.get("desc")))
    rows = _limit(select, rows)
    items = select.expressions
    if len(items) == 1 and isinstance(_unalias(items[0]), exp.Count) and isinstance(_unalias(items[0]).this, exp.Star):
        name = items[0].alias or "COUNT(*)"
        return ResultSet([[len(rows)]], [ResultColumn(name, ColumnType.LONGLONG)])
    out: list[tuple[str, str]] = []  # (result name, view column)
    for item in items:
        node = _unalias(item)
        if isinstance(node, exp.Star):
            out += [(name, name) for name, _ in columns]
        elif isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            out += [(name, name) for name, _ in columns]
        elif isinstance(node, exp.Column):
            out.append((item.alias or node.name, _column_name(node, types, "field list")))
        else:
            raise errors.not_supported(f"SELECT {item.sql(dialect='mysql')} FROM {label}")
    result = [[row[column] for _, column in out] for row in rows]
    return ResultSet(result, [ResultColumn(name, types.columns[column]) for name, column in out])


class _Types:
    """A table's column types, and its name for refusals."""

    def __init__(self, columns: dict[str, ColumnType], label: str) -> None:
        self.columns = columns
        self.label = label

    def __contains__(self, name: str) -> bool:
        return name in self.columns


def _unalias(node: exp.Expression) -> exp.Expression:
    return node.this if isinstance(node, exp.Alias) else node


def _limit(select: exp.Select, rows: list[Row]) -> list[Row]:
    def number(node: exp.Expression | None) -> int:
        if node is None:
            return 0
        if not isinstance(node, exp.Literal) or not node.name.isdigit():
            raise errors.not_supported(f"LIMIT {node.sql(dialect='mysql')}")
        return int(node.name)

    limit, offset = select.args.get("limit"), select.args.get("offset")
    skip = number(offset.expression) if offset is not None else 0
    if limit is None:
        return rows[skip:]
    return rows[skip : skip + number(limit.expression)]


def _column_name(node: exp.Expression, types: _Types, where: str) -> str:
    if not isinstance(node, exp.Column):
        raise errors.not_supported(f"{node.sql(dialect='mysql')} in the {where} on {types.label}")
    name = node.name.upper()
    if name not in types:
        raise errors.bad_field(node.name, where)
    return name


def _sort_key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else (value if value is not None else 0)


def _literal(node: exp.Expression, row: Row, types: _Types) -> Any:
    if isinstance(node, exp.Column):
        return row[_column_name(node, types, "where clause")]
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return int(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.name
        return float(node.name) if any(c in node.name for c in ".eE") else int(node.name)
    if isinstance(node, exp.Neg):
        value = _literal(node.this, row, types)
        return -value if isinstance(value, int | float) else None
    if isinstance(node, exp.Paren):
        return _literal(node.this, row, types)
    raise errors.not_supported(f"{node.sql(dialect='mysql')} in a WHERE on {types.label}")


def _compare(left: Any, right: Any) -> int | None:
    """MySQL-ish: NULL compares to nothing; numbers numerically; strings case-insensitively."""
    if left is None or right is None:
        return None
    if isinstance(left, int | float) != isinstance(right, int | float):
        try:
            left, right = float(left), float(right)
        except (TypeError, ValueError):
            left, right = str(left), str(right)
    if isinstance(left, str):
        left, right = left.lower(), str(right).lower()
    return (left > right) - (left < right)


def like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, str(value), re.IGNORECASE | re.DOTALL) is not None


_COMPARISONS: dict[type[exp.Expression], Callable[[int], bool]] = {
    exp.EQ: lambda c: c == 0, exp.NEQ: lambda c: c != 0, exp.GT: lambda c: c > 0, exp.GTE: lambda c: c >= 0,
    exp.LT: lambda c: c < 0, exp.LTE: lambda c: c <= 0,
}


def _eval(node: exp.Expression, row: Row, types: _Types) -> bool | None:
    """Three-valued: True, False or None (NULL)."""
    if isinstance(node, exp.Paren):
        return _eval(node.this, row, types)
    if isinstance(node, exp.And | exp.Or):
        left, right = _eval(node.this, row, types), _eval(node.expression, row, types)
        if isinstance(node, exp.And):
            return False if False in (left, right) else None if None in (left, right) else True
        return True if True in (left, right) else None if None in (left, right) else False
    if isinstance(node, exp.Not):
        inner = _eval(node.this, row, types)
        return None if inner is None else not inner
    if type(node) in _COMPARISONS:
        compared = _compare(_literal(node.this, row, types), _literal(node.expression, row, types))
        return None if compared is None else _COMPARISONS[type(node)](compared)
    if isinstance(node, exp.In) and node.expressions:
        value = _literal(node.this, row, types)
        results = [_compare(value, _literal(e, row, types)) for e in node.expressions]
        return True if 0 in results else None if None in results else False
    if isinstance(node, exp.Like):
        return like(_literal(node.this, row, types), _literal(node.expression, row, types))
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return _literal(node.this, row, types) is None
    raise errors.not_supported(f"{node.sql(dialect='mysql')} in a WHERE on {types.label}")
