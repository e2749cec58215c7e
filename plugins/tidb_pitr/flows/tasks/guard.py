"""The log backup guard's task bodies: which log backup to look after, the RPO check, the recoverable window
and its gauges (the snapshot flow's preflight shares `live_log`).

They run on workers at task run time only; nothing here runs when a DAG file is parsed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.api import LABEL_MANAGED_BY, MANAGED_BY
from ...cr.inventory import Inventory, load_inventory
from ...cr.model import BackupView
from ...hooks.kubernetes import hook_for
from ...planning import Window, is_usable_snapshot, recoverable_window
from ...planning.pause import dead_pause_cause, maintenance_pause, resume_refused_by_gc
from ...planning.rpo import lag_seconds, rpo_level, starting
from ...runtime.metrics import CHECKPOINT_LAG, LAST_SNAPSHOT_AGE, WINDOW_SPAN, gauge
from ...tso import tso_iso
from ...units import format_duration

log = logging.getLogger(__name__)


def start_grace(cluster: ClusterConfig) -> timedelta:
    """How long a started log backup may have no checkpoint: the tracker's interval plus a grace period."""
    return cluster.waits.tracker_interval + cluster.waits.start_grace


def live_log(cluster: ClusterConfig, inventory: Inventory) -> BackupView:
    """The cluster's one live log task; a clear failure when there is none, or more than one."""
    live = inventory.live_logs()
    if len(live) > 1:
        raise AirflowFailException(
            f"{len(live)} live log backups for {cluster.namespace}/{cluster.tidb_cluster}: "
            f"{', '.join(v.name for v in live)}. TiDB runs one log task per cluster: stop all but one "
            "(logSubcommand: log-stop), then run the guard")
    if not live:
        newest = inventory.newest_log()
        what = (f"the newest, {newest.name}, is {newest.phase or 'not started'}" if newest is not None
                else "there is none")
        raise AirflowFailException(
            f"no live log backup for {cluster.namespace}/{cluster.tidb_cluster} ({what}): run the log backup "
            f"guard DAG {cluster.dag_id('log_guard')} (with start_new_log_backup after a Stopped one)")
    return live[0]


def find_log_backup(cluster: ClusterConfig, *, start_new: bool = False) -> dict[str, Any]:
    """Which log backup CR the guard looks after: the live one, one being started, or the one to create."""
    inventory = load_inventory(hook_for(cluster), cluster)
    live = inventory.live_logs()
    if len(live) > 1:
        live_log(cluster, inventory)  # raises, naming them
    if live and resume_refused_by_gc(live[0]):
        return _replace_dead_pause(cluster, inventory, live[0], start_new=start_new)
    if live:
        return {"name": live[0].name, "prefix": live[0].prefix, "new": False}
    pending = inventory.pending_logs()
    if pending:
        return {"name": pending[-1].name, "prefix": pending[-1].prefix, "new": False}
    newest = inventory.newest_log()
    nxt = inventory.next_log(cluster)
    if newest is None:
        return {"name": nxt.name, "prefix": nxt.prefix, "new": True}
    if not start_new:
        raise AirflowFailException(
            f"log backup {newest.namespace}/{newest.name} is {newest.phase or 'without status'}"
            f"{': ' + newest.message if newest.message else ''}. That is terminal for it: trigger this DAG with "
            f"start_new_log_backup=true to start {nxt.name} at {nxt.prefix}, then take a snapshot after it "
            f"({cluster.dag_id('snapshot')}): until that snapshot, times after the new start are not restorable")
    log.warning("Starting a new log backup %s at %s after %s (%s): take a snapshot after it; the old one's data "
                "stays restorable up to its checkpoint, and the gap between them is not", nxt.name, nxt.prefix,
                newest.name, newest.phase)
    return {"name": nxt.name, "prefix": nxt.prefix, "new": True}


def _replace_dead_pause(cluster: ClusterConfig, inventory: Inventory, dead: BackupView, *,
                        start_new: bool) -> dict[str, Any]:
    """A paused log backup that BR will never resume: fail with the cause and the way out, or, when asked,
    name the new log backup and the dead one that `ensure_log_backup` stops first (TiDB runs one task per
    cluster, and a paused task still holds it). Never asks for the same resume again: it would fail the same."""
    nxt = inventory.next_log(cluster)
    refusal = resume_refused_by_gc(dead) or ""
    if not start_new:
        raise AirflowFailException(
            f"{dead_pause_cause(dead)}. BR said: {refusal}. Way out: trigger this DAG with "
            f"start_new_log_backup=true: it stops {dead.name} and starts {nxt.name} at {nxt.prefix}; then take a "
            f"snapshot ({cluster.dag_id('snapshot')}). {dead.name} stays restorable up to its checkpoint; times "
            "from there to the new log's first snapshot are not restorable")
    if dead.label(LABEL_MANAGED_BY) != MANAGED_BY:
        raise AirflowFailException(
            f"{dead_pause_cause(dead)}. It was not made by this project, so the guard does not stop it: stop it "
            f"yourself (logSubcommand: log-stop), then trigger this DAG with start_new_log_backup=true")
    log.warning("Replacing log backup %s (%s): stopping it and starting %s at %s; take a snapshot after it",
                dead.name, refusal, nxt.name, nxt.prefix)
    return {"name": nxt.name, "prefix": nxt.prefix, "new": True, "replaces": dead.name}


def measure_rpo(cluster: ClusterConfig) -> dict[str, Any]:
    """Checkpoint lag against the thresholds: warn logs loudly, critical fails the task (and alerts)."""
    inventory = load_inventory(hook_for(cluster), cluster)
    current = live_log(cluster, inventory)
    lag = lag_seconds(current.checkpoint_ts)
    gauge(CHECKPOINT_LAG, lag, cluster)
    warn, critical = cluster.rpo.warn.total_seconds(), cluster.rpo.critical.total_seconds()
    level = rpo_level(lag, warn, critical, starting=lag is None and starting(current, start_grace(cluster)))
    result = {"log_backup": current.name, "checkpoint_ts": current.checkpoint_ts, "lag_seconds": lag,
              "level": level, "warn_seconds": warn, "critical_seconds": critical}
    dead = resume_refused_by_gc(current)
    if dead:
        result["cause"] = dead_pause_cause(current)
    held = maintenance_pause(current)
    if held is not None and held.active(datetime.now(UTC)) and level in ("warn", "critical"):
        # Paused on purpose, within its bound: the lag is the pause's, said loudly but not an RPO failure.
        result["paused_until"] = held.to_dict()["until"]
        log.warning("Log backup %s is paused for maintenance until %s (run %s: %s): checkpoint lag %s; nothing "
                    "written since the pause is restorable until it resumes", current.name, result["paused_until"],
                    held.run, held.reason or "no reason given", "unknown" if lag is None else format_duration(lag))
        return result
    if level == "critical":
        since = tso_iso(current.checkpoint_ts) if current.checkpoint_ts else "the log backup started (no checkpoint)"
        advice = (f"{result['cause']}: trigger {cluster.dag_id('log_guard')} with start_new_log_backup=true" if dead
                  else "Check `br log status` and the TiKV stores")
        raise AirflowFailException(
            f"RPO CRITICAL for {cluster.namespace}/{cluster.name}: log checkpoint lag "
            f"{'unknown' if lag is None else format_duration(lag)} exceeds {format_duration(critical)}; everything "
            f"written since "
            f"{since} would be lost in a restore. {advice}")
    if level == "warn":
        log.warning("RPO WARNING for %s/%s: checkpoint lag %s exceeds %s", cluster.namespace, cluster.name,
                    format_duration(lag), format_duration(warn))
    elif level == "starting":
        grace = start_grace(cluster)
        log.info("Log backup %s is starting: no checkpoint yet (TiDB Operator writes it every %s); not an RPO "
                 "breach for the first %s", current.name, format_duration(cluster.waits.tracker_interval),
                 format_duration(grace))
    else:
        log.info("Checkpoint lag %s (warn at %s, critical at %s)", format_duration(lag), format_duration(warn),
                 format_duration(critical))
    return result


def current_window(cluster: ClusterConfig) -> dict[str, Any]:
    inventory = load_inventory(hook_for(cluster), cluster)
    window = recoverable_window(inventory.snapshots, inventory.logs)
    log.info("Recoverable window of %s/%s: %s", cluster.namespace, cluster.name, window.describe())
    publish_window_metrics(cluster, inventory, window)
    return window.to_dict()


def last_snapshot_age(inventory: Inventory, now: datetime | None = None) -> float | None:
    """Seconds since the commitTs of the newest snapshot usable as a PITR base (None: there is none)."""
    usable = [v.commit_ts for v in inventory.snapshots if is_usable_snapshot(v) and v.commit_ts]
    return lag_seconds(max(usable), now) if usable else None


def publish_window_metrics(cluster: ClusterConfig, inventory: Inventory, window: Window) -> None:
    """The window's span and the newest base's age as gauges (an empty window has no span to report)."""
    gauge(WINDOW_SPAN, window.span.total_seconds() if window.earliest_ts is not None else None, cluster)
    gauge(LAST_SNAPSHOT_AGE, last_snapshot_age(inventory), cluster)

