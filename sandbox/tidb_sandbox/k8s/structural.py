"""Structural schema handling: compiled schema nodes, pruning of unknown fields and defaulting.

A `Node` wraps one openAPIV3Schema node with its checks precomputed; children are compiled on first use and
cached, so the large Backup schemas cost nothing per request beyond the parts an object actually touches.
Pruning and defaulting follow apiextensions-apiserver (structuralpruning.Prune,
structuraldefaulting.PruneNonNullableNullsWithoutDefaults and structuraldefaulting.Default).
Written here because no Python library implements apiextensions' structural schemas (pruning, defaulting,
nullable); `jsonschema` validates and neither prunes nor defaults, nor words errors as kube does.
"""

from __future__ import annotations

import re
from typing import Any

from . import cel


class UnsupportedSchema(ValueError):
    """A schema keyword the sandbox does not validate; raised instead of accepting objects silently."""


# keywords a structural schema may carry that this validator does not implement: fail loudly on them
_UNSUPPORTED_KEYWORDS = ("allOf", "oneOf", "not", "patternProperties", "$ref", "dependencies",
                         "additionalItems")
# kube strips every other format it does not validate (int32, int64, double, ...) before validating
_FORMATS = {"date-time", "datetime", "date"}


def _go_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern; Go's `$` (no multiline) only matches at the very end, Python's `\\Z`."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        elif c == "$" and not in_class:
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


class Node:
    """One schema node with its checks precomputed; children are compiled on first use."""

    __slots__ = (
        "raw", "types", "type_label", "schema_type", "nullable", "enum", "required", "preserve", "embedded",
        "pattern", "pattern_text", "min_length", "max_length", "minimum", "maximum", "excl_min", "excl_max",
        "multiple_of", "min_items", "max_items", "min_props", "max_props", "format", "has_default", "default",
        "rules", "list_type", "list_keys", "addl_any", "_props", "_addl", "_items", "_any_of", "_defaulted",
    )

    def __init__(self, raw: dict[str, Any]):
        for key in _UNSUPPORTED_KEYWORDS:
            if key in raw:
                raise UnsupportedSchema(f"schema keyword {key!r} is not supported by the sandbox validator")
        if raw.get("uniqueItems"):
            raise UnsupportedSchema("uniqueItems: true is not supported (kube forbids it in CRDs)")
        self.raw = raw
        t = raw.get("type")
        self.schema_type = t or ""
        if raw.get("x-kubernetes-int-or-string"):
            self.types: tuple[str, ...] = ("integer", "string")  # kube's conversion sets this type list
        else:
            self.types = (t,) if t else ()
        self.type_label = ",".join(self.types)
        self.nullable = bool(raw.get("nullable"))
        self.enum = raw.get("enum")
        self.required = tuple(raw.get("required") or ())
        self.preserve = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
        self.embedded = bool(raw.get("x-kubernetes-embedded-resource"))
        self.pattern_text = raw.get("pattern")
        self.pattern = _go_regex(self.pattern_text) if self.pattern_text is not None else None
        self.min_length = raw.get("minLength")
        self.max_length = raw.get("maxLength")
        self.minimum = raw.get("minimum")
        self.maximum = raw.get("maximum")
        self.excl_min = bool(raw.get("exclusiveMinimum"))
        self.excl_max = bool(raw.get("exclusiveMaximum"))
        self.multiple_of = raw.get("multipleOf")
        self.min_items = raw.get("minItems")
        self.max_items = raw.get("maxItems")
        self.min_props = raw.get("minProperties")
        self.max_props = raw.get("maxProperties")
        fmt = raw.get("format")
        self.format = fmt if fmt in _FORMATS else None
        self.has_default = "default" in raw
        self.default = raw.get("default")
        self.rules = tuple(cel.compile_rule(e) for e in raw.get("x-kubernetes-validations") or ())
        self.list_type = raw.get("x-kubernetes-list-type")
        self.list_keys = tuple(raw.get("x-kubernetes-list-map-keys") or ())
        addl = raw.get("additionalProperties")
        # additionalProperties: true (or a schema-less map) keeps every key, like preserve-unknown-fields
        self.addl_any = addl is True
        self._props: dict[str, Node] = {}
        self._addl: Node | None = None
        self._items: Node | None = None
        self._any_of: tuple[Node, ...] | None = None
        self._defaulted: tuple[tuple[str, Node], ...] | None = None

    def defaulted(self) -> tuple[tuple[str, Node], ...]:
        """Properties that carry a default, computed once."""
        if self._defaulted is None:
            props = self.raw.get("properties") or {}
            self._defaulted = tuple(
                (k, n) for k, sub in props.items()
                if isinstance(sub, dict) and "default" in sub and (n := self.prop(k)) is not None
            )
        return self._defaulted

    def prop(self, name: str) -> Node | None:
        node = self._props.get(name)
        if node is None:
            props = self.raw.get("properties")
            if not props or name not in props:
                return None
            node = self._props[name] = Node(props[name])
        return node

    def addl(self) -> Node | None:
        if self._addl is None:
            sub = self.raw.get("additionalProperties")
            if isinstance(sub, dict):
                self._addl = Node(sub)
        return self._addl

    def items(self) -> Node | None:
        if self._items is None:
            sub = self.raw.get("items")
            if isinstance(sub, list):
                raise UnsupportedSchema("items given as a list of schemas is not supported")
            if isinstance(sub, dict):
                self._items = Node(sub)
        return self._items

    def any_of(self) -> tuple[Node, ...]:
        if self._any_of is None:
            self._any_of = tuple(Node(s) for s in self.raw.get("anyOf") or ())
        return self._any_of


_ROOTS: dict[int, tuple[dict[str, Any], Node, bool]] = {}


def _has_rules(schema: Any) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("x-kubernetes-validations"):
                return True
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return False


def root(schema: dict[str, Any]) -> tuple[Node, bool]:
    """The compiled root of a schema and whether any CEL rule exists in it (cached per schema object)."""
    hit = _ROOTS.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = _ROOTS[id(schema)] = (schema, Node(schema), _has_rules(schema))
    return hit[1], hit[2]


def copy_json(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_json(x) for x in v]
    return v


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _drop_null(v: Any, node: Node | None) -> bool:
    return v is None and node is not None and not node.nullable and not node.has_default


def prune(value: Any, node: Node | None, path: str, unknown: list[str], embedded: bool = False) -> None:
    """Drop (and record in `unknown`) keys the schema does not declare; `embedded` keeps type/meta keys."""
    if node is not None and node.preserve:
        skip_prune(value, node, path, unknown, embedded)
        return
    if isinstance(value, dict):
        if node is None:
            for key in list(value):
                unknown.append(join(path, key))
                del value[key]
            return
        embedded = embedded or node.embedded
        for key in list(value):
            v = value[key]
            if embedded and (key == "metadata" or (key in ("apiVersion", "kind") and isinstance(v, str))):
                continue  # ObjectMeta is decoded on its own; apiVersion/kind are type meta
            child = node.prop(key)
            if child is None:
                if node.addl_any:
                    continue
                child = node.addl()
                if child is None:
                    unknown.append(join(path, key))
                    del value[key]
                    continue
            if _drop_null(v, child):
                del value[key]
            else:
                prune(v, child, join(path, key), unknown)
    elif isinstance(value, list):
        items = node.items() if node is not None else None
        for i, v in enumerate(value):
            prune(v, items, f"{path}[{i}]", unknown)


def skip_prune(value: Any, node: Node, path: str, unknown: list[str], embedded: bool = False) -> None:
    """x-kubernetes-preserve-unknown-fields: keep unknown keys, still prune inside the declared ones."""
    if isinstance(value, dict):
        embedded = embedded or node.embedded
        for key in list(value):
            v = value[key]
            if embedded and key in ("apiVersion", "kind", "metadata"):
                continue
            child = node.prop(key) or node.addl()
            if child is None:
                continue
            if _drop_null(v, child):
                del value[key]
            else:
                prune(v, child, join(path, key), unknown)
    elif isinstance(value, list):
        items = node.items()
        if items is not None:
            for i, v in enumerate(value):
                skip_prune(v, items, f"{path}[{i}]", unknown)


def apply_defaults(value: Any, node: Node | None) -> None:
    """structuraldefaulting.Default: fill absent (or non-nullable null) fields whose schema has a default."""
    if node is None:
        return
    if isinstance(value, dict):
        for key, child in node.defaulted():
            if key not in value or (value[key] is None and not child.nullable):
                value[key] = copy_json(child.default)
        addl = node.addl()
        for key, v in list(value.items()):
            child = node.prop(key)
            if child is not None:
                apply_defaults(v, child)
            elif addl is not None:
                if v is None and not addl.nullable and addl.has_default:
                    value[key] = v = copy_json(addl.default)
                apply_defaults(v, addl)
    elif isinstance(value, list):
        items = node.items()
        if items is None:
            return
        for i, v in enumerate(value):
            if v is None and not items.nullable and items.has_default:
                value[i] = v = copy_json(items.default)
            apply_defaults(v, items)


