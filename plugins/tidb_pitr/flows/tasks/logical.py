"""The logical backup and restore runs' steps that read and change things: verify a dump, its retention, and the
plan of a Lightning restore (every refusal before any CR exists)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.api import BACKUPS, LABEL_CLUSTER, RESTORES
from ...cr.logical import (
    ANNOTATION_VERIFIED_TS,
    check_dump,
    dump_key,
    is_logical,
    logical_problem,
    logical_restore_body,
    tidb_access,
)
from ...cr.model import BackupView, RestoreView, State
from ...cr.names import restore_name
from ...hooks.kubernetes import hook_for
from ...hooks.storage import BackupStorageHook
from ...planning.dump_volume import dump_volume_warning
from ...planning.logical_retention import COMPLETE, FAILED, OTHER, LogicalBackup, plan_logical_retention
from ...tso import tso_iso
from .restore import RestoreRefused, _check_target, _target, check_logical_target

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _storage_hook(cluster: ClusterConfig) -> BackupStorageHook:
    storage = cluster.logical_storage()
    return BackupStorageHook("s3", conn_id=storage.conn_id, bucket=storage.bucket or "")


def _owned(cluster: ClusterConfig, view: BackupView) -> str | None:
    storage = cluster.logical_storage()
    return logical_problem(view, cluster_name=cluster.name, bucket=storage.bucket or "", root=storage.root)


# -- verify ---------------------------------------------------------------------------------------------
def verify_dump(cluster: ClusterConfig, result: dict[str, Any]) -> dict[str, Any]:
    """The archive in storage: Dumpling's metadata with the CR's commitTs, a schema file per table, data files;
    then the TSO is recorded on the CR (annotation), which marks it restorable for the logical restore."""
    hook = hook_for(cluster)
    storage = cluster.logical_storage()
    view = BackupView.from_cr(hook.require(BACKUPS, result["name"], cluster.namespace))
    key = dump_key(view, storage.bucket or "")
    if not key:
        raise AirflowFailException(f"Backup {cluster.namespace}/{view.name}: backupPath {view.backup_path!r} is not "
                                   f"in bucket {storage.bucket!r}")
    folder = key.rsplit("/", 1)[-1].removesuffix(".tgz")
    client = _storage_hook(cluster).get_conn()
    try:
        body = client.get_object(Bucket=storage.bucket, Key=key)["Body"]
    except Exception as exc:
        raise AirflowFailException(f"Backup {cluster.namespace}/{view.name}: s3://{storage.bucket}/{key} cannot be "
                                   f"read: {type(exc).__name__}: {exc}") from exc
    try:
        check = check_dump(body, folder)
    finally:
        body.close()
    if check.metadata_ts and str(view.commit_ts) != check.metadata_ts:
        check.problems.append(f"metadata says Pos {check.metadata_ts}, the CR's commitTs is {view.commit_ts}")
    summary = {**check.summary(), "name": view.name, "backup_path": view.backup_path,
               "commit_ts": str(view.commit_ts), "commit_time": tso_iso(int(check.metadata_ts))
               if check.metadata_ts.isdigit() else None}
    if check.problems:
        raise AirflowFailException(f"Dumpling backup {view.name} at {view.backup_path} does not check out: "
                                   + "; ".join(check.problems))
    hook.merge_patch(BACKUPS, view.name, cluster.namespace,
                     {"metadata": {"annotations": {ANNOTATION_VERIFIED_TS: check.metadata_ts}}})
    lb = cluster.logical_backup
    volume = dump_volume_warning(view.name, view.backup_size, lb.storage_size) if lb else None
    if volume:  # the next run's plan: its dump will not fit the PVC this one only just fitted
        log.warning("%s", volume)
    summary["volume_warning"] = volume
    log.info("Dump %s verified: snapshot TSO %s (%s), %d table(s) in %d database(s), %d data file(s); tables "
             "without rows: %s", view.backup_path, check.metadata_ts, summary["commit_time"], len(check.tables),
             len(check.databases), check.data_files, ", ".join(summary["tables_without_rows"]) or "none")
    return summary


# -- retention ------------------------------------------------------------------------------------------
def _state(view: BackupView) -> str:
    if view.deleting:
        return OTHER
    if view.state == State.COMPLETE:
        # A Complete dump that never checked out restores nothing we vouch for: like a Failed one.
        return COMPLETE if view.annotations.get(ANNOTATION_VERIFIED_TS) else FAILED
    return FAILED if view.state in (State.FAILED, State.INVALID) else OTHER


def apply_logical_retention(cluster: ClusterConfig, *, now: datetime | None = None) -> dict[str, Any]:
    """Delete the logical backups `keep` lets go: each one's archive first, then its CR (so a failure leaves the
    CR, and a later run finds and finishes it). Only backups `logical_problem` calls ours are considered."""
    lb = cluster.logical_backup
    assert lb is not None
    now = now or datetime.now(UTC)
    hook = hook_for(cluster)
    storage = cluster.logical_storage()
    views = [v for v in (BackupView.from_cr(o) for o in hook.list(BACKUPS, cluster.namespace)) if is_logical(v)]
    foreign = {v.name: problem for v in views if (problem := _owned(cluster, v)) is not None}
    bucket = storage.bucket or ""
    items = [LogicalBackup(v.name, v.created or _EPOCH, _state(v), v.name not in foreign, dump_key(v, bucket))
             for v in views]
    plan = plan_logical_retention(items, count=lb.keep.count, age=lb.keep.age, now=now)
    storage_hook = _storage_hook(cluster)
    deleted = []
    for name in plan.delete:
        obj = hook.get(BACKUPS, name, cluster.namespace)
        if obj is None:
            continue
        view = BackupView.from_cr(obj)
        problem = _owned(cluster, view)
        if problem is not None:  # changed since the listing: leave it
            log.warning("Not deleting %s: %s", name, problem)
            continue
        key = dump_key(view, bucket)
        if key and key != next(b.archive for b in items if b.name == name):
            log.warning("Not deleting %s: its archive changed since the plan (%s)", name, view.backup_path)
            continue
        if key and name not in plan.cr_only:
            storage_hook.delete_dump(storage.root, key)
        hook.delete(BACKUPS, name, cluster.namespace)
        deleted.append({"name": name, "archive": None if name in plan.cr_only else view.backup_path,
                        "why": plan.reasons[name]})
        log.info("Deleted logical backup %s (%s)%s", name, plan.reasons[name],
                 "" if name in plan.cr_only else f" and its archive {view.backup_path}")
    for name in plan.keep:
        log.info("Keeping logical backup %s: %s", name, plan.reasons[name])
    for name, problem in sorted(foreign.items()):
        log.info("Not ours, left alone: %s (%s)", name, problem)
    return {"deleted": deleted, "kept": list(plan.keep), "foreign": sorted(foreign)}


# -- restore plan ---------------------------------------------------------------------------------------
def _restorable(cluster: ClusterConfig, hook: Any) -> list[BackupView]:
    """Complete Dumpling backups of ours with a verified TSO, newest first."""
    views = [BackupView.from_cr(o) for o in hook.list(BACKUPS, cluster.namespace)]
    found = [v for v in views if is_logical(v) and _owned(cluster, v) is None and v.state == State.COMPLETE
             and v.annotations.get(ANNOTATION_VERIFIED_TS) and not v.deleting]
    return sorted(found, key=lambda v: (v.created or _EPOCH, v.name), reverse=True)


def _choose(cluster: ClusterConfig, hook: Any, wanted: str) -> BackupView:
    if not wanted:
        found = _restorable(cluster, hook)
        if not found:
            raise RestoreRefused(f"no verified logical backup of {cluster.namespace}/{cluster.name} to restore: run "
                                 f"{cluster.dag_id('logical_backup')} first, or name one in 'backup'")
        return found[0]
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", wanted):
        raise RestoreRefused(f"backup must be a Backup CR name; got {wanted!r}")
    obj = hook.get(BACKUPS, wanted, cluster.namespace)
    if obj is None:
        raise RestoreRefused(f"backup {cluster.namespace}/{wanted} not found")
    view = BackupView.from_cr(obj)
    if not is_logical(view):
        raise RestoreRefused(f"backup {wanted} is not a Dumpling backup (it has spec.br or no spec.from): restore "
                             f"BR snapshots with {cluster.dag_id('restore')}")
    if view.state != State.COMPLETE or not view.backup_path:
        raise RestoreRefused(f"backup {wanted} is {view.phase or 'not started'}, not Complete: nothing to restore")
    return view


def _running_restores(hook: Any, namespace: str, name: str) -> list[str]:
    views = [RestoreView.from_cr(o) for o in hook.list(RESTORES, namespace)]
    return [v.name for v in views if v.state in (State.PENDING, State.RUNNING)
            and (v.cluster == name or v.labels.get(LABEL_CLUSTER) == name)]


def plan_logical_restore(cluster: ClusterConfig, params: dict[str, Any], *, run_hash: str) -> dict[str, Any]:
    """Validate the form and the target, choose the backup, build the Lightning Restore CR."""
    lb = cluster.logical_backup
    assert lb is not None
    namespace, target = _target(cluster, params)
    hook = hook_for(cluster)
    view = _choose(cluster, hook, str(params.get("backup") or "").strip())
    earlier = _check_target(hook, cluster, namespace, target)
    running = _running_restores(hook, namespace, target)
    if running:
        raise RestoreRefused(f"target_cluster {namespace}/{target} already has a restore in progress: "
                             f"{', '.join(running)}")
    empty = check_logical_target(cluster, namespace, target, earlier)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    name = restore_name(cluster.name, stamp, run_hash).replace("-pitr-", "-lightning-", 1)
    access = tidb_access(f"{target}-tidb.{namespace}.svc", lb.tidb_port, lb.tidb_user,
                         f"backup-{target}-tidb-secret")
    body = logical_restore_body(name=name, namespace=namespace, access=access,
                                storage=cluster.logical_storage().cr_block(), backup_path=view.backup_path or "",
                                storage_size=lb.storage_size, storage_class_name=lb.storage_class_name)
    verified = view.annotations.get(ANNOTATION_VERIFIED_TS)
    volume = dump_volume_warning(view.name, view.backup_size, lb.storage_size)
    ts = view.commit_ts or 0
    note = (f"Lightning restore of {view.name} (snapshot TSO {ts}, {tso_iso(ts) if ts else '?'}; "
            f"{'verified' if verified else 'NOT verified by this project'}) from {view.backup_path} into "
            f"{namespace}/{target}; {empty}")
    log.info("Plan: %s\nRestore CR: %s", note, body)
    return {"body": body, "target_namespace": namespace, "target_cluster": target, "backup": view.name,
            "backup_path": view.backup_path, "commit_ts": str(ts), "dry_run": bool(params.get("dry_run")),
            "notes": [note, *([volume] if volume else [])]}
