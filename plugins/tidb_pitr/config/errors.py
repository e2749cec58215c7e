"""How a configuration problem is told: `ConfigError` (every problem, one line each) and the cross-field
`FieldProblems` a model validator raises so that each problem keeps its own field path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration file cannot be used; `problems` holds one self-contained line per problem."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{self.path}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(message)


# A problem found by a cross-field validator: the path below the model ("storage.region", or a loc tuple)
# and the message. Raised together, so each one is reported with its own precise path.
Problem = tuple[str | tuple[Any, ...], str]


class FieldProblems(ValueError):
    """Problems found together by one model validator, each with its path below the model."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{dotted(as_loc(field))}: {msg}" for field, msg in problems))


def as_loc(field: str | tuple[Any, ...]) -> tuple[Any, ...]:
    """A dotted field name or a location tuple, as a location tuple."""
    return field if isinstance(field, tuple) else tuple(field.split("."))


def raise_if(problems: list[Problem]) -> None:
    """Raise the problems found, if any, together."""
    if problems:
        raise FieldProblems(problems)


def dotted(loc: Iterable[Any]) -> str:
    """`clusters[0].storage.region` from a pydantic location."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
