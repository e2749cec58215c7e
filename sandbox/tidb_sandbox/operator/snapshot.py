"""Snapshot backups: Scheduled -> Prepare -> Running -> Complete | Failed (reference section 2.3)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from ..k8s.crd import ResourceType
from ..storage import br_layout
from .common import go_duration, humanize_bytes, now, sleep
from .context import Context, StorageFailure, storage_block
from .tsparse import TsParseError, parse_ts_br

_V1_BR_BACKUP_TYPES = ("", "full", "db", "table")


def validate_backup(rt: ResourceType, obj: dict[str, Any]) -> str | None:
    """`ValidateBackup`: the message for an `Invalid` CR, or None."""
    spec = obj.get("spec") or {}
    where = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
    br = spec.get("br")
    if not br:
        return f"missing br config in spec of {where} (Dumpling backups are not simulated)"
    if not br.get("cluster"):
        return f"cluster should be configured for BR in spec of {where}"
    block = storage_block(spec)
    if block is None:
        return f"missing StorageProvider config in spec of {where}"
    kind, conf = next(iter(block.items()))
    if kind == "s3" and not conf.get("bucket"):
        return f"bucket should be configured for BR in spec of {where}"
    if kind == "azblob" and not conf.get("container"):
        return f"container should be configured for BR in spec of {where}"
    mode = spec.get("backupMode") or "snapshot"
    backup_type = spec.get("backupType") or ""
    if mode == "snapshot" and backup_type not in _V1_BR_BACKUP_TYPES:
        return f"invalid backupType value {backup_type}"
    if backup_type in ("db", "table") and not br.get("db") and not spec.get("tableFilter"):
        return f"DB should be configured for BR with backup type {backup_type} in spec of {where}"
    return None


async def run_snapshot_backup(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    group = rt.group
    condition = partial(ctx.set_condition, rt, namespace, name)

    obj = ctx.get(rt, namespace, name)
    if obj is None:
        return
    spec = obj.get("spec") or {}
    cluster = ctx.cluster_for(group, namespace, spec.get("br"))
    if isinstance(cluster, str):
        condition("RetryFailed", "GetTidbClusterFailed", cluster)
        return
    condition("Scheduled")
    await sleep(ctx.config.step_delay)
    try:
        location = ctx.open_storage(namespace, storage_block(spec))
    except StorageFailure as err:
        condition("Failed", err.reason, err.message)
        return
    condition("Prepare", backupPath=location.url)
    await sleep(ctx.config.step_delay)
    started = time.monotonic()
    condition("Running", timeStarted=now())
    while ctx.faults.hang_backups:  # a backup that hangs stays Running
        await sleep(0.2)
    failure = ctx.faults.take_backup_failure()
    if failure:
        condition("Failed", "BackupDataToRemoteFailed", failure)
        return
    try:
        backup_ts = parse_ts_br(spec["commitTs"]) if spec.get("commitTs") else ctx.alloc.next()
    except TsParseError as err:
        condition("Failed", "BackupDataToRemoteFailed", str(err))
        return
    try:
        if await ctx.io(location.exists, "backupmeta"):
            condition("Failed", "BackupDataToRemoteFailed",
                      "backup meta file exists in storage, there may be some backup files in the path already")
            return
        rows = cluster.data.rows_at(backup_ts)
        info = await ctx.io(br_layout.write_snapshot, location, rows, commit_ts=backup_ts,
                            cluster_id=cluster.data.cluster_id, stores=ctx.config.stores)
    except Exception as err:  # storage refusals surface as the BR job's failure message
        condition("Failed", "BackupDataToRemoteFailed", str(getattr(err, "message", err)))
        return
    await sleep(ctx.config.backup_duration - (time.monotonic() - started))
    condition("Complete", timeCompleted=now(), timeTaken=go_duration(time.monotonic() - started),
              backupSize=info.size, backupSizeReadable=humanize_bytes(info.size), commitTs=str(backup_ts))
