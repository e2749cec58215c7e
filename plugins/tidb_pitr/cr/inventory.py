"""What exists for one cluster: its snapshot and log Backup CRs, read once and viewed through the model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .api import BACKUPS
from .model import BackupView, State
from .names import log_backup_name, log_folder

if TYPE_CHECKING:  # annotations only: the vocabulary imports neither the config nor a hook at run time
    from ..config import ClusterConfig
    from ..hooks.kubernetes import TidbOperatorHook

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class NextLog:
    """Where the next log backup task goes: its CR name, its storage prefix, and its generation."""

    name: str
    prefix: str
    generation: int


@dataclass(frozen=True)
class Inventory:
    snapshots: list[BackupView]  # oldest first
    logs: list[BackupView]  # oldest first

    def live_logs(self) -> list[BackupView]:
        """Started log tasks that are Running or Paused (error-paused included), by start: TiDB allows one."""
        live = [v for v in self.logs if v.commit_ts and not v.deleting and v.state in (State.RUNNING, State.PAUSED)]
        return sorted(live, key=lambda v: (v.commit_ts or 0, v.name))

    def pending_logs(self) -> list[BackupView]:
        """Log backups asked to start and not started yet (Scheduled, Prepare, RetryFailed on a Secret, ...)."""
        return [v for v in self.logs if not v.commit_ts and not v.deleting and not v.state.terminal]

    def log_tasks_besides(self, name: str) -> list[BackupView]:
        """Log backups other than `name` that hold, or are about to take, the cluster's one log task (whoever
        made them): a second log-start would fail in BR (ErrStreamLogTaskExist) or stop theirs from starting."""
        return [v for v in self.logs if v.name != name and not v.deleting and not v.state.terminal]

    def current_log(self) -> BackupView | None:
        """The live log task; with two (an error the guard reports), the newest."""
        live = self.live_logs()
        return live[-1] if live else None

    def newest_log(self) -> BackupView | None:
        return self.logs[-1] if self.logs else None

    def newest_snapshot(self) -> BackupView | None:
        return self.snapshots[-1] if self.snapshots else None

    def next_log(self, cluster: ClusterConfig) -> NextLog:
        """The first log backup, or `<name>-<n>` at `<root>/log-backup-<n>` after the ones there were."""
        base = cluster.log_backup.name or f"{cluster.name}-log-backup"
        first = log_backup_name(base)
        pattern = re.compile(rf"^{re.escape(first)}(?:-(\d+))?$")
        used = [int(m.group(1) or 1) for v in self.logs if (m := pattern.match(v.name))]
        prefixes = {v.prefix for v in self.logs}
        generation = max(used, default=0) + 1
        while cluster.storage.log_prefix_for(generation) in prefixes:
            generation += 1
        return NextLog(log_backup_name(base, generation), cluster.storage.prefix(log_folder(generation)), generation)


def inventory_of(objects: Iterable[Mapping[str, Any]], tidb_cluster: str, namespace: str) -> Inventory:
    """The Inventory of one cluster from the Backup CRs of its namespace (pure: the trigger lists them itself)."""
    views = [BackupView.from_cr(obj) for obj in objects]
    mine = sorted((v for v in views if v.cluster == tidb_cluster and v.cluster_namespace == namespace),
                  key=lambda v: (v.created or _EPOCH, v.name))
    return Inventory(snapshots=[v for v in mine if v.mode == "snapshot"], logs=[v for v in mine if v.mode == "log"])


def load_inventory(hook: TidbOperatorHook, cluster: ClusterConfig) -> Inventory:
    return inventory_of(hook.list(BACKUPS, cluster.namespace), cluster.tidb_cluster, cluster.namespace)
