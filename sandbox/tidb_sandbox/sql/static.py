"""SELECT without FROM: literals, system variables and the functions a TiDB client asks for."""

from __future__ import annotations

from typing import Any, Protocol

from mysql_mimic import ColumnType, ResultColumn, ResultSet
from sqlglot import expressions as exp

from . import errors

# sqlglot's classes for functions it knows by another name.
_FUNCTION_NAMES: dict[type[exp.Expression], str] = {
    exp.CurrentVersion: "VERSION", exp.CurrentSchema: "DATABASE", exp.CurrentUser: "CURRENT_USER",
    exp.CurrentTimestamp: "NOW",
}
_SELECT_ONLY = {"expressions", "limit", "hint"}


class Scope(Protocol):
    def variable(self, name: str, scope: str) -> Any: ...

    def function(self, name: str, args: list[exp.Expression]) -> tuple[Any, ColumnType]: ...


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    return _FUNCTION_NAMES.get(type(node), node.sql_name())


def value_type(value: Any) -> ColumnType:
    if isinstance(value, bool | int):
        return ColumnType.LONGLONG
    if isinstance(value, float):
        return ColumnType.DOUBLE
    return ColumnType.VAR_STRING


def _value(node: exp.Expression, scope: Scope) -> tuple[Any, ColumnType]:
    if isinstance(node, exp.Paren):
        return _value(node.this, scope)
    if isinstance(node, exp.Null):
        return None, ColumnType.VAR_STRING
    if isinstance(node, exp.Boolean):
        return int(node.this), ColumnType.LONGLONG
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.name, ColumnType.VAR_STRING
        number = float(node.name) if any(c in node.name for c in ".eE") else int(node.name)
        return number, value_type(number)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        number, kind = _value(node.this, scope)
        return -number, kind
    if isinstance(node, exp.SessionParameter):
        value = scope.variable(node.name, node.text("kind").upper() or "SESSION")
        if isinstance(value, bool):
            value = int(value)
        return value, value_type(value)
    if isinstance(node, exp.Func):
        args = [a for a in node.args.values() if isinstance(a, exp.Expression)] if not isinstance(
            node, exp.Anonymous) else list(node.expressions)
        return scope.function(function_name(node), args)
    raise errors.not_supported(f"SELECT {node.sql(dialect='mysql')}")


def static_select(select: exp.Select, names: list[str], scope: Scope) -> ResultSet:
    extra = [k for k, v in select.args.items() if v and k not in _SELECT_ONLY]
    if extra:
        raise errors.not_supported(f"SELECT with {extra[0].upper()} and no FROM")
    row, columns = [], []
    items = select.expressions
    for i, item in enumerate(items):
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Star):
            raise errors.no_tables_used()
        value, kind = _value(node, scope)
        name = item.alias if isinstance(item, exp.Alias) else (
            names[i] if len(names) == len(items) else item.sql(dialect="mysql"))
        row.append(value)
        columns.append(ResultColumn(name, kind))
    limit = select.args.get("limit")
    count = 1
    if limit is not None:
        amount = limit.expression
        if not isinstance(amount, exp.Literal) or not amount.name.isdigit():
            raise errors.not_supported(f"LIMIT {amount.sql(dialect='mysql')}")
        count = min(1, int(amount.name))
    return ResultSet([row] * count, columns)
