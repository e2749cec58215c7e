"""OpenAPI schema validation of a custom resource with kube-openapi's semantics and messages.

Also the two checks kube runs after it: x-kubernetes-list-type set/map uniqueness and x-kubernetes-validations
(CEL) rules. Field paths and messages are what apiextensions-apiserver makes of kube-openapi's results:
`spec.br.concurrency: Invalid value: "string": spec.br.concurrency in body must be of type integer: "string"`.
Written here, not on `jsonschema`: OpenAPI v3 schemas with kube's extensions and kube-openapi's messages and
field paths are not what a JSON Schema validator gives.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from .fielderrors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
    too_many,
    type_invalid,
)
from .goformat import go_float, go_quote
from .structural import Node, join

_DATE_TIME = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return "null" if v is None else type(v).__name__


def _type_ok(kind: str, value: Any, types: tuple[str, ...]) -> bool:
    if kind in types:
        return True
    if kind == "number" and "integer" in types and float(value).is_integer():
        return True  # kube-openapi accepts a float64 holding an integer for type integer
    return kind == "integer" and "number" in types


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _enum_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


def _bound(limit: Any, value: Any) -> str:
    # kube-openapi compares integers as int64 and prints the limit as one; floats print with %v
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(limit))
    return go_float(float(limit)) if isinstance(limit, float) else str(limit)


def _is_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return len(s) == 10


def _format_ok(fmt: str, s: str) -> bool:
    if fmt == "date":
        return _is_date(s)
    parts = s.lower().split("t")
    if len(s) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = _DATE_TIME.match(parts[1])
    return bool(m) and m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"


class Validator:
    """Walks value and schema together, collecting field errors in kube-openapi's order."""

    def __init__(self, prefix: str = ""):
        # "status" when validating only the status subtree, as kube's status strategy does
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def field(self, name: str) -> str:
        name = name[1:] if name.startswith(".") else name
        if not self.prefix:
            return name or "<nil>"
        return join(self.prefix, name)

    def validate(self, node: Node, value: Any, name: str) -> None:
        errs = self.errors
        if value is None:
            if node.types and not node.nullable:
                errs.append(type_invalid(self.field(name), "null",
                                         f'{name} in body must be of type {node.type_label}: "null"'))
            if node.enum is not None:
                errs.append(not_supported(self.field(name), None, [_enum_text(e) for e in node.enum]))
            return
        kind = _kind(value)
        if node.types and not _type_ok(kind, value, node.types):
            errs.append(type_invalid(self.field(name), kind,
                                     f'{name} in body must be of type {node.type_label}: "{kind}"'))
        if node.raw.get("anyOf"):
            self._any_of(node, value, name)
        if kind == "string":
            self._string(node, value, name)
        elif kind in ("integer", "number"):
            self._number(node, value, name)
        elif kind == "array":
            self._array(node, value, name)
        if node.enum is not None and not any(_json_equal(value, e) for e in node.enum):
            errs.append(not_supported(self.field(name), value, [_enum_text(e) for e in node.enum]))
        if kind == "object":
            self._object(node, value, name)

    def _any_of(self, node: Node, value: Any, name: str) -> None:
        first_failure: list[FieldError] | None = None
        for branch in node.any_of():
            sub = Validator(self.prefix)
            sub.validate(branch, value, name)
            if not sub.errors:
                return
            if first_failure is None:
                first_failure = sub.errors
        # a composite (non-field) error: kube reports it at the nil path with an empty value
        msg = f"{go_quote(name)} must validate at least one schema (anyOf)"
        self.errors.append(invalid("<nil>", "", msg))
        self.errors.extend(first_failure or ())

    def _string(self, node: Node, value: str, name: str) -> None:
        if node.max_length is not None and len(value) > node.max_length:
            self.errors.append(too_long(self.field(name), node.max_length))
        if node.min_length is not None and len(value) < node.min_length:
            self.errors.append(invalid(self.field(name), value,
                                       f"{name} in body should be at least {node.min_length} chars long"))
        if node.pattern is not None and not node.pattern.search(value):
            msg = f"{name} in body should match '{node.pattern_text}'"
            self.errors.append(invalid(self.field(name), value, msg))
        if node.format is not None and not _format_ok(node.format, value):
            msg = f"{name} in body must be of type {node.raw['format']}: {go_quote(value)}"
            self.errors.append(type_invalid(self.field(name), value, msg))

    def _number(self, node: Node, value: float, name: str) -> None:
        if node.multiple_of is not None and node.multiple_of != 0:
            q = value / node.multiple_of
            if not float(q).is_integer():
                msg = f"{name} in body should be a multiple of {_bound(node.multiple_of, value)}"
                self.errors.append(invalid(self.field(name), value, msg))
        if node.maximum is not None and (value >= node.maximum if node.excl_max else value > node.maximum):
            op = "less than" if node.excl_max else "less than or equal to"
            self.errors.append(invalid(self.field(name), value,
                                       f"{name} in body should be {op} {_bound(node.maximum, value)}"))
        if node.minimum is not None and (value <= node.minimum if node.excl_min else value < node.minimum):
            op = "greater than" if node.excl_min else "greater than or equal to"
            self.errors.append(invalid(self.field(name), value,
                                       f"{name} in body should be {op} {_bound(node.minimum, value)}"))

    def _array(self, node: Node, value: list[Any], name: str) -> None:
        items = node.items()
        if items is not None:
            for i, v in enumerate(value):
                self.validate(items, v, f"{name}[{i}]")
        if node.min_items is not None and len(value) < node.min_items:
            self.errors.append(invalid(self.field(name), len(value),
                                       f"{name} in body should have at least {node.min_items} items"))
        if node.max_items is not None and len(value) > node.max_items:
            self.errors.append(too_many(self.field(name), len(value), node.max_items))

    def _object(self, node: Node, value: dict[str, Any], name: str) -> None:
        if node.min_props is not None and len(value) < node.min_props:
            self.errors.append(invalid(self.field(name), len(value),
                                       f"{name} in body should have at least {node.min_props} properties"))
            return
        if node.max_props is not None and len(value) > node.max_props:
            self.errors.append(too_many(self.field(name), len(value), node.max_props))
            return
        addl = node.addl()
        props = node.raw.get("properties") or {}
        if addl is not None:
            for key, v in value.items():
                if key not in props:
                    self.validate(addl, v, f"{name}.{key}")
        for key, v in value.items():
            child = node.prop(key)
            if child is not None:
                self.validate(child, v, join(name, key))
        for key in node.required:
            if key not in value:
                self.errors.append(required(self.field(f"{name}.{key}")))


def _hashable(v: Any) -> Any:
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, dict):
        return ("m", tuple(sorted((k, _hashable(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("l", tuple(_hashable(x) for x in v))
    return ("s", v)


_MISSING = ("missing",)


def list_checks(node: Node | None, value: Any, path: str, errs: list[FieldError]) -> None:
    if node is None:
        return
    if isinstance(value, dict):
        addl = node.addl()
        for key, v in value.items():
            child = node.prop(key) or addl
            if child is not None and isinstance(v, (dict, list)):
                list_checks(child, v, join(path, key), errs)
    elif isinstance(value, list):
        if node.list_type == "set":
            seen: set[Any] = set()
            for i, v in enumerate(value):
                h = _hashable(v)
                if h in seen:
                    errs.append(duplicate(f"{path}[{i}]", v))
                seen.add(h)
        elif node.list_type == "map" and node.list_keys:
            _list_map_checks(node, value, path, errs)
        items = node.items()
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                list_checks(items, v, f"{path}[{i}]", errs)


def _list_map_checks(node: Node, value: list[Any], path: str, errs: list[FieldError]) -> None:
    for i, v in enumerate(value):
        if not isinstance(v, dict):
            errs.append(invalid(f"{path}[{i}]", v, "must be an object for an array of list-type map"))
            return
    items = node.items()
    seen: set[Any] = set()
    for i, v in enumerate(value):
        keys = {}
        for k in node.list_keys:
            if k in v:
                keys[k] = v[k]
            else:
                child = items.prop(k) if items is not None else None
                keys[k] = child.default if child is not None and child.has_default else _MISSING
        h = tuple((k, _hashable(x) if x is not _MISSING else x) for k, x in keys.items())
        if h in seen:
            errs.append(duplicate(f"{path}[{i}]", {k: x for k, x in keys.items() if x is not _MISSING}))
        seen.add(h)


def cel_checks(node: Node | None, value: Any, path: str, errs: list[FieldError]) -> None:
    if node is None or value is None:
        return
    for rule in node.rules:
        if not rule.evaluate(value):
            where = path
            for p in rule.field_path:
                where = join(where, p)
            where = where or "<nil>"
            if rule.reason == "FieldValueForbidden":
                errs.append(forbidden(where, rule.message))
            elif rule.reason == "FieldValueRequired":
                errs.append(required(where, rule.message))
            elif rule.reason == "FieldValueDuplicate":
                errs.append(duplicate(where, node.schema_type))
            else:
                errs.append(invalid(where, node.schema_type, rule.message))
    if isinstance(value, dict):
        addl = node.addl()
        for key, v in value.items():
            child = node.prop(key)
            if child is not None:
                cel_checks(child, v, join(path, key), errs)
            elif addl is not None:
                cel_checks(addl, v, f"{path}[{key}]", errs)
    elif isinstance(value, list):
        items = node.items()
        if items is not None:
            for i, v in enumerate(value):
                cel_checks(items, v, f"{path}[{i}]", errs)


BLOCKING = {"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany",
             "FieldValueTypeInvalid"}


