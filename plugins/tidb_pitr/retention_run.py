"""The retention run's decisions that need I/O: read CRs and storage, then apply the pure plan."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from .config import ClusterConfig
from .inventory import hook_for, load_inventory
from .model import State
from .planning import plan_retention, recoverable_window
from .tso import dt_to_tso, tso_str, tso_to_dt

log = logging.getLogger(__name__)
_STAMP = re.compile(r"snapshot-(\d{14})$")


def _prefix_time(prefix: str) -> datetime | None:
    match = _STAMP.search(prefix.rstrip("/"))
    return datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC) if match else None


def plan_for(cluster: ClusterConfig, *, dry_run: bool) -> dict[str, Any]:
    inventory = load_inventory(hook_for(cluster), cluster)
    newest = inventory.newest_snapshot()
    if newest is not None and newest.state in (State.FAILED, State.INVALID):
        raise AirflowFailException(
            f"the newest snapshot {newest.name} is {newest.phase} ({newest.message or 'no message'}): retention does "
            "not run after a failed snapshot run; fix or re-run the snapshot DAG first")
    plan = plan_retention(inventory.snapshots, inventory.logs, now=datetime.now(UTC),
                          retention=cluster.retention)
    for reason in plan.reasons:
        log.info("plan: %s", reason)
    if plan.refused:
        raise AirflowFailException(plan.refused)
    deletions = [{"backup_name": v.name, "prefix": v.prefix, "dry_run": dry_run} for v in plan.delete]
    orphans = _orphan_prefixes(cluster, inventory, plan.keep[0].commit_ts if plan.keep else None)
    deletions += [{"backup_name": None, "prefix": p, "dry_run": dry_run} for p in orphans]
    result = {
        "dry_run": dry_run,
        "log_backup": plan.log.name if plan.log else cluster.log_backup_name,
        "truncate_until": tso_str(plan.truncate_until) if plan.truncate_until and not dry_run else None,
        "planned_truncate_until": tso_str(plan.truncate_until) if plan.truncate_until else None,
        "deletions": [] if dry_run else deletions,
        "planned_deletions": deletions,
        "plan": plan.to_dict(),
    }
    log.info("retention plan for %s/%s: truncate until %s; delete %s; orphan prefixes %s%s", cluster.namespace,
             cluster.name, result["planned_truncate_until"], [d["backup_name"] for d in deletions if d["backup_name"]],
             orphans, " (dry run: nothing changes)" if dry_run else "")
    return result


def _orphan_prefixes(cluster: ClusterConfig, inventory: Any, base_ts: int | None) -> list[str]:
    """Snapshot folders in storage whose CR is gone and that are older than the kept base."""
    if base_ts is None or (not cluster.storage.conn_id and cluster.storage.provider != "local"):
        return []
    from .hooks.storage import BackupStorageHook

    hook = BackupStorageHook(**cluster.storage.hook_kwargs())
    known = {v.prefix.rstrip("/") for v in inventory.snapshots if v.prefix}
    base_time = tso_to_dt(base_ts)
    orphans = []
    for prefix in hook.list_snapshot_prefixes(cluster.storage.root):
        when = _prefix_time(prefix)
        if prefix.rstrip("/") not in known and when is not None and when < base_time - timedelta(minutes=1):
            orphans.append(prefix)
    return orphans


def verify_window_covers_policy(cluster: ClusterConfig) -> dict[str, Any]:
    inventory = load_inventory(hook_for(cluster), cluster)
    window = recoverable_window(inventory.snapshots, inventory.logs)
    current = inventory.current_log(cluster.log_backup_name)
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
