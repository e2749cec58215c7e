"""The simulated TiDB clusters: a TidbCluster (v1) or Cluster (v2) object plus its MVCC data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import clock
from ..data.mvcc import ClusterData
from ..data.workload import Workload

TIDBCLUSTER = "tidbclusters.pingcap.com"
V2_CLUSTER = "clusters.core.pingcap.com"


@dataclass
class SimCluster:
    namespace: str
    name: str
    resource: str  # TIDBCLUSTER or V2_CLUSTER
    data: ClusterData
    workload: Workload | None = None
    # BR's checkpoint of a restore that failed part-way into this cluster (restore_targets.checkpoint_key):
    # a later restore with the same key resumes over what it left instead of checking the cluster is fresh.
    restore_checkpoint: str | None = None
    # The table definitions with the IDs that restore preallocated (what BR's checkpoint keeps of them).
    restore_checkpoint_ids: dict[str, Any] | None = None


class ClusterRegistry:
    def __init__(self) -> None:
        self._clusters: dict[tuple[str, str], SimCluster] = {}

    def get(self, namespace: str, name: str) -> SimCluster | None:
        return self._clusters.get((namespace, name))

    def add(self, cluster: SimCluster) -> SimCluster:
        self._clusters[(cluster.namespace, cluster.name)] = cluster
        return cluster

    def remove(self, namespace: str, name: str) -> None:
        self._clusters.pop((namespace, name), None)

    def all(self) -> list[SimCluster]:
        return list(self._clusters.values())

    async def run_workloads(self, interval: Callable[[], float] = lambda: 0.2) -> None:
        """Drive every cluster's workload every `interval()` seconds; the writes land in its MVCC data with fresh
        TSOs."""
        last = clock.monotonic()
        while True:
            await clock.sleep(max(interval(), 0.05))
            now = clock.monotonic()
            for cluster in self.all():
                if cluster.workload is not None:
                    cluster.workload.tick(now - last)  # applies its changes to the cluster's data
            last = now
