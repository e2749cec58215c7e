"""The restore run's validation and plan: every refusal happens here, before any Restore CR exists."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from .api import RESTORES
from .config import ClusterConfig
from .hooks.kubernetes import TidbOperatorHook
from .inventory import hook_for, load_inventory
from .model import RestoreView, State
from .planning import PlanError, plan_restore, recoverable_window
from .tso import dt_to_tso, parse_user_time, tso_iso

log = logging.getLogger(__name__)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CLUSTER_RESOURCE = {"pingcap.com": ("pingcap.com", "v1alpha1", "tidbclusters"),
                    "br.pingcap.com": ("core.pingcap.com", "v1alpha1", "clusters")}


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
    from kubernetes.client.exceptions import ApiException

    try:
        hook.api.get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            raise RestoreRefused(f"target_cluster {namespace}/{name} not found ({plural}.{group}): create the "
                                 "empty TiDB cluster to restore into first") from exc
        raise
    busy = [RestoreView.from_cr(o) for o in hook.list(RESTORES, namespace)]
    running = [r.name for r in busy if r.cluster == name and r.state in (State.PENDING, State.RUNNING)]
    if running:
        raise RestoreRefused(f"target_cluster {namespace}/{name} already has a restore in progress: {running}")


def plan_restore_for(cluster: ClusterConfig, params: dict[str, Any]) -> dict[str, Any]:
    target_ts = parse_target_time(params)
    namespace, target = _target(cluster, params)
    now = datetime.now(UTC)
    if target_ts > dt_to_tso(now):
        raise RestoreRefused(f"restore_time {tso_iso(target_ts)} is in the future (now is {now.isoformat()})")
    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    current = inventory.current_log(cluster.log_backup_name)
    logs = list(inventory.logs)
    wait = False
    if current is not None and current.checkpoint_ts and target_ts > current.checkpoint_ts:
        # Recent but not yet in the log: wait for the checkpoint, if the log backup is healthy and close.
        behind = (now - datetime.fromtimestamp((target_ts >> 18) / 1000, UTC)).total_seconds()
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
            tikv_count=cluster.tikv_count, base_override=params.get("base_snapshot") or None, br=None)
    except PlanError as exc:
        raise RestoreRefused(str(exc)) from exc
    _check_target_exists(hook, cluster, namespace, target)
    for note in plan.notes:
        log.info("plan: %s", note)
    summary = plan.to_dict()
    log.info("Restore plan: base %s, log %s, estimated %.0f s; Restore CR body: %s", summary["base"]["name"],
             summary["log"]["name"], summary["estimated_seconds"], plan.body)
    return {"target_ts": target_ts, "target_time": tso_iso(target_ts), "target_cluster": target,
            "target_namespace": namespace, "log_backup": plan.log.name, "wait_for_checkpoint": wait,
            "body": plan.body, "plan": summary, "dry_run": bool(params.get("dry_run"))}
