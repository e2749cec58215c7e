"""The error reporter: pydantic's errors as `file: cluster "x": field.path: message` lines, each problem once,
a bad default reported under `defaults`, unknown keys with a did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from .cluster import ProjectConfig, duplicate_clusters, merged_clusters
from .errors import FieldProblems, as_loc, dotted


class Reporter:
    """Turns pydantic errors into `file: cluster "x": field.path: message` lines."""

    def __init__(self, path: str | Path, raw: Mapping[str, Any]) -> None:
        self.path = str(path)
        self.raw = raw
        clusters = raw.get("clusters")
        self.clusters: list[Any] = clusters if isinstance(clusters, list) else []
        defaults = raw.get("defaults")
        self.defaults: Mapping[str, Any] = defaults if isinstance(defaults, Mapping) else {}

    def problems(self, exc: ValidationError) -> list[str]:
        lines: list[str] = []
        for error in exc.errors():
            for line in self._lines(error):
                if line not in lines:  # a bad default shows up once, not once per cluster
                    lines.append(line)
        if not any("duplicate cluster" in line for line in lines):
            merged = merged_clusters(self.raw) or []
            keys = ((i, c.get("namespace"), c.get("name")) for i, c in enumerate(merged) if isinstance(c, Mapping))
            lines.extend(f"{self.path}: {self._who(i)}: {msg}" for i, msg in duplicate_clusters(keys))
        return lines

    def _lines(self, error: Mapping[str, Any]) -> Iterator[str]:
        loc = tuple(error["loc"])
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, FieldProblems):
            for field, msg in inner.problems:
                yield self._line((*loc, *as_loc(field)), msg)
            return
        yield self._line(loc, self._message(error, loc))

    def _line(self, loc: tuple[Any, ...], msg: str) -> str:
        if len(loc) >= 2 and loc[0] == "clusters" and isinstance(loc[1], int):
            index, field = loc[1], loc[2:]
            if field and self._from_defaults(index, field):
                return f"{self.path}: defaults: {dotted(field)}: {msg}"
            where = f"{self._who(index)}: {dotted(field)}" if field else self._who(index)
            return f"{self.path}: {where}: {msg}"
        return f"{self.path}: {dotted(loc) or '(top level)'}: {msg}"

    def _who(self, index: int) -> str:
        name = self._name(index)
        if not name:
            return f"clusters[{index}] (no name)"
        repeated = sum(self._name(i) == name for i in range(len(self.clusters))) > 1
        return f'cluster "{name}" (clusters[{index}])' if repeated else f'cluster "{name}"'

    def _name(self, index: int) -> str | None:
        cluster = self.clusters[index] if index < len(self.clusters) else None
        name = cluster.get("name") if isinstance(cluster, Mapping) else None
        return name if isinstance(name, str) and name else None

    def _from_defaults(self, index: int, field: tuple[Any, ...]) -> bool:
        """Whether the offending value was written under `defaults` rather than in the cluster itself."""
        cluster = self.clusters[index] if index < len(self.clusters) else None
        return not _has_path(cluster, field) and _has_path(self.defaults, field)

    @staticmethod
    def _message(error: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
        kind, msg, value = error["type"], error["msg"], error.get("input")
        if kind == "extra_forbidden":
            known = _known_keys(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"unknown key; {hint}allowed keys: {', '.join(known)}"
        msg = msg.removeprefix("Value error, ")
        scalar = value is None or isinstance(value, str | int | float | bool)
        if kind != "missing" and scalar and "(got " not in msg:
            msg = f"{msg} (got {value!r})"
        return msg


def _has_path(data: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _nested(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model of field `name` of `model` (through `X | None` and `list[X]`), or None for a plain value."""
    field = model.model_fields.get(name)
    todo = [field.annotation] if field is not None else []
    while todo:
        kind = todo.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
        todo.extend(get_args(kind))
    return None


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at `loc` (for did-you-mean on unknown keys)."""
    model: type[BaseModel] = ProjectConfig
    for part in loc:
        if isinstance(part, int):
            continue
        model = _nested(model, part) or model
    return list(model.model_fields)
