"""The snapshot flow's task bodies: the preflight (a live log backup, its lag under critical) and the check of
the snapshot's data in storage.

They run on workers at task run time only; nothing here runs when a DAG file is parsed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.inventory import load_inventory
from ...cr.model import State
from ...hooks.kubernetes import hook_for
from ...hooks.storage import BackupStorageHook
from ...planning.pause import maintenance_pause
from ...planning.rpo import lag_seconds, starting
from ...units import format_duration
from .guard import live_log, start_grace

log = logging.getLogger(__name__)


def check_log_backup_healthy(cluster: ClusterConfig) -> dict[str, Any]:
    """Preflight of a snapshot: a snapshot is a PITR base only with a running, caught-up log backup."""
    inventory = load_inventory(hook_for(cluster), cluster)
    current = live_log(cluster, inventory)
    held = maintenance_pause(current)
    if held is not None and held.active(datetime.now(UTC)):
        raise AirflowFailException(
            f"log backup {current.namespace}/{current.name} is paused for maintenance until "
            f"{held.to_dict()['until']} (run {held.run}: {held.reason or 'no reason given'}): a snapshot is a PITR "
            "base only with a running log; the guard resumes it then, and the next snapshot run takes one")
    if current.state != State.RUNNING or current.error_paused:
        raise AirflowFailException(
            f"log backup {current.namespace}/{current.name} is {current.phase}"
            f"{' (paused by an error)' if current.error_paused else ''}: {current.message or 'no message'}; "
            f"fix it (see the guard DAG {cluster.dag_id('log_guard')}) before taking snapshots")
    lag = lag_seconds(current.checkpoint_ts)
    critical = cluster.rpo.critical.total_seconds()
    if lag is None and starting(current, start_grace(cluster)):
        log.info("Log backup %s has just started: no checkpoint yet; the snapshot waits for it afterwards",
                 current.name)
    elif lag is None or lag > critical:
        raise AirflowFailException(
            f"log backup {current.namespace}/{current.name} checkpoint lag is "
            f"{'unknown' if lag is None else format_duration(lag)}, over the critical RPO of "
            f"{format_duration(critical)}: the log is not keeping up")
    else:
        log.info("Log backup %s is Running, checkpoint lag %s", current.name, format_duration(lag))
    return {"log_backup": current.name, "checkpoint_ts": current.checkpoint_ts, "lag_seconds": lag}


def verify_snapshot_in_storage(cluster: ClusterConfig, result: dict[str, Any]) -> dict[str, Any]:
    prefix = result["prefix"]
    info = BackupStorageHook(**cluster.storage.hook_kwargs()).snapshot_info(prefix)
    if not info.exists_backupmeta:
        raise AirflowFailException(f"snapshot {result['name']} is Complete but {prefix}/backupmeta is missing in "
                                   "storage: the backup is not usable; check the bucket and its lifecycle rules")
    if info.total_bytes <= 0 or info.objects < 2:
        raise AirflowFailException(f"snapshot {result['name']} has no data under {prefix}")
    log.info("Snapshot %s verified in storage: %d objects, %d bytes (backupmeta %d bytes); CR backupSize %s",
             result["name"], info.objects, info.total_bytes, info.backupmeta_bytes, result.get("backup_size"))
    return {"prefix": prefix, "objects": info.objects, "total_bytes": info.total_bytes}
