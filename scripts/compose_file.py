"""docker-compose.yaml read the way Compose reads it: YAML merges, then `${...}` interpolation.

PyYAML's safe_load resolves the `<<: *anchor` merges the way Compose does. `${...}` references are expanded by a
small re-implementation of Compose's interpolation (`:-`, `-`, `:?`, `?`, `:+`, `+`, nesting, `$$`). Shared by
tests/deploy/test_compose.py (the file checked by parsing) and scripts/production_stack.py (the file's environment
run for real), so what is checked, what is run and what is shipped cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.yaml"

# --- interpolation -----------------------------------------------------------------------------------------

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":?", ":-", ":+", "?", "-", "+")


class MissingRequired(Exception):
    """A `${VAR:?message}` / `${VAR?message}` whose variable is missing."""


def _closing_brace(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced ${{ in {text!r}")


def _split(body: str) -> tuple[str, str | None, str]:
    match = _NAME.match(body)
    assert match, f"bad variable reference ${{{body}}}"
    rest = body[match.end():]
    if not rest:
        return match.group(), None, ""
    for op in _OPERATORS:
        if rest.startswith(op):
            return match.group(), op, rest[len(op):]
    raise AssertionError(f"unsupported interpolation ${{{body}}}")


def walk_refs(text: str) -> Iterator[tuple[str, str | None, str]]:
    """Every `${NAME...}` / `$NAME` as (name, operator, argument), nested ones included; `$$` is skipped."""
    i = 0
    while i < len(text):
        if text[i] != "$":
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 1)
            name, op, arg = _split(text[i + 2:end])
            yield name, op, arg
            yield from walk_refs(arg)
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            yield match.group(), None, ""
            i = match.end()
        else:
            i += 1


def interpolate(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        nxt = text[i + 1:i + 2]
        if char != "$":
            out.append(char)
            i += 1
        elif nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 1)
            out.append(_expand(text[i + 2:end], env))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _expand(body: str, env: Mapping[str, str]) -> str:
    name, op, arg = _split(body)
    value = env.get(name)
    if op is None:
        return value or ""
    present = bool(value) if op.startswith(":") else value is not None
    if op in (":-", "-"):
        return value if present else interpolate(arg, env)  # type: ignore[return-value]
    if op in (":?", "?"):
        if not present:
            raise MissingRequired(f"{name}: {arg}")
        return value  # type: ignore[return-value]
    return interpolate(arg, env) if present else ""


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not (isinstance(doc, dict) and isinstance(doc.get("services"), dict)):
        raise ValueError(f"{path}: not a Compose file (no services)")
    return doc


def service_environment(doc: Mapping[str, Any], service: str, variables: Mapping[str, str]) -> dict[str, str]:
    """The environment one service's container gets, with `${...}` expanded from `variables` (as from .env)."""
    raw = doc["services"][service].get("environment") or {}
    if isinstance(raw, list):  # the `- NAME=value` form
        raw = dict(item.split("=", 1) for item in raw)
    return {name: interpolate(str(value), variables) for name, value in raw.items()}
