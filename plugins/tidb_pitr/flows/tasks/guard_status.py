"""What the guard publishes for the status page every run: window, timeline, RPO, last snapshot, next retention.

The web tier has no Kubernetes or storage credentials, so the page shows only this (the guard's XCom). It reads
CRs only: the retention plan here is a dry run without the storage checks of the real run. No credentials in it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ...config import ClusterConfig
from ...cr.api import RESTORES
from ...cr.inventory import load_inventory
from ...cr.model import RestoreView, State
from ...cr.ownership import snapshot_ownership
from ...hooks.kubernetes import hook_for
from ...hooks.sql import target_user_objects
from ...planning import plan_retention, recoverable_window
from ...planning.notes import guard_note
from ...planning.pause import dead_pause_cause, maintenance_pause, resume_refused_by_gc
from ...planning.rpo import lag_seconds, rpo_level, starting
from ...planning.targets import target_state
from ...planning.timeline import build_timeline, last_snapshot, window_with_causes
from ...tso import tso_iso, tso_str
from .guard import start_grace
from .guard_schedule import load_schedule, schedule_plan
from .retention import RetentionHeld, check_not_held, restores_in_progress

STATUS_VERSION = 1
log = logging.getLogger(__name__)


def _targets(cluster: ClusterConfig, hook: Any) -> list[dict[str, Any]]:
    """Each configured restore target's state now (planning/targets.py): scratch, being restored into (a Restore CR
    in progress), or what SQL finds in it (`sql_conn_id`); a target that cannot be read is `unknown`, saying why."""
    restoring: dict[tuple[str, str], list[str]] = {}
    for namespace in cluster.target_namespaces():
        for obj in hook.list(RESTORES, namespace):
            view = RestoreView.from_cr(obj)
            if view.state in (State.PENDING, State.RUNNING):
                restoring.setdefault((view.cluster_namespace, view.cluster), []).append(view.name)
    out = []
    for value in cluster.target_choices():
        namespace, _, name = value.rpartition("/")
        target = cluster.restore_target(name, namespace)
        assert target is not None  # listed by target_choices
        found, unreadable = None, None
        if target.sql_conn_id and not target.scratch:
            try:
                found = target_user_objects(target.sql_conn_id)
            except Exception as exc:  # the driver's own errors: the page says so, the rest is still published
                unreadable = f"could not be read over SQL ({target.sql_conn_id}): {type(exc).__name__}: {exc}"
                log.warning("Restore target %s %s", value, unreadable)
        out.append({"value": value, **target_state(scratch=target.scratch, restoring=restoring.get((namespace, name), []),
                                                   user_objects=found, unreadable=unreadable)})
    return out


def _rpo(cluster: ClusterConfig, live: Any, now: datetime) -> dict[str, Any]:
    warn, critical = cluster.rpo.warn.total_seconds(), cluster.rpo.critical.total_seconds()
    lag = lag_seconds(live.checkpoint_ts, now) if live is not None else None
    level = rpo_level(lag, warn, critical, starting=live is not None and starting(live, start_grace(cluster), now))
    checkpoint = live.checkpoint_ts if live is not None else None
    # A log backup whose resume BR refused for good: the lag only grows, and the page says why and what to do.
    cause = (f"{dead_pause_cause(live)}; trigger {cluster.dag_id('log_guard')} with start_new_log_backup=true"
             if live is not None and resume_refused_by_gc(live) else None)
    held = maintenance_pause(live) if live is not None else None
    return {"log_backup": live.name if live is not None else None, "log_phase": live.phase if live else None,
            # paused on purpose (the log-control DAG): until when, by which run, why; the guard resumes it after
            "maintenance_pause": {**held.to_dict(), "active": held.active(now)} if held is not None else None,
            "checkpoint": {"ts": tso_str(checkpoint), "time": tso_iso(checkpoint)} if checkpoint else None,
            "lag_seconds": lag, "level": level, "warn_seconds": warn, "critical_seconds": critical, "cause": cause}


def _retention(plan: Any) -> dict[str, Any]:
    """The slim dry run: what would go, and how far the log would be truncated."""
    data = plan.to_dict()
    return {"dry_run": True, "policy_start": data["policy_start"], "base": data["base"],
            "delete": [{"name": d["name"], "commit_ts": d["commit_ts"], "commit_time": d["commit_time"]}
                       for d in data["delete"]],
            "truncate_until": data["truncate_until"], "refused": data["refused"], "held": None,
            "reasons": data["reasons"]}


def cluster_status(cluster: ClusterConfig) -> dict[str, Any]:
    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    now = datetime.now(UTC)
    owned = snapshot_ownership(cluster.name, cluster.storage.cr_block(), cluster.storage.root)
    window = recoverable_window(inventory.snapshots, inventory.logs)
    timeline = build_timeline(inventory.snapshots, inventory.logs, now=now, retention=cluster.retention,
                              managed=owned, window=window)
    if cluster.schedule_managed:
        retention = _schedule_retention(cluster, hook, inventory)
    else:
        retention = _own_retention(cluster, hook, inventory, now, owned)
    return {
        "version": STATUS_VERSION, "cluster": f"{cluster.namespace}/{cluster.name}",
        "generated_at": now.isoformat().replace("+00:00", "Z"), "retention_seconds": cluster.retention.total_seconds(),
        "window": window_with_causes(window), "timeline": timeline.to_dict(),
        "rpo": _rpo(cluster, inventory.current_log(), now),
        "last_snapshot": last_snapshot(inventory.snapshots, now, owned), "retention_plan": retention,
        "targets": _targets(cluster, hook),
        "source_tables": _source_tables(cluster),
    }


def _source_tables(cluster: ClusterConfig) -> list[str]:
    """The source's user tables now, over SQL (the restore form's suggestions); [] without sql_conn_id or when
    SQL cannot be read (the guard's other work goes on)."""
    if not cluster.sql_conn_id:
        return []
    try:
        return [o for o in target_user_objects(cluster.sql_conn_id) if "." in o]
    except Exception as exc:  # the driver's own errors: the form simply offers no suggestions
        log.warning("Source tables not read over SQL (%s): %s", cluster.sql_conn_id, exc)
        return []


def _schedule_retention(cluster: ClusterConfig, hook: Any, inventory: Any) -> dict[str, Any]:
    """The BackupSchedule's next GC in the retention plan's shape, its hazards as the reasons."""
    try:
        plan = schedule_plan(cluster, load_schedule(hook, cluster), inventory)
    except Exception as err:  # the page still shows the rest
        return {"dry_run": True, "held": str(err), "delete": [], "truncate_until": None, "refused": None,
                "base": None, "policy_start": None, "reasons": [], "by": "backup_schedule"}
    gc = plan["gc"]
    return {"dry_run": True, "policy_start": None, "base": None, "delete": gc["delete"],
            "truncate_until": gc["truncate_until"], "refused": None, "held": None,
            "reasons": [f"BackupSchedule {plan['schedule']} {plan['summary']}", *plan["hazards"]],
            "by": "backup_schedule"}


def _own_retention(cluster: ClusterConfig, hook: Any, inventory: Any, now: datetime, owned: Any) -> dict[str, Any]:
    try:
        check_not_held(cluster, inventory)
        plan = plan_retention(inventory.snapshots, inventory.logs, now=now, retention=cluster.retention,
                              managed=owned, protections=restores_in_progress(hook, cluster, inventory))
        retention = _retention(plan)
    except RetentionHeld as held:
        retention = {"dry_run": True, "held": str(held), "delete": [], "truncate_until": None, "refused": None,
                     "base": None, "policy_start": None, "reasons": []}
    return retention


def status_note(cluster: ClusterConfig, status: dict[str, Any]) -> str:
    """The guard run's note from what it published: the RPO level and lag first, then the window."""
    rpo, window = status["rpo"], status["window"]
    earliest, latest = (window.get(end) or {} for end in ("earliest", "latest"))
    bounds = ((int(earliest["ts"]), int(latest["ts"])) if earliest.get("ts") and latest.get("ts") else None)
    return guard_note(rpo["level"], rpo["lag_seconds"], bounds, rpo["log_backup"], cluster.timezone)
