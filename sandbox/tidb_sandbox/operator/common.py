"""Small helpers the simulated controllers share."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..k8s.store import now_rfc3339

V1_FINALIZER = "tidb.pingcap.com/backup-protection"
V2_FINALIZER = "pingcap.com/finalizer"
V2_GROUP = "br.pingcap.com"


async def job_reads_spec(ctx: Any, rt: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """A Job's pod starts a step after the controller made it and reads the CR then: its spec, or None when the
    CR was deleted meanwhile (the Job then does nothing)."""
    await sleep(ctx.config.step_delay)
    obj = ctx.get(rt, namespace, name)
    return None if obj is None else obj.get("spec") or {}


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
    """A Go `time.Duration` string (`1m2.5s`), the format of status.timeTaken. Not `durationpy.to_str`: it drops
    the zero units Go prints (`10m` for Go's `10m0s`, `1h` for `1h0m0s`, `0` for `0s`)."""
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
        await clock.sleep(seconds)


def _go_path_join(*parts: str) -> str:
    """Go's `path.Join`: non-empty elements joined by '/', then cleaned (no '//', no trailing '/')."""
    joined = "/".join(p for p in parts if p)
    if not joined:
        return ""
    rooted = joined.startswith("/")
    cleaned: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if cleaned and cleaned[-1] != "..":
                cleaned.pop()
            elif not rooted:
                cleaned.append(part)
            continue
        cleaned.append(part)
    text = "/".join(cleaned)
    return "/" + text if rooted else (text or ".")


def backup_path(block: dict[str, Any] | None) -> str:
    """`status.backupPath` as the backup manager writes it (`GetStoragePath`, v1 and v2
    `cmd/backup-manager/app/util/util.go`): `s3://b/prefix` (no trailing '/'), `azure://c/prefix/`,
    `gcs://b/prefix/`, `local://<mount path>/<prefix>`."""
    if not block:
        return ""
    kind, conf = next(iter(block.items()))
    prefix = conf.get("prefix") or ""
    if kind == "s3":
        return f"s3://{_go_path_join(conf.get('bucket') or '', prefix)}"
    if kind == "gcs":
        return f"gcs://{_go_path_join(conf.get('bucket') or '', prefix)}/"
    if kind == "azblob":
        return f"azure://{_go_path_join(conf.get('container') or '', prefix)}/"
    if kind == "local":
        mount = (conf.get("volumeMount") or {}).get("mountPath") or ""
        return f"local://{_go_path_join(mount, prefix)}"
    return ""
