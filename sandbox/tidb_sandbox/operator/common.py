"""Small helpers the simulated controllers share."""

from __future__ import annotations

import asyncio

from ..k8s.store import now_rfc3339

V1_FINALIZER = "tidb.pingcap.com/backup-protection"
V2_FINALIZER = "pingcap.com/finalizer"
V2_GROUP = "br.pingcap.com"


def finalizer_for(group: str) -> str:
    return V2_FINALIZER if group == V2_GROUP else V1_FINALIZER


def humanize_bytes(size: int) -> str:
    """go-humanize `Bytes`, which the operator uses for backupSizeReadable (SI units)."""
    if size < 10:
        return f"{size} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return f"{text} {units[unit]}"


def go_duration(seconds: float) -> str:
    """A Go `time.Duration` string (`1m2.5s`), the format of status.timeTaken."""
    seconds = round(seconds, 3)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".")
    return out + f"{secs_text or '0'}s"


def now() -> str:
    return now_rfc3339()


async def sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
