"""Task bodies that read the cluster's state and decide: log health, RPO, snapshot data, the window.

They run on workers at task run time only; nothing here runs when a DAG file is parsed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from .config import ClusterConfig
from .inventory import Inventory, hook_for, load_inventory
from .model import State
from .planning import recoverable_window
from .tso import tso_to_dt

log = logging.getLogger(__name__)


def lag_seconds(checkpoint_ts: int | None, now: datetime | None = None) -> float | None:
    if not checkpoint_ts:
        return None
    return ((now or datetime.now(UTC)) - tso_to_dt(checkpoint_ts)).total_seconds()


def log_backup_name(cluster: ClusterConfig, inventory: Inventory | None = None) -> str:
    """The cluster's log backup CR: the one running (whatever made it), else the configured name."""
    inventory = inventory or load_inventory(hook_for(cluster), cluster)
    current = inventory.current_log(cluster.log_backup_name)
    return current.name if current is not None else cluster.log_backup_name


def check_log_backup_healthy(cluster: ClusterConfig) -> dict[str, Any]:
    """Preflight of a snapshot: a snapshot is a PITR base only with a running, caught-up log backup."""
    inventory = load_inventory(hook_for(cluster), cluster)
    current = inventory.current_log(cluster.log_backup_name)
    if current is None:
        raise AirflowFailException(
            f"no log backup for {cluster.namespace}/{cluster.tidb_cluster}: run the log backup guard DAG "
            f"({cluster.dag_id('log_guard')}) first, so that this snapshot can be used for PITR")
    if current.state != State.RUNNING or current.error_paused:
        raise AirflowFailException(
            f"log backup {current.namespace}/{current.name} is {current.phase}"
            f"{' (paused by an error)' if current.error_paused else ''}: {current.message or 'no message'}; "
            f"fix it (see the guard DAG {cluster.dag_id('log_guard')}) before taking snapshots")
    lag = lag_seconds(current.checkpoint_ts)
    critical = cluster.rpo.critical.total_seconds()
    if lag is None or lag > critical:
        raise AirflowFailException(
            f"log backup {current.namespace}/{current.name} checkpoint lag is {lag and round(lag)} s, over the "
            f"critical RPO of {critical:.0f} s: the log is not keeping up")
    log.info("Log backup %s is Running, checkpoint lag %.0f s", current.name, lag)
    return {"log_backup": current.name, "checkpoint_ts": current.checkpoint_ts, "lag_seconds": lag}


def measure_rpo(cluster: ClusterConfig) -> dict[str, Any]:
    """Checkpoint lag against the thresholds: warn logs loudly, critical fails the task (and alerts)."""
    inventory = load_inventory(hook_for(cluster), cluster)
    current = inventory.current_log(cluster.log_backup_name)
    if current is None:
        raise AirflowFailException(f"no log backup for {cluster.namespace}/{cluster.tidb_cluster}")
    lag = lag_seconds(current.checkpoint_ts)
    warn, critical = cluster.rpo.warn.total_seconds(), cluster.rpo.critical.total_seconds()
    level = "ok" if lag is not None and lag <= warn else "warn" if lag is not None and lag <= critical else "critical"
    result = {"log_backup": current.name, "checkpoint_ts": current.checkpoint_ts, "lag_seconds": lag,
              "level": level, "warn_seconds": warn, "critical_seconds": critical}
    if level == "critical":
        raise AirflowFailException(
            f"RPO CRITICAL for {cluster.namespace}/{cluster.name}: log checkpoint lag {lag and round(lag)} s exceeds "
            f"{critical:.0f} s; everything written since {current.checkpoint_ts and tso_to_dt(current.checkpoint_ts)}"
            " would be lost in a restore. Check `br log status` and the TiKV stores")
    if level == "warn":
        log.warning("RPO WARNING for %s/%s: checkpoint lag %.0f s exceeds %.0f s", cluster.namespace, cluster.name,
                    lag, warn)
    else:
        log.info("Checkpoint lag %.0f s (warn at %.0f s, critical at %.0f s)", lag, warn, critical)
    return result


def verify_snapshot_in_storage(cluster: ClusterConfig, result: dict[str, Any]) -> dict[str, Any]:
    from .hooks.storage import BackupStorageHook

    prefix = result.get("prefix") or cluster.storage.snapshot_prefix(result["name"])
    info = BackupStorageHook(**cluster.storage.hook_kwargs()).snapshot_info(prefix)
    if not info.exists_backupmeta:
        raise AirflowFailException(f"snapshot {result['name']} is Complete but {prefix}/backupmeta is missing in "
                                   "storage: the backup is not usable; check the bucket and its lifecycle rules")
    if info.total_bytes <= 0 or info.objects < 2:
        raise AirflowFailException(f"snapshot {result['name']} has no data under {prefix}")
    log.info("Snapshot %s verified in storage: %d objects, %d bytes (backupmeta %d bytes); CR backupSize %s",
             result["name"], info.objects, info.total_bytes, info.backupmeta_bytes, result.get("backup_size"))
    return {"prefix": prefix, "objects": info.objects, "total_bytes": info.total_bytes}


def current_window(cluster: ClusterConfig) -> dict[str, Any]:
    inventory = load_inventory(hook_for(cluster), cluster)
    window = recoverable_window(inventory.snapshots, inventory.logs)
    log.info("Recoverable window of %s/%s: %s", cluster.namespace, cluster.name, window.describe())
    return window.to_dict()
