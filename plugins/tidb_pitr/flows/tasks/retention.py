"""The retention run's decisions that need I/O: read CRs, leases and storage, then apply the pure plan.

In order: refuse while a failed snapshot run is recorded (or the newest snapshot failed); take the retention
lease (not on a dry run), then read the restores in progress, which keep their bases; plan; check in storage
that the base is really there before anything older goes; add orphaned snapshot folders of this cluster.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from ...config import ClusterConfig
from ...cr.api import RESTORES
from ...cr.inventory import Inventory, load_inventory
from ...cr.leases import release_retention_lease, restore_leases, snapshot_failure, take_retention_lease
from ...cr.model import RestoreView, State
from ...cr.ownership import snapshot_ownership
from ...hooks.kubernetes import TidbOperatorHook, hook_for
from ...hooks.storage import BackupStorageHook
from ...planning import plan_retention, recoverable_window
from ...planning.notes import retention_note, with_details
from ...planning.retention import Protection, RetentionPlan
from ...runtime.metrics import RETENTION_DELETED_BYTES, gauge
from ...runtime.notes import publish_note
from ...tso import dt_to_tso, tso_iso, tso_label, tso_str, tso_to_dt

log = logging.getLogger(__name__)
_STAMP = re.compile(r"snapshot-(\d{14})$")
LEASE_HOLD = timedelta(hours=6)  # longer than any retention run; a dead run's lease ends by itself


class RetentionHeld(AirflowFailException):
    """Retention must not delete or truncate now; the message says why and what to do."""


def _prefix_time(prefix: str) -> datetime | None:
    match = _STAMP.search(prefix.rstrip("/"))
    return datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC) if match else None


def check_not_held(cluster: ClusterConfig, inventory: Inventory) -> None:
    """Item: a failed snapshot run holds retention, whatever failed, until a later one succeeded."""
    for view in inventory.logs:
        failure = snapshot_failure(view)
        if failure is not None and not view.deleting:
            raise RetentionHeld(
                f"retention holds: snapshot run {failure.get('run')} failed at {failure.get('at')} "
                f"({failure.get('reason')}). Nothing is deleted or truncated until a later run of "
                f"{cluster.dag_id('snapshot')} succeeds (recorded on {view.namespace}/{view.name}, annotation "
                "tidb-pitr-airflow/snapshot-failed)")
    owned = snapshot_ownership(cluster.name, cluster.storage.cr_block(), cluster.storage.root)
    ours = [v for v in inventory.snapshots if owned(v) is None and not v.deleting]
    newest = ours[-1] if ours else None
    if newest is not None and newest.state in (State.FAILED, State.INVALID):
        raise RetentionHeld(
            f"retention holds: the newest snapshot {newest.name} is {newest.phase} ({newest.message or 'no message'});"
            f" nothing is deleted or truncated until a later run of {cluster.dag_id('snapshot')} succeeds")


def restores_in_progress(hook: TidbOperatorHook, cluster: ClusterConfig, inventory: Inventory) -> list[Protection]:
    """Restores pending or running from this cluster's backups (their CRs), and restores about to start
    (their leases): their bases stay, and the log is not truncated past them."""
    now = datetime.now(UTC)
    by_prefix = {v.prefix: v for v in inventory.snapshots if v.prefix}
    found: list[Protection] = []
    for namespace in cluster.target_namespaces():
        for obj in hook.list(RESTORES, namespace):
            restore = RestoreView.from_cr(obj)
            if restore.state not in (State.PENDING, State.RUNNING) or restore.deleting:
                continue
            full = next(iter(restore.full_backup_storage.values()), {}) if restore.full_backup_storage else {}
            base = by_prefix.get(full.get("prefix"))
            if base is not None and base.commit_ts:
                found.append(Protection(base.name, base.commit_ts, f"Restore {restore.namespace}/{restore.name} "
                                                                   f"({restore.phase or 'pending'})"))
    for view in inventory.logs:
        for lease in restore_leases(view):
            if lease.active(now) and lease.data.get("base"):
                start = int(lease.data.get("start_ts") or 0)
                found.append(Protection(str(lease.data["base"]), start,
                                        f"restore run {lease.run} into {lease.data.get('target')} (lease)"))
    return found


def plan_for(cluster: ClusterConfig, *, dry_run: bool, run: str = "") -> dict[str, Any]:
    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    check_not_held(cluster, inventory)
    live = inventory.current_log()
    lease_taken = False
    if live is not None and not dry_run:
        # Ours first, then read theirs: a restore starting now either sees this lease or is seen below.
        live = take_retention_lease(hook, live, run, LEASE_HOLD)
        lease_taken = True
        inventory = load_inventory(hook, cluster)
    try:
        return _plan(hook, cluster, inventory, dry_run=dry_run, lease_taken=lease_taken)
    except BaseException:
        if lease_taken and live is not None:
            release_retention_lease(hook, live, run)
        raise


def _plan(hook: TidbOperatorHook, cluster: ClusterConfig, inventory: Inventory, *, dry_run: bool,
          lease_taken: bool) -> dict[str, Any]:
    protections = restores_in_progress(hook, cluster, inventory)
    owned = snapshot_ownership(cluster.name, cluster.storage.cr_block(), cluster.storage.root)
    plan = plan_retention(inventory.snapshots, inventory.logs, now=datetime.now(UTC), retention=cluster.retention,
                          managed=owned, protections=protections)
    for reason in plan.reasons:
        log.info("plan: %s", reason)
    if plan.refused:
        raise AirflowFailException(plan.refused)
    if plan.has_actions and plan.base is not None:
        _check_base_in_storage(cluster, plan)
    deletions = [{"backup_name": v.name, "prefix": v.prefix, "dry_run": dry_run} for v in plan.delete]
    orphans = _orphan_prefixes(cluster, inventory, plan.base.commit_ts if plan.base else None)
    deletions += [{"backup_name": None, "prefix": p, "dry_run": dry_run} for p in orphans]
    result = {
        "dry_run": dry_run,
        "log_backup": plan.log.name if plan.log else None,
        "truncate_until": tso_str(plan.truncate_until) if plan.truncate_until and not dry_run else None,
        "planned_truncate_until": tso_str(plan.truncate_until) if plan.truncate_until else None,
        "deletions": [] if dry_run else deletions,
        "planned_deletions": deletions,
        "lease": lease_taken,
        "plan": plan.to_dict(),
        # backupSize of each snapshot to delete, for the metric once they are gone (`deleted_bytes`).
        "sizes": {v.name: v.backup_size for v in plan.delete if v.backup_size is not None},
    }
    doomed = [d["backup_name"] for d in deletions if d["backup_name"]]
    foreign = [v.name for v, why in plan.ignored if why.startswith("not managed here")]
    until = tso_label(plan.truncate_until) if plan.truncate_until else "nothing"
    result["summary"] = (f"truncate the log until {until}; delete {', '.join(doomed) or 'no snapshot'}; "
                         f"orphan prefixes {', '.join(orphans) or 'none'}; "
                         f"kept, not managed here: {', '.join(foreign) or 'none'}")
    log.info("%sretention plan for %s/%s: %s", "DRY RUN, nothing changes: " if dry_run else "", cluster.namespace,
             cluster.name, result["summary"])
    return result


def _storage_hook(cluster: ClusterConfig) -> Any:
    return BackupStorageHook(**cluster.storage.hook_kwargs())


def _check_base_in_storage(cluster: ClusterConfig, plan: RetentionPlan) -> None:
    """The base must be really there before anything older goes (a lifecycle rule can remove data under a CR
    that still says Complete): its backupmeta, and the log's own backupmeta with a truncate safepoint at or
    before the base."""
    base, live = plan.base, plan.log
    assert base is not None and live is not None
    if not cluster.storage.conn_id and cluster.storage.provider != "local":
        raise AirflowFailException("cannot check the base snapshot in storage: storage.conn_id is not set")
    hook = _storage_hook(cluster)
    missing = []
    if not base.prefix or not hook.snapshot_info(base.prefix).exists_backupmeta:
        missing.append(f"{base.prefix}/backupmeta of the base snapshot {base.name}")
    if not live.prefix or not hook.exists(f"{live.prefix}/backupmeta"):
        missing.append(f"{live.prefix}/backupmeta of the log backup {live.name}")
    elif (safepoint := hook.truncate_safepoint(live.prefix)) > (base.commit_ts or 0):
        missing.append(f"the log before {tso_iso(safepoint)} (truncated in storage past the base's commitTs "
                       f"{tso_iso(base.commit_ts or 0)})")
    if missing:
        raise AirflowFailException(
            "refused: the base snapshot cannot be relied on, so nothing older is deleted and the log is not "
            f"truncated. Missing in {hook.url()}: " + "; ".join(missing)
            + ". Check the bucket's lifecycle rules and take a new snapshot")


def _orphan_prefixes(cluster: ClusterConfig, inventory: Inventory, base_ts: int | None) -> list[str]:
    """This cluster's snapshot folders in storage that no CR refers to and that are older than the kept base."""
    if base_ts is None or (not cluster.storage.conn_id and cluster.storage.provider != "local"):
        return []
    hook = _storage_hook(cluster)
    known = {v.prefix.rstrip("/") for v in inventory.snapshots if v.prefix}
    base_time = tso_to_dt(base_ts)
    orphans = []
    for prefix in hook.list_snapshot_prefixes(cluster.storage.root):
        when = _prefix_time(prefix)
        if (cluster.storage.is_snapshot_prefix(prefix) and prefix.rstrip("/") not in known and when is not None
                and when < base_time - timedelta(minutes=1)):
            orphans.append(prefix)
    return orphans


def deleted_bytes(planned: dict[str, Any] | None, inventory: Inventory) -> int:
    """backupSize of the planned snapshots that are gone now (or going: finalizers may keep a CR a while)."""
    if not planned:
        return 0
    present = {v.name for v in inventory.snapshots if not v.deleting}
    names = {d["backup_name"] for d in planned.get("deletions") or () if d.get("backup_name")}
    return sum(size for name, size in (planned.get("sizes") or {}).items() if name in names and name not in present)


def finish(cluster: ClusterConfig, *, run: str, failed_tasks: list[str],
           planned: dict[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
    """Release the lease, check the window still covers the policy, and fail if an action failed."""
    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    for view in inventory.logs:
        release_retention_lease(hook, view, run)
    # Sent before any failure below: what was deleted is gone whether or not another action failed.
    freed = deleted_bytes(planned, inventory)
    gauge(RETENTION_DELETED_BYTES, freed, cluster)
    if context is not None and planned and not planned.get("dry_run"):  # a dry run's note is its plan's
        publish_note(context, _retention_note(cluster, planned, inventory, freed, failed_tasks))
    if failed_tasks:
        raise AirflowFailException(f"retention did not finish: {', '.join(failed_tasks)} failed (see their logs); "
                                   "the next run plans again from what is left")
    return verify_window_covers_policy(cluster, inventory)


def _retention_note(cluster: ClusterConfig, planned: dict[str, Any], inventory: Inventory, freed: int,
                    failed_tasks: list[str]) -> str:
    """What this run changed: the snapshots now gone, the bytes freed, the log's truncation, the window left."""
    present = {v.name for v in inventory.snapshots if not v.deleting}
    deleted = [d["backup_name"] for d in planned.get("deletions") or ()
               if d.get("backup_name") and d["backup_name"] not in present]
    until = planned.get("truncate_until")
    truncated = int(until) if until and "truncate_log" not in failed_tasks else None
    window = recoverable_window(inventory.snapshots, inventory.logs).brief()
    line = retention_note(deleted, freed, truncated, window, cluster.timezone)
    if failed_tasks:
        return with_details(f"Retention failed: {', '.join(failed_tasks)}", line.replace("\n\n", " "))
    return line


def verify_window_covers_policy(cluster: ClusterConfig, inventory: Inventory | None = None) -> dict[str, Any]:
    inventory = inventory or load_inventory(hook_for(cluster), cluster)
    window = recoverable_window(inventory.snapshots, inventory.logs)
    current = inventory.current_log()
    if current is None or not current.checkpoint_ts:
        raise AirflowSkipException("no log backup to check the window against")
    policy_end = min(datetime.now(UTC), tso_to_dt(current.checkpoint_ts))
    policy_start = dt_to_tso(policy_end - cluster.retention)
    log.info("window after retention: %s", window.describe())
    if window.earliest_ts is None or not window.covers(policy_start, current.checkpoint_ts):
        has_history = inventory.snapshots and min(v.commit_ts or 0 for v in inventory.snapshots) <= policy_start
        if has_history:
            raise AirflowFailException(
                f"the recoverable window {window.describe()} no longer covers the policy "
                f"[{tso_to_dt(policy_start).isoformat()}, checkpoint]: investigate before the next run")
        log.info("the cluster's history is younger than the policy; the window covers all of it")
    return window.to_dict()
