"""The restore run's validation and plan: every refusal happens here, before any Restore CR exists.

A restore and retention keep out of each other's way through leases on the live log backup CR: the restore
writes its own (naming its base), then reads retention's; while a retention run holds its lease the
restore waits (up to `waits.retention_wait`) and then refuses.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from .api import RESTORES
from .config import ClusterConfig
from .hooks.kubernetes import TidbOperatorHook
from .inventory import Inventory, hook_for, load_inventory
from .leases import release_restore_lease, retention_lease, take_restore_lease
from .model import RestoreView, State
from .names import restore_name
from .planning import PlanError, RestorePlan, plan_restore, recoverable_window
from .tso import dt_to_tso, parse_user_time, tso_iso, tso_to_dt

log = logging.getLogger(__name__)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CLUSTER_RESOURCE = {"pingcap.com": ("pingcap.com", "v1alpha1", "tidbclusters"),
                    "br.pingcap.com": ("core.pingcap.com", "v1alpha1", "clusters")}
RETENTION_POLL = 10.0
RESTORE_LEASE_HOLD = timedelta(hours=30)  # longer than a restore's wait; a dead run's lease ends


class RestoreRefused(AirflowFailException):
    """A restore request that is refused before anything changes; the message names the field."""


def parse_target_time(params: dict[str, Any]) -> int:
    when, tso = params.get("restore_time"), params.get("restore_tso")
    if bool(when) == bool(tso):
        raise RestoreRefused("give exactly one of restore_time (a date and time with its timezone, e.g. "
                             "2026-11-21T05:30:00Z) and restore_tso (a TSO); got "
                             f"restore_time={when!r}, restore_tso={tso!r}")
    try:
        return parse_user_time(str(when), field="restore_time") if when else parse_user_time(str(tso),
                                                                                            field="restore_tso")
    except ValueError as exc:
        raise RestoreRefused(str(exc)) from exc


def _target(cluster: ClusterConfig, params: dict[str, Any]) -> tuple[str, str]:
    name, namespace = (params.get("target_cluster") or "").strip(), (params.get("target_namespace") or "").strip()
    for field, value in (("target_cluster", name), ("target_namespace", namespace)):
        if not _DNS_LABEL.match(value):
            raise RestoreRefused(f"{field} must be a Kubernetes name (lower-case letters, digits and '-'); "
                                 f"got {value!r}")
    if (namespace, name) == (cluster.namespace, cluster.tidb_cluster):
        raise RestoreRefused(f"target_cluster {namespace}/{name} is the source cluster: a point-in-time restore "
                             "goes into a separate, empty cluster, never in place")
    if not cluster.restore_target_allowed(name, namespace):
        raise RestoreRefused(f"target_cluster {namespace}/{name} is not an allowed restore target for "
                             f"{cluster.namespace}/{cluster.name}; allowed: {', '.join(cluster.restore_targets)}")
    return namespace, name


def _check_target_exists(hook: TidbOperatorHook, cluster: ClusterConfig, namespace: str, name: str) -> None:
    group, version, plural = CLUSTER_RESOURCE[cluster.api_group]
    if hook.get_object(group, version, plural, name, namespace) is None:
        raise RestoreRefused(f"target_cluster {namespace}/{name} not found ({plural}.{group}): create the "
                             "empty TiDB cluster to restore into first")
    busy = [RestoreView.from_cr(o) for o in hook.list(RESTORES, namespace)]
    running = [r.name for r in busy if r.cluster == name and r.state in (State.PENDING, State.RUNNING)]
    if running:
        raise RestoreRefused(f"target_cluster {namespace}/{name} already has a restore in progress: {running}")


def _retention_holder(inventory: Inventory) -> str | None:
    now = datetime.now(UTC)
    for view in inventory.logs:
        lease = retention_lease(view)
        if lease is not None and lease.active(now):
            return f"retention run {lease.run} (lease on {view.name} until {lease.until.isoformat()})"
    return None


def _plan(cluster: ClusterConfig, inventory: Inventory, params: dict[str, Any], target_ts: int,
          namespace: str, target: str, name: str) -> tuple[RestorePlan, bool]:
    now = datetime.now(UTC)
    current = inventory.current_log()
    logs = list(inventory.logs)
    wait = False
    if current is not None and current.checkpoint_ts and target_ts > current.checkpoint_ts:
        # Recent but not yet in the log: wait for the checkpoint, if the log backup is healthy and close.
        behind = (now - tso_to_dt(target_ts)).total_seconds()
        healthy = current.state == State.RUNNING and not current.error_paused
        if healthy and behind <= cluster.rpo.critical.total_seconds():
            wait = True
            logs = [dataclasses.replace(v, checkpoint_ts=target_ts) if v is current else v for v in logs]
        else:
            window = recoverable_window(inventory.snapshots, inventory.logs)
            raise RestoreRefused(f"restore_time {tso_iso(target_ts)} is after the log checkpoint "
                                 f"{tso_iso(current.checkpoint_ts)} and the log backup is {current.phase}: "
                                 f"the recoverable window is {window.describe()}")
    try:
        plan = plan_restore(
            target_ts, inventory.snapshots, logs, target_cluster=target, target_namespace=namespace,
            source_cluster=cluster.tidb_cluster, source_namespace=cluster.namespace, group=cluster.group(),
            tikv_count=cluster.tikv_count, base_override=params.get("base_snapshot") or None, name=name,
            service_account=cluster.service_account)
    except PlanError as exc:
        raise RestoreRefused(str(exc)) from exc
    return plan, wait


def plan_restore_for(cluster: ClusterConfig, params: dict[str, Any], *, run: str = "",
                     run_hash: str = "") -> dict[str, Any]:
    target_ts = parse_target_time(params)
    namespace, target = _target(cluster, params)
    now = datetime.now(UTC)
    if target_ts > dt_to_tso(now):
        raise RestoreRefused(f"restore_time {tso_iso(target_ts)} is in the future (now is {now.isoformat()})")
    dry_run = bool(params.get("dry_run"))
    hook = hook_for(cluster)
    name = restore_name(cluster.name, tso_to_dt(target_ts).strftime("%Y%m%d%H%M%S"), run_hash or "manual")
    deadline = time.monotonic() + cluster.waits.retention_wait.total_seconds()
    while True:
        inventory = load_inventory(hook, cluster)
        plan, wait = _plan(cluster, inventory, params, target_ts, namespace, target, name)
        _check_target_exists(hook, cluster, namespace, target)
        holder = _retention_holder(inventory)
        if holder is None and not dry_run and run_hash:
            # Ours first (naming the base), then look at retention's again: one of the two sees the other.
            lease_on = inventory.current_log() or plan.log
            take_restore_lease(hook, lease_on, run_hash, run, base=plan.base.name, start_ts=plan.base.commit_ts or 0,
                               target=f"{namespace}/{target}", hold=RESTORE_LEASE_HOLD)
            inventory = load_inventory(hook, cluster)
            holder = _retention_holder(inventory)
            if holder is not None:
                release_restore_lease(hook, next(v for v in inventory.logs if v.name == lease_on.name), run_hash)
        if holder is None:
            break
        if dry_run or time.monotonic() >= deadline:
            raise RestoreRefused(f"a retention run is deleting or truncating this cluster's backups: {holder}; "
                                 "restore after it has finished")
        log.info("Waiting for %s to finish before restoring", holder)
        time.sleep(RETENTION_POLL)
    for note in plan.notes:
        log.info("plan: %s", note)
    summary = plan.to_dict()
    log.info("Restore plan: base %s, log %s, estimated %.0f s; Restore CR body: %s", summary["base"]["name"],
             summary["log"]["name"], summary["estimated_seconds"], plan.body)
    return {"target_ts": target_ts, "target_time": tso_iso(target_ts), "target_cluster": target,
            "target_namespace": namespace, "log_backup": plan.log.name, "log_prefix": plan.log.prefix,
            "wait_for_checkpoint": wait, "body": plan.body, "plan": summary, "dry_run": dry_run}


def release_restore(cluster: ClusterConfig, run_hash: str) -> None:
    hook = hook_for(cluster)
    for view in load_inventory(hook, cluster).logs:
        release_restore_lease(hook, view, run_hash)
