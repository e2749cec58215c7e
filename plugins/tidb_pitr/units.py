"""Durations and sizes as people write them: `30d`, `1h30m`, `2.5s`, `1.5 GB` (not `30 days, 0:00:00`).

The one duration parser (`parse_duration`: what `include/clusters.yaml` accepts) and the one formatter
(`format_duration`: config messages, plan and run notes, logs, the status page's API) of the package.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))

_DURATION = re.compile(r"(?:\d+[wdhms])+")
_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_TIMEDELTA = TypeAdapter(timedelta)  # ISO-8601 (`PT10M`, `P30D`) and numbers of seconds, as pydantic reads them
DURATION_FORMS = "a duration such as 10m, 1h30m, 30d, ISO-8601 PT10M / P30D, or a number of seconds"


def parse_duration(value: Any) -> timedelta:
    """`10m`, `1h30m`, `30d`, `2w`, ISO-8601 `PT10M`, or seconds (int/float) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):  # YAML `yes`/`no` would otherwise pass as 1/0 seconds
        raise ValueError(f"expected {DURATION_FORMS}")
    if isinstance(value, str) and _DURATION.fullmatch(value.strip().lower()):
        parts = _DURATION_PART.findall(value.strip().lower())
        return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts))
    try:
        return _TIMEDELTA.validate_python(value)
    except ValidationError:
        raise ValueError(f"expected {DURATION_FORMS}") from None


def format_duration(value: timedelta | float) -> str:
    """`30d`, `2d3h`, `1h30m`, `10m`, `45s`, `2.5s`; negative values keep their sign."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return f"-{format_duration(-seconds)}"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s") if seconds < 10 else f"{seconds:.0f}s"
    out, rest = "", round(seconds)
    for suffix, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            out += f"{count}{suffix}"
    if rest and seconds < 3600:
        out += f"{rest}s"
    return out


def format_bytes(count: float) -> str:
    """Decimal units as BR and the TiDB docs print them: `840 B`, `12.3 KB`, `1.5 GB`."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")
