"""The guard's steps for a cluster whose backups a TiDB Operator BackupSchedule makes (`managed_by:
backup_schedule`): find the schedule's log backup (never create, resume or stop one), report what its GC
deletes next, and warn of the spec's known hazards. Run on workers only."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.inventory import Inventory, load_inventory
from ...cr.model import BackupView
from ...hooks.kubernetes import TidbOperatorHook, hook_for
from ...planning.schedule import ISSUE_MAX_BACKUPS, gc_hazards, gc_summary, hazards, made_by_schedule, next_gc

log = logging.getLogger(__name__)
BACKUP_SCHEDULES = "backupschedules"


def load_schedule(hook: TidbOperatorHook, cluster: ClusterConfig) -> dict[str, Any]:
    obj = hook.get(BACKUP_SCHEDULES, cluster.backup_schedule or "", cluster.namespace)
    if obj is None:
        raise AirflowFailException(
            f"BackupSchedule {cluster.namespace}/{cluster.backup_schedule} (backup_schedule of cluster "
            f"{cluster.name}, managed_by: backup_schedule) does not exist: create it, or fix the name")
    return obj


def schedule_log(cluster: ClusterConfig, schedule: dict[str, Any], inventory: Inventory) -> BackupView:
    """The schedule's log backup CR (`status.logBackup`), live; a clear failure otherwise."""
    spec, status = schedule.get("spec") or {}, schedule.get("status") or {}
    where = f"BackupSchedule {cluster.namespace}/{cluster.backup_schedule}"
    if not spec.get("logBackupTemplate"):
        raise AirflowFailException(f"{where} has no logBackupTemplate: it runs no log backup, so there is no "
                                   "point-in-time recovery and no RPO to measure. Add a logBackupTemplate")
    name = status.get("logBackup")
    if not name:
        raise AirflowFailException(f"{where} has not created its log backup yet (status.logBackup is empty): "
                                   "is the schedule paused, or TiDB Operator not running?")
    view = next((v for v in inventory.logs if v.name == name), None)
    others = [v for v in inventory.live_logs() if v.name != name]
    if others:
        raise AirflowFailException(
            f"another live log backup for {cluster.namespace}/{cluster.tidb_cluster} besides {where}'s {name}: "
            f"{', '.join(v.name for v in others)}. TiDB runs one log task per cluster: stop it")
    if view is None:
        cause = (f" maxBackups is set: TiDB Operator's GC counted the log backup CR as a backup and deleted it "
                 f"(tidb-operator#6320, {ISSUE_MAX_BACKUPS}); the schedule stops making backups until its "
                 "status.logBackup is cleared. Set maxReservedTime instead of maxBackups" if spec.get("maxBackups")
                 and spec.get("maxReservedTime") is None else "")
        raise AirflowFailException(f"{where}'s log backup {name} is gone.{cause}")
    if view not in inventory.live_logs():
        raise AirflowFailException(
            f"{where}'s log backup {name} is {view.phase or 'not started'}"
            f"{': ' + view.message if view.message else ''}. The project does not start, resume or stop the "
            "schedule's log backup: fix it in TiDB Operator (kubectl edit backup, logSubcommand)")
    return view


def find_schedule_log(cluster: ClusterConfig) -> dict[str, Any]:
    hook = hook_for(cluster)
    view = schedule_log(cluster, load_schedule(hook, cluster), load_inventory(hook, cluster))
    log.info("The schedule's log backup %s is %s", view.name, view.phase)
    return {"name": view.name, "prefix": view.prefix, "new": False}


def schedule_plan(cluster: ClusterConfig, schedule: dict[str, Any], inventory: Inventory,
                  now: datetime | None = None) -> dict[str, Any]:
    """What the schedule's GC deletes and truncates next, and the hazards of its spec."""
    spec = schedule.get("spec") or {}
    name = cluster.backup_schedule or ""
    mine = [v for v in inventory.snapshots + inventory.logs if made_by_schedule(v, name)]
    gc = next_gc(spec, mine, now or datetime.now(UTC))
    return {"schedule": name, "gc": gc.to_dict(), "summary": gc_summary(gc),
            "hazards": [*hazards(spec, retention=cluster.retention), *gc_hazards(gc)],
            "max_reserved_time": spec.get("maxReservedTime"), "max_backups": spec.get("maxBackups"),
            "last_backup": (schedule.get("status") or {}).get("lastBackup"),
            "log_backup": (schedule.get("status") or {}).get("logBackup")}


def schedule_report(cluster: ClusterConfig) -> dict[str, Any]:
    hook = hook_for(cluster)
    plan = schedule_plan(cluster, load_schedule(hook, cluster), load_inventory(hook, cluster))
    log.info("BackupSchedule %s/%s next GC %s", cluster.namespace, plan["schedule"], plan["summary"])
    for hazard in plan["hazards"]:
        log.warning("BackupSchedule %s/%s: %s", cluster.namespace, plan["schedule"], hazard)
    return plan
