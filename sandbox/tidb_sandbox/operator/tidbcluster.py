"""The TidbCluster controller's one output the backup controllers read: the `Ready` condition (v1).

TiDB Operator v1 is one controller manager: its TidbCluster controller writes `status.conditions[Ready]`
and the backup manager waits for it (`isTidbClusterReady` in `pkg/backup/backup/backup_manager.go`,
release-1.6: while not Ready, a Backup is requeued silently, its status untouched). The v2 backup manager
has no such check. The fault `cluster_not_ready=<namespace>/<name>[,...]` holds clusters not Ready.
"""

from __future__ import annotations

from typing import Any

from ..k8s.store import now_rfc3339
from .clusters import TIDBCLUSTER, SimCluster
from .common import V2_GROUP
from .context import Context

READY = {"type": "Ready", "status": "True", "reason": "Ready", "message": "TiDB cluster is fully up and running"}
NOT_READY = {"type": "Ready", "status": "False", "reason": "TiKVStoreNotUp", "message": "TiKV store(s) are not up"}


def _ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def cluster_ready(ctx: Context, group: str, cluster: SimCluster) -> bool:
    if group == V2_GROUP:
        return True
    obj = ctx.store.find(ctx.rt("pingcap.com", "tidbclusters"), cluster.namespace, cluster.name)
    cond = _ready_condition(obj or {})
    return cond is not None and cond.get("status") == "True"


def sync_cluster_status(ctx: Context) -> None:
    """Write each TidbCluster's Ready condition as the fault switch wants it."""
    not_ready = {t.strip() for t in (ctx.faults.cluster_not_ready or "").split(",") if t.strip()}
    rt = ctx.rt("pingcap.com", "tidbclusters")
    for cluster in ctx.clusters.all():
        if cluster.resource != TIDBCLUSTER:
            continue
        wanted = NOT_READY if f"{cluster.namespace}/{cluster.name}" in not_ready else READY
        obj = ctx.store.find(rt, cluster.namespace, cluster.name)
        current = _ready_condition(obj or {})
        if obj is None or (current is not None and current.get("status") == wanted["status"]):
            continue

        def mutate(status: dict[str, Any], _: dict[str, Any], wanted: dict[str, Any] = wanted) -> None:
            others = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
            status["conditions"] = [*others, {**wanted, "lastTransitionTime": now_rfc3339(),
                                              "lastUpdateTime": now_rfc3339()}]
        ctx.write_status(rt, cluster.namespace, cluster.name, mutate)
