"""The part of kubectl's JSONPath that printer columns use, evaluated by `jsonpath-ng` (its `ext` parser).

Supported: `.a.b`, `.a[0]`, `.a[-1]`, `.a[1:3]`, `.a[*].b`, `.a.*`, `['x.y']` / `["x.y"]` map keys and
filters `[?(@.type=="Ready")]` (==, !=, <, <=, >, >= against a string, number or boolean literal, or
`[?(@.x)]` for existence). An optional `{...}` wrapper and leading `$` are accepted. Missing keys give no
result rather than an error, as with kube's `AllowMissingKeys(true)`.

What stays here is the gate, not the evaluation: jsonpath-ng reads more than kubectl's JSONPath (regular
expression filters `=~`, which kubectl refuses, and bare names in brackets), and more than the sandbox has
checked against kube (recursive descent `..`), so such paths are refused (JSONPathError) before it sees them.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as _jsonpath_parse

_SLICE = re.compile(r"(-?\d*):(-?\d*)(?::(-?\d+))?$")
_FILTER = re.compile(
    r"\?\(\s*@((?:\.[A-Za-z0-9_\-/]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*"
    r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|true|false))?\s*\)$"
)


class JSONPathError(ValueError):
    """A path outside the supported subset."""


def _check_bracket(body: str, path: str) -> None:
    body = body.strip()
    if body == "*" or re.fullmatch(r"-?\d+", body) or _SLICE.match(body) or _FILTER.match(body):
        return
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        return
    raise JSONPathError(f"unsupported JSONPath element [{body}] in {path!r}")


@functools.lru_cache(maxsize=512)
def parse(path: str) -> Any:
    """The compiled path (jsonpath-ng), once the kubectl subset has accepted it."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if text and not text.startswith((".", "[")):
        raise JSONPathError(f"unexpected {text[0]!r} at offset 0 in {path!r}")
    i = 0
    while i < len(text):
        if text.startswith("..", i):
            raise JSONPathError(f"recursive descent (..) is not supported, in {path!r}")
        if text[i] == "[":
            end = _bracket_end(text, i, path)
            _check_bracket(text[i + 1:end], path)
            i = end + 1
        else:
            i += 1
    try:
        return _jsonpath_parse("$" + text)
    except (JsonPathLexerError, JsonPathParserError) as exc:
        raise JSONPathError(f"invalid JSONPath {path!r}: {exc}") from exc


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



def evaluate(path: str, obj: Any) -> list[Any]:
    """All values `path` selects in `obj`, in document order (an empty list when nothing matches)."""
    return [match.value for match in parse(path).find(obj)]
