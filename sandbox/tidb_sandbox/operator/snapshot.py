"""Snapshot backups: Scheduled -> Prepare -> Running -> Complete | Failed (reference section 2.3)."""

from __future__ import annotations

import fnmatch
from functools import partial
from typing import Any

from .. import clock
from ..k8s.crd import ResourceType
from ..storage import br_layout
from .common import backup_path, go_duration, humanize_bytes, job_reads_spec, now, sleep
from .context import Context, StorageFailure, storage_block
from .secrets import cluster_problem, storage_secret_problem
from .tidbcluster import cluster_ready
from .tsparse import TsParseError, parse_ts_br

_BR_BACKUP_TYPES = ("", "full", "db", "table")


def validate_backup(rt: ResourceType, obj: dict[str, Any]) -> str | None:
    """`ValidateBackup` (v1 `pkg/backup/util/util.go`, v2 `pkg/controllers/br/manager/util/util.go`):
    the message for an `Invalid` CR, or None."""
    spec = obj.get("spec") or {}
    where = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
    br = spec.get("br")
    if not br:
        return f"missing br config in spec of {where}"
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
    backup_type = spec.get("backupType") or ""
    if backup_type not in _BR_BACKUP_TYPES:
        return f"invalid backup type {backup_type} for BR in spec of {where}"
    # br.db is required for db and table backups even when tableFilter is set (the filter wins at run time).
    if backup_type in ("db", "table") and not br.get("db"):
        return f"DB should be configured for BR with backup type {backup_type} in spec of {where}"
    if backup_type == "table" and not br.get("table"):
        return f"table should be configured for BR with backup type table in spec of {where}"
    return None


def admit_snapshot(ctx: Context, rt: ResourceType, obj: dict[str, Any]) -> bool:
    """The controller's side before the Job (`syncBackupJob`): True when the Job was scheduled.

    A TidbCluster that cannot be fetched, or a storage Secret missing or incomplete, is `RetryFailed` and
    requeued; a TidbCluster that is not Ready (v1) requeues without a word.
    """
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    condition = partial(ctx.set_condition, rt, namespace, name)
    cluster = cluster_problem(ctx, rt, obj)
    if isinstance(cluster, tuple):
        condition("RetryFailed", *cluster)
        return False
    if not cluster_ready(ctx, rt.group, cluster):
        return False
    problem = storage_secret_problem(ctx, namespace, storage_block(spec))
    if problem:
        condition("RetryFailed", problem[0], problem[1])
        return False
    condition("Scheduled")
    return True


async def run_snapshot_backup(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    """The Job: backup-manager's `performBackup` (`cmd/backup-manager/app/backup/manager.go`)."""
    group = rt.group
    condition = partial(ctx.set_condition, rt, namespace, name)
    spec = await job_reads_spec(ctx, rt, namespace, name)
    if spec is None:
        return
    cluster = ctx.cluster_for(group, namespace, spec.get("br"))
    if isinstance(cluster, str):
        condition("Failed", "BackupDataToRemoteFailed", cluster)
        return
    try:
        location = ctx.open_storage(namespace, storage_block(spec))
    except StorageFailure as err:
        condition("Failed", err.reason, err.message)
        return
    condition("Prepare", backupPath=backup_path(storage_block(spec)))
    await sleep(ctx.config.step_delay)
    started = clock.monotonic()
    time_started = now()
    condition("Running")
    while ctx.faults.hang_backups and name not in ctx.faults.released_backups:  # a hung backup stays Running
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
        rows = filter_rows(cluster.data.rows_at(backup_ts), spec.get("tableFilter") or [])
        info = await ctx.io(br_layout.write_snapshot, location, rows, commit_ts=backup_ts,
                            cluster_id=cluster.data.cluster_id, stores=ctx.config.stores)
    except Exception as err:  # storage refusals surface as the BR job's failure message
        condition("Failed", "BackupDataToRemoteFailed", str(getattr(err, "message", err)))
        return
    await sleep(ctx.config.backup_duration - (clock.monotonic() - started))
    condition("Complete", timeStarted=time_started, timeCompleted=now(),
              timeTaken=go_duration(clock.monotonic() - started), backupSize=info.size,
              backupSizeReadable=humanize_bytes(info.size), commitTs=str(backup_ts))


def filter_rows(rows: dict[str, Any], table_filter: list[str]) -> dict[str, Any]:
    """BR's `--filter` (TiDB table-filter rules): `db.table` globs, `!` excludes, the last match decides.

    Rows are keyed `<db>/<table>/...`; without a filter everything is backed up.
    """
    if not table_filter:
        return rows
    rules = []
    for rule in table_filter:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        db_pat, _, table_pat = pattern.partition(".")
        rules.append((negate, db_pat.lower(), (table_pat or "*").lower()))

    def wanted(key: str) -> bool:
        db, _, rest = key.partition("/")
        table = rest.partition("/")[0]
        verdict = False
        for negate, db_pat, table_pat in rules:
            if fnmatch.fnmatchcase(db.lower(), db_pat) and fnmatch.fnmatchcase(table.lower(), table_pat):
                verdict = not negate
        return verdict

    return {key: row for key, row in rows.items() if wanted(key)}
