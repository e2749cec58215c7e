"""The part of kubectl's JSONPath that printer columns use.

Supported: `.a.b`, `.a[0]`, `.a[-1]`, `.a[1:3]`, `.a[*].b`, `.a.*`, `['x.y']` / `["x.y"]` map keys and
filters `[?(@.type=="Ready")]` (==, !=, <, <=, >, >= against a string, number or boolean literal, or
`[?(@.x)]` for existence). An optional `{...}` wrapper and leading `$` are accepted. Missing keys give no
result rather than an error, as with kube's `AllowMissingKeys(true)`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_FIELD = re.compile(r"[A-Za-z0-9_\-/]+")
_FILTER = re.compile(
    r"\?\(\s*@((?:\.[A-Za-z0-9_\-/]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*"
    r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|true|false))?\s*\)$"
)
_SLICE = re.compile(r"(-?\d*):(-?\d*)(?::(-?\d+))?$")

Step = tuple[Any, ...]


class JSONPathError(ValueError):
    """A path outside the supported subset."""


def _literal(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return float(text) if "." in text else int(text)


def _bracket(body: str, path: str) -> Step:
    body = body.strip()
    if body == "*":
        return ("all",)
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        return ("key", body[1:-1])
    if re.fullmatch(r"-?\d+", body):
        return ("index", int(body))
    m = _SLICE.match(body)
    if m:
        start, end, step = (int(g) if g else None for g in m.groups())
        return ("slice", start, end, step)
    m = _FILTER.match(body)
    if m:
        fields = tuple(f for f in m.group(1).split(".") if f)
        op = m.group(2)
        return ("filter", fields, op, _literal(m.group(3)) if op else None)
    raise JSONPathError(f"unsupported JSONPath element [{body}] in {path!r}")


@functools.lru_cache(maxsize=512)
def parse(path: str) -> tuple[Step, ...]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            if text.startswith(".*", i):
                steps.append(("all",))
                i += 2
                continue
            m = _FIELD.match(text, i + 1)
            if not m:
                raise JSONPathError(f"expected a field name at offset {i + 1} in {path!r}")
            steps.append(("key", m.group(0)))
            i = m.end()
        elif ch == "[":
            end = _bracket_end(text, i, path)
            steps.append(_bracket(text[i + 1:end], path))
            i = end + 1
        else:
            raise JSONPathError(f"unexpected {ch!r} at offset {i} in {path!r}")
    return tuple(steps)


def _bracket_end(text: str, start: int, path: str) -> int:
    quote = None
    depth = 0
    for j in range(start, len(text)):
        c = text[j]
        if quote:
            if c == "\\":
                continue
            if c == quote and text[j - 1] != "\\":
                quote = None
        elif c in "\"'":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
            if depth == 0 and c == "]":
                return j
    raise JSONPathError(f"unterminated [ in {path!r}")


def _compare(left: Any, op: str, right: Any) -> bool:
    # bool is an int in Python; kubectl never treats them as comparable
    if isinstance(left, bool) or isinstance(right, bool):
        if not (isinstance(left, bool) and isinstance(right, bool)) or op not in ("==", "!="):
            return False
    elif isinstance(left, (int, float)) != isinstance(right, (int, float)):
        return False
    elif not isinstance(left, (int, float, str)):
        return False
    try:
        return {
            "==": left == right, "!=": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right,
        }[op]
    except TypeError:
        return False


def _lookup(value: Any, fields: tuple[str, ...]) -> tuple[bool, Any]:
    for f in fields:
        if not isinstance(value, dict) or f not in value:
            return False, None
        value = value[f]
    return True, value


def _apply(step: Step, values: list[Any]) -> list[Any]:
    kind = step[0]
    out: list[Any] = []
    for v in values:
        if kind == "key":
            if isinstance(v, dict) and step[1] in v:
                out.append(v[step[1]])
        elif kind == "all":
            if isinstance(v, list):
                out.extend(v)
            elif isinstance(v, dict):
                out.extend(v.values())
        elif kind == "index":
            if isinstance(v, list) and -len(v) <= step[1] < len(v):
                out.append(v[step[1]])
        elif kind == "slice":
            if isinstance(v, list):
                out.extend(v[slice(step[1], step[2], step[3])])
        elif kind == "filter" and isinstance(v, list):
            _, fields, op, literal = step
            for item in v:
                found, left = _lookup(item, fields)
                if found and (op is None or _compare(left, op, literal)):
                    out.append(item)
    return out


def evaluate(path: str, obj: Any) -> list[Any]:
    """All values `path` selects in `obj`, in document order (an empty list when nothing matches)."""
    values = [obj]
    for step in parse(path):
        values = _apply(step, values)
        if not values:
            break
    return values
