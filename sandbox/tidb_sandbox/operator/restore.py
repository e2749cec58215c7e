"""Restores, snapshot and pitr: Scheduled -> Running -> Complete | Failed (reference section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from .. import clock
from ..data.accounts import restore_accounts
from ..data.schema import definition_ids, parse_key, table_key
from ..k8s.crd import ResourceType
from ..storage import br_layout
from .clusters import TIDBCLUSTER, SimCluster
from .common import V2_GROUP, finalizer_for, go_duration, job_reads_spec, now, sleep
from .context import Context, SimConfig, StorageFailure, storage_block
from .restore_filter import existing_tables, filter_refusal, filtered_rows, missing_databases
from .restore_targets import (
    INGEST_FAILED,
    br_release,
    checkpoint_key,
    first_tables,
    log_task_conflict,
    write_missing,
    written_tables,
)
from .secrets import cluster_problem, storage_secret_problem
from .snapshot import filter_rows
from .tsparse import TsParseError, parse_ts_br

NOT_FRESH = ("[BR:Restore:ErrDatabasesAlreadyExisted]databases already existed in restored cluster: "
             "the target cluster must be empty for a full or point-in-time restore")


def validate_restore(obj: dict[str, Any]) -> str | None:
    spec = obj.get("spec") or {}
    where = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
    br = spec.get("br")
    if not br or not br.get("cluster"):
        return f"cluster should be configured for BR in spec of {where}"
    if storage_block(spec) is None:
        return f"missing StorageProvider config in spec of {where}"
    if spec.get("restoreMode") == "pitr":
        has_full = bool(spec.get("pitrFullBackupStorageProvider"))
        has_start = bool(spec.get("logRestoreStartTs"))
        if has_full == has_start:
            return ("exactly one of pitrFullBackupStorageProvider and logRestoreStartTs must be set "
                    f"for pitr restore in spec of {where}")
    return None


class _RestoreFailure(Exception):
    pass


@dataclass(frozen=True)
class RestoreVolume:
    """What the restore reads, in bytes: the base snapshot (its backupSize) and the log files replayed."""

    snapshot: int = 0
    log: int = 0


def restore_seconds(config: SimConfig, volume: RestoreVolume, tikv: int) -> float:
    """Running time of a restore: restore_duration, or longer when the rates say the data takes longer.

    BR restores in parallel over the target's TiKV stores, so each rate is per store; a rate of 0 is
    not simulated and adds nothing.
    """
    seconds = 0.0
    if config.restore_snapshot_rate > 0:
        seconds += volume.snapshot / (config.restore_snapshot_rate * tikv)
    if config.restore_log_rate > 0:
        seconds += volume.log / (config.restore_log_rate * tikv)
    return max(config.restore_duration, seconds)


def tikv_stores(ctx: Context, target: SimCluster) -> int:
    """The target's TiKV count: a v1 TidbCluster's spec.tikv.replicas; v2 Clusters have no TiKV
    groups in the sandbox, so they (and a TidbCluster without replicas) count `stores`."""
    if target.resource == TIDBCLUSTER:
        obj = ctx.store.find(ctx.rt("pingcap.com", "tidbclusters"), target.namespace, target.name) or {}
        replicas = ((obj.get("spec") or {}).get("tikv") or {}).get("replicas")
        if isinstance(replicas, int) and replicas > 0:
            return replicas
    return max(ctx.config.stores, 1)


def admit_restore(ctx: Context, rt: ResourceType, obj: dict[str, Any]) -> bool:
    """The controller's side before the Job (`syncRestoreJob` in `pkg/backup/restore/restore_manager.go`):
    True when the Job was scheduled. A target cluster that cannot be fetched or a storage Secret missing or
    incomplete is `RetryFailed`, requeued until fixed."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    condition = partial(ctx.set_condition, rt, namespace, name)
    target = cluster_problem(ctx, rt, obj)
    if isinstance(target, tuple):
        condition("RetryFailed", *target)
        return False
    # In pitr mode only the log storage's credentials reach the Job (the snapshot goes as a URL).
    problem = storage_secret_problem(ctx, namespace, storage_block(spec))
    if problem:
        condition("RetryFailed", problem[0], problem[1])
        return False
    if rt.group == V2_GROUP and finalizer_for(rt.group) not in (obj["metadata"].get("finalizers") or []):
        ctx.write_object(rt, namespace, name,
                         lambda o: o["metadata"].setdefault("finalizers", []).append(finalizer_for(rt.group)))
    condition("Scheduled")
    return True


async def run_restore(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    group = rt.group
    v2 = group == V2_GROUP

    condition = partial(ctx.set_condition, rt, namespace, name)

    def progress(step: str, value: int) -> None:
        def mutate(status: dict[str, Any], obj: dict[str, Any]) -> None:
            steps = [p for p in status.get("progresses") or [] if p.get("step") != step]
            steps.append({"step": step, "progress": value if v2 else float(value), "lastTransitionTime": now()})
            status["progresses"] = steps
        ctx.write_status(rt, namespace, name, mutate)

    spec = await job_reads_spec(ctx, rt, namespace, name)
    if spec is None:
        return
    target = ctx.cluster_for(group, namespace, spec.get("br"))
    if isinstance(target, str):
        condition("Failed", "RestoreDataFromRemoteFailed", target)
        _drop_finalizer(ctx, rt, namespace, name)
        return
    started = clock.monotonic()
    condition("Running", timeStarted=now())
    while ctx.faults.hang_restores:  # a restore that takes its time
        await sleep(0.2)
    try:
        failure = ctx.faults.take_restore_failure()
        if failure:
            raise _RestoreFailure(failure)
        conflict = log_task_conflict(ctx, target, spec)
        if conflict:
            raise _RestoreFailure(conflict)
        resumed = target.restore_checkpoint == checkpoint_key(spec)
        table_filter = list(spec.get("tableFilter") or []) if spec.get("restoreMode") == "pitr" else []
        if table_filter:  # restore_filter.py: BR's own refusals come before it reads the backup
            refused = filter_refusal(br_release(ctx, spec, target), table_filter)
            if refused:
                raise _RestoreFailure(refused)
        # Under an explicit filter BR makes no fresh-cluster check (NeedCheckFreshCluster): the target may hold data.
        if not resumed and not table_filter and not target.data.is_empty():
            raise _RestoreFailure(NOT_FRESH)
        if spec.get("restoreMode") == "pitr":
            rows, volume, base_tables = await _pitr(ctx, namespace, spec, progress, table_filter)
            commit_ts = "0"  # BR reads EndVersion of the log backupmeta, which is 0 (reference 3.2)
            if table_filter:
                # checkTableExistence over the snapshot's and the log's tables the filter takes, before any write.
                rows = filtered_rows(rows, table_filter)
                live = target.data.rows_now()
                clash = existing_tables(live, {**filtered_rows(base_tables, table_filter), **rows})
                if clash and not resumed:
                    raise _RestoreFailure(clash)
                rows = missing_databases(live, rows)
        else:
            meta, rows = await ctx.io(br_layout.read_snapshot, ctx.open_storage(namespace, storage_block(spec)))
            progress("Full Restore", 100)
            commit_ts = str(meta.end_version)
            volume = RestoreVolume(snapshot=meta.backup_size)
        if ctx.faults.corrupt_restore:
            corrupt = ctx.faults.take_restore_corruption(restored_tables(rows))
            if corrupt:
                rows = corrupt_one_row(rows, corrupt)
        # BR gives the tables IDs in the target before it creates them (prealloc_table_id, br_restore.py); a
        # resumed restore keeps the IDs its first run allocated (BR keeps them in its checkpoint data).
        if resumed and target.restore_checkpoint_ids is not None:
            rows = {**rows, **{k: v for k, v in target.restore_checkpoint_ids.items() if k in rows}}
        else:
            ids = br_layout.prealloc_table_ids(rows, target.data.global_id)
            target.data.advance_global_ids(ids.global_id - target.data.global_id)
            rows = ids.rows
            target.restore_checkpoint_ids = {k: v for k, v in rows.items() if definition_ids(k, v)}
        fraction = ctx.faults.take_partial_restore()
        if fraction is not None:
            written = first_tables(rows, fraction)
            write_missing(target, written, ctx.alloc.next())
            target.restore_checkpoint = checkpoint_key(spec)
            raise _RestoreFailure(f"{INGEST_FAILED}: {written_tables(written)} of {written_tables(rows)} tables "
                                  "restored")
        # BR restores the privilege tables last: the target's accounts other than root become the backup's; a
        # filtered PITR restores no system table (restore_filter.py), so the accounts stay the target's.
        if not table_filter:
            target.data.apply(restore_accounts(target.data, rows, ctx.alloc.next()))
        if resumed or table_filter:  # into a target that holds data: only the restored tables' keys change
            write_missing(target, rows, ctx.alloc.next())
        else:
            target.data.load(rows, ctx.alloc.next())
        target.restore_checkpoint = None  # BR drops its checkpoint data after a restore that completes
        target.restore_checkpoint_ids = None
    except _RestoreFailure as err:
        condition("Failed", "RestoreDataFromRemoteFailed", str(err))
        _drop_finalizer(ctx, rt, namespace, name)
        return
    except StorageFailure as err:
        condition("Failed", err.reason, err.message)
        _drop_finalizer(ctx, rt, namespace, name)
        return
    except Exception as err:  # what BR would print when reading the backup fails
        condition("Failed", "RestoreDataFromRemoteFailed", str(getattr(err, "message", err)))
        _drop_finalizer(ctx, rt, namespace, name)
        return
    await sleep(restore_seconds(ctx.config, volume, tikv_stores(ctx, target)) - (clock.monotonic() - started))
    condition("Complete", timeCompleted=now(), timeTaken=go_duration(clock.monotonic() - started),
              commitTs=commit_ts)
    _drop_finalizer(ctx, rt, namespace, name)


async def _pitr(ctx: Context, namespace: str, spec: dict[str, Any], progress: Any,
                table_filter: list[str]) -> tuple[dict[str, Any], RestoreVolume, dict[str, Any]]:
    """The rows at the restore point, the volume read, and the base snapshot's table definitions (BR checks
    those against the target too, also when the log drops them before the restore point)."""
    log_block = storage_block(spec)
    log_location = ctx.open_storage(namespace, log_block)
    log_range = await ctx.io(br_layout.log_metadata, log_location)
    try:
        restored_ts = parse_ts_br(spec["pitrRestoredTs"]) if spec.get("pitrRestoredTs") else log_range.max_ts
    except TsParseError as err:
        raise _RestoreFailure(str(err)) from err
    full = spec.get("pitrFullBackupStorageProvider")
    if full:
        # Only the snapshot's URL reaches BR: it is read with the log storage's credentials.
        full_location = ctx.open_storage(namespace, storage_block(full), secret_from=log_block)
        meta, rows = await ctx.io(br_layout.read_snapshot, full_location)
        if meta.cluster_id != log_range.cluster_id and log_range.cluster_id:
            raise _RestoreFailure(
                f"the cluster ID of the full backup ({meta.cluster_id}) and the log backup "
                f"({log_range.cluster_id}) mismatch")
        start_ts = meta.end_version
        snapshot_bytes = meta.backup_size  # what the snapshot's CR shows as backupSize
        progress("Full Restore", 100)
    else:
        try:
            start_ts = parse_ts_br(spec["logRestoreStartTs"])
        except TsParseError as err:
            raise _RestoreFailure(str(err)) from err
        rows = {}
        snapshot_bytes = 0
    try:
        br_layout.check_restore_range(log_range, start_ts, restored_ts)
    except ValueError as err:
        raise _RestoreFailure(str(err)) from err
    changes = await ctx.io(br_layout.read_log, log_location, start_ts, restored_ts)
    log_bytes = 0
    if ctx.config.restore_log_rate > 0:  # only then: the default restore reads storage as it always did
        log_bytes = await ctx.io(br_layout.log_bytes, log_location, start_ts, restored_ts)
    progress("Restore KV Files", 100)
    if table_filter:
        # BR reads only the filter's tables: the snapshot's SST files are per table, and the log's data files are
        # grouped by table (tikv components/backup-stream `TempFileKey` has the table ID), so both volumes shrink
        # with the share of the filter's keys (inferred: sizes in proportion to keys).
        snapshot_bytes = _share(snapshot_bytes, len(filter_rows(rows, table_filter)), len(rows))
        log_bytes = _share(log_bytes, sum(1 for c in changes if filter_rows({c.key: 0}, table_filter)), len(changes))
    base_tables = {k: v for k, v in rows.items() if (p := parse_key(k)) is not None and p.table and not p.is_row}
    return br_layout.apply_changes(rows, changes), RestoreVolume(snapshot_bytes, log_bytes), base_tables


def _share(total: int, part: int, whole: int) -> int:
    return total * part // whole if whole else 0


def restored_tables(rows: dict[str, Any]) -> set[str]:
    """Lower-case "db.table" of every table with at least one row among `rows`."""
    found = set()
    for key in rows:
        parts = parse_key(key)
        if parts is not None and parts.is_row:
            found.add(f"{parts.database}.{parts.table}".lower())
    return found


def corrupt_one_row(rows: dict[str, Any], table: str) -> dict[str, Any]:
    """Fault `corrupt_restore`: a copy of `rows` where the table's row with the smallest key has one value
    changed: its first column after `id` (definition order, then the row's other columns by name) holding
    a number (+ 1) or a string (+ "-corrupt"); `id` itself only when no other column qualifies."""
    database, _, name = table.lower().partition(".")
    keys = sorted(k for k in rows if (p := parse_key(k)) is not None and p.is_row
                  and p.database.lower() == database and (p.table or "").lower() == name)
    key = keys[0]
    parts = parse_key(key)
    assert parts is not None and parts.table is not None
    row = dict(rows[key])
    definition = rows.get(table_key(parts.database, parts.table)) or {}
    order = [str(c["name"]) for c in definition.get("columns") or [] if c.get("name") in row]
    order += sorted(c for c in row if c not in order)
    for column in [c for c in order if c != "id"] + ["id"]:
        value = row.get(column)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        if isinstance(value, str):
            row[column] = value + "-corrupt"
        elif isinstance(value, int):
            row[column] = value + 1
        else:
            row[column] = float(Decimal(str(value)) + 1)
        break
    return {**rows, key: row}


def _drop_finalizer(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    if rt.group != V2_GROUP:
        return
    finalizer = finalizer_for(rt.group)

    def mutate(o: dict[str, Any]) -> None:
        o["metadata"]["finalizers"] = [f for f in o["metadata"].get("finalizers") or [] if f != finalizer]
    ctx.write_object(rt, namespace, name, mutate)
