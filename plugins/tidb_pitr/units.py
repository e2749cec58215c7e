"""Durations and sizes as people write them: `30d`, `1h30m`, `4.2 s`, `1.5 GB` (not `30 days, 0:00:00`)."""

from __future__ import annotations

from datetime import timedelta

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


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
