"""Row-level SELECT over one user table at a read TSO: what a comparison needs to fingerprint a table's rows
without its table ID (COUNT(*), BIT_XOR, CRC32, CONCAT_WS, CONCAT, MD5, SHA2, ISNULL / IS NULL, column
lists, WHERE with comparisons, ORDER BY, LIMIT).

sqlglot's Python executor runs the query; the functions it would evaluate with other semantics are given
MySQL's (TiDB's) here, and any expression outside the list above is refused with TiDB's 1105 before
anything runs, so no query is answered with a guess.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlglot
from mysql_mimic import ColumnType, ResultColumn, ResultSet
from sqlglot import expressions as exp
from sqlglot import planner
from sqlglot.errors import ExecuteError, OptimizeError
from sqlglot.executor.python import PythonExecutor
from sqlglot.executor.table import ensure_tables
from sqlglot.optimizer import optimize

from ..data.mvcc import Row
from . import errors
from .catalog import Catalog, TableInfo

_TABLE = "t"  # the one table the executor sees; the query's own name is swapped for it
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)", re.IGNORECASE)
_INTEGER = re.compile(r"^(tiny|small|medium|big)?int", re.IGNORECASE)

# Node types a query may hold; every other one is refused (a function the sandbox does not know included).
_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Star, exp.Alias,
    exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Neg, exp.Where, exp.Order, exp.Ordered, exp.Limit,
    exp.Offset, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
    exp.Between, exp.Count, exp.BitwiseXorAgg, exp.ConcatWs, exp.Concat, exp.MD5, exp.SHA2, exp.Min, exp.Max,
    exp.Sum,
)
_ANONYMOUS = {"CRC32"}  # functions sqlglot has no node for


def mysql_text(value: Any) -> str:
    """A value as MySQL turns it into a string (CONCAT, CRC32, MD5): booleans are 1/0, decimals keep scale."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _null_if_none(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args: None if any(a is None for a in args) else fn(*args)


def _concat_ws(separator: Any, *args: Any) -> str | None:
    # tidb `pkg/expression/builtin_string.go` `builtinConcatWSSig.evalString`: a NULL separator gives NULL,
    # NULL arguments after it are skipped, empty strings are not.
    if separator is None:
        return None
    return mysql_text(separator).join(mysql_text(a) for a in args if a is not None)


def _sha2(value: Any, length: Any) -> str | None:
    bits = int(length) if length is not None else None
    algorithm = {0: "sha256", 224: "sha224", 256: "sha256", 384: "sha384", 512: "sha512"}.get(bits or 0)
    if value is None or algorithm is None:
        return None  # MySQL: an unsupported length gives NULL
    return hashlib.new(algorithm, mysql_text(value).encode()).hexdigest()


def _bit_xor(values: Any) -> int:
    # BIT_XOR ignores NULLs and is 0 over no rows (an unsigned 64-bit result).
    result = 0
    for value in values:
        if value is not None:
            result ^= int(value) & 0xFFFFFFFFFFFFFFFF
    return result


ENV: dict[str, Callable[..., Any]] = {
    "CONCATWS": _concat_ws,
    "CONCAT": _null_if_none(lambda *args: "".join(mysql_text(a) for a in args)),
    # tidb `pkg/expression/builtin_math.go` `builtinCRC32Sig.evalInt`: crc32.ChecksumIEEE of the value as a string.
    "CRC32": _null_if_none(lambda value: zlib.crc32(mysql_text(value).encode())),
    "MD5": _null_if_none(lambda value: hashlib.md5(mysql_text(value).encode()).hexdigest()),
    "SHA2": _sha2,
    "BITWISEXORAGG": _bit_xor,
}


def _check_supported(select: exp.Select) -> None:
    for node in select.walk():
        if isinstance(node, exp.Anonymous):
            if node.name.upper() not in _ANONYMOUS:
                raise errors.not_supported(f"the function {node.name.upper()}()")
            continue
        if isinstance(node, exp.DataType | exp.Var):
            continue
        if not isinstance(node, _ALLOWED):
            raise errors.not_supported(f"{node.sql(dialect='mysql')} in a SELECT on a table")
    for arg in ("joins", "group", "having", "distinct", "windows", "qualify", "laterals", "pivots", "with_"):
        if select.args.get(arg):
            raise errors.not_supported(f"{arg.upper()} in a SELECT on a table")


def _column_types(table: TableInfo) -> dict[str, str]:
    """The executor's schema: TiDB's column types mapped to the ones sqlglot knows."""
    types = {}
    for column in table.definition.columns:
        if _DECIMAL.match(column.type):
            types[column.name] = "DECIMAL"
        elif _INTEGER.match(column.type):
            types[column.name] = "BIGINT"
        else:
            types[column.name] = "VARCHAR"
    return types


def _typed(row: Row, table: TableInfo) -> Row:
    """A stored row with each value as TiDB returns it: decimals at their column's scale."""
    typed = dict(row)
    for column in table.definition.columns:
        value = typed.get(column.name)
        match = _DECIMAL.match(column.type)
        if match and value is not None:
            typed[column.name] = Decimal(str(value)).quantize(Decimal(1).scaleb(-int(match.group(2))))
    for column in table.definition.columns:
        typed.setdefault(column.name, None)
    return typed


def _column_type(values: list[Any]) -> ColumnType:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool | int):
        return ColumnType.LONGLONG
    if isinstance(sample, Decimal):
        return ColumnType.NEWDECIMAL
    if sample is None:
        return ColumnType.NULL
    return ColumnType.VAR_STRING


@functools.lru_cache(maxsize=256)
def _optimized(sql: str, schema: tuple[tuple[str, str], ...]) -> exp.Expression:
    """sqlglot's optimizer pass, once per query text and table shape (a comparison sends the same query to
    both sides and to every table of one shape)."""
    return optimize(sqlglot.parse_one(sql, read="mysql"), {_TABLE: dict(schema)}, leave_tables_isolated=True,
                    dialect="mysql")


def select_rows(select: exp.Select, catalog: Catalog, table: TableInfo, names: list[str]) -> ResultSet:
    """Run `select` (FROM the one user table `table`) over the table's rows at the catalog's TSO. `names`
    are the select items as written, which name unaliased result columns as in TiDB."""
    _check_supported(select)
    query = select.copy()
    source = query.args["from_"].this
    # Keep the name the query qualifies columns with (orders.id), whatever the executor calls the table.
    alias = source.args.get("alias") or exp.TableAlias(this=exp.to_identifier(source.name))
    query.args["from_"].set("this", exp.Table(this=exp.to_identifier(_TABLE), alias=alias))
    rows = [_typed(row, table) for _, row in sorted(catalog.rows(table).items())]
    schema = tuple(_column_types(table).items())
    try:
        optimized = _optimized(query.sql(dialect="mysql"), schema)
        result = PythonExecutor(env=ENV, tables=ensure_tables({_TABLE: rows})).execute(planner.Plan(optimized))
    except OptimizeError as err:
        missing = re.search(r"Column '?`?([^'`\s]+)", str(err))
        raise errors.bad_field(missing.group(1) if missing else str(err), "field list") from err
    except ExecuteError as err:
        raise errors.not_supported(f"this SELECT on {table.database}.{table.name} ({err})") from err
    out = [[int(v) if isinstance(v, bool) else v for v in row] for row in result.rows]
    columns = []
    for i, item in enumerate(select.expressions):
        name = item.alias if isinstance(item, exp.Alias) else names[i] if i < len(names) else item.sql("mysql")
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            columns = [ResultColumn(c, _column_type([r[j] for r in out])) for j, c in enumerate(result.columns)]
            break
        columns.append(ResultColumn(name, _column_type([r[i] for r in out])))
    return ResultSet(out, columns)
