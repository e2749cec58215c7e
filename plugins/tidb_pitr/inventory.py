"""What exists for one cluster: its snapshot and log Backup CRs, read once and viewed through the model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .api import BACKUPS
from .config import ClusterConfig
from .hooks.kubernetes import TidbOperatorHook
from .model import BackupView, State

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Inventory:
    snapshots: list[BackupView]  # oldest first
    logs: list[BackupView]  # oldest first

    def current_log(self, preferred: str | None = None) -> BackupView | None:
        """The log backup task that matters now: the preferred name if present, else the newest not Stopped."""
        for view in self.logs:
            if view.name == preferred and not view.deleting:
                return view
        live = [v for v in self.logs if v.state != State.STOPPED and not v.deleting]
        return live[-1] if live else None

    def newest_snapshot(self) -> BackupView | None:
        return self.snapshots[-1] if self.snapshots else None


def _belongs(view: BackupView, cluster: ClusterConfig) -> bool:
    return view.cluster == cluster.tidb_cluster and view.cluster_namespace == cluster.namespace


def load_inventory(hook: TidbOperatorHook, cluster: ClusterConfig) -> Inventory:
    views = [BackupView.from_cr(obj) for obj in hook.list(BACKUPS, cluster.namespace)]
    mine = sorted((v for v in views if _belongs(v, cluster)), key=lambda v: (v.created or _EPOCH, v.name))
    return Inventory(snapshots=[v for v in mine if v.mode == "snapshot"], logs=[v for v in mine if v.mode == "log"])


def hook_for(cluster: ClusterConfig) -> TidbOperatorHook:
    return TidbOperatorHook(cluster.kubernetes_conn_id, api_group=cluster.group())
