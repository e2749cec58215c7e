"""What every simulated controller shares: the store, storage access, clusters, jobs and timing."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .. import clock
from ..data.tso import TsoAllocator
from ..faults import Faults
from ..k8s.crd import ResourceType
from ..k8s.errors import ApiError
from ..k8s.store import Store
from ..storage.locations import Endpoints, Location, StorageError, open_location
from .clusters import ClusterRegistry, SimCluster
from .conditions import update_condition

if TYPE_CHECKING:
    from ..kernel import LogKernel

log = logging.getLogger(__name__)

STORAGE_KINDS = ("s3", "gcs", "azblob", "local")


@dataclass
class SimConfig:
    """Durations of the simulated jobs, in seconds (restore rates in bytes/s); small values make tests fast."""

    step_delay: float = 0.3  # Scheduled -> Prepare -> Running
    backup_duration: float = 1.0  # snapshot Running -> Complete
    restore_duration: float = 1.0  # a restore's Running time at least; the rates below can make it longer
    # Restore throughput in bytes per second per TiKV store (0 = not simulated, restore_duration alone).
    # TiDB's PITR guide gives about 280 GB/h per TiKV for the snapshot, 30 GB/h for the log; sandbox data is
    # KBs, so scale them down (e.g. 2800 and 300, the docs' ratio) and a restore takes seconds. Running
    # lasts max(restore_duration, snapshot bytes / (snapshot rate * TiKV) + log bytes / (log rate * TiKV)).
    restore_snapshot_rate: float = 0.0
    restore_log_rate: float = 0.0
    truncate_duration: float = 0.5
    compact_duration: float = 1.0
    # How often TiKV flushes a running log task and PD's checkpoint moves: TiKV's log-backup.max-flush-interval,
    # 3 min upstream, scaled like tracker_interval (1/20); the checkpoint trails now by up to this much.
    checkpoint_interval: float = 9.0
    # How long `br log pause` holds the GC at the checkpoint (BR's --gc-ttl; the operator passes none, so BR's
    # DefaultStreamPauseSafePointTTL, 24 h). A resume after that, once the GC passed the checkpoint, fails.
    log_pause_gc_ttl: float = 86400.0
    # How often the operator's tracker copies PD's checkpoint into status.logCheckpointTs (60 s upstream,
    # scaled like the other durations); right after a log start there is no checkpoint for up to this long.
    tracker_interval: float = 3.0
    # How far the global checkpoint files in storage, which BR's restore checks, trail PD's checkpoint.
    storage_checkpoint_lag: float = 2.0
    # How often the operator's informers resync (30 s upstream): every CR is reconciled again then.
    resync_interval: float = 2.0
    stores: int = 3  # TiKV stores the data is spread over in storage
    # TiDB Operator v2 (main, v2.0.1) has no CompactBackup controller; its older docs showed one working.
    v2_compact_controller: bool = False
    # Dumpling/Lightning Jobs retry their TiDB login every 5 s for 30 min upstream (constants.PollInterval,
    # CheckTimeout), then fail with the poll's timeout; scaled down here.
    tidb_connect_timeout: float = 3.0
    tidb_connect_poll: float = 0.5
    kernel_sync: bool = True  # v1.6.4+ log-backup kernel-state sync (error pause reported as RetryFailed)
    # How often the clusters' workloads write and the namespace sweep runs: a pacing knob, not a behaviour. A
    # manual-clock soak that passes weeks raises it (benchmarks/soak_states.py): each wake costs the same CPU
    # whatever span it covers, and the writes of a span keep their rates (Poisson over the span).
    workload_interval: float = 0.2

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown setting {name!r}; known settings: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if isinstance(current, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on")
            else:
                value = type(current)(value)
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class StorageFailure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def storage_block(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The first provider set, in the operator's order (`GetStorageType`)."""
    for kind in STORAGE_KINDS:
        if spec.get(kind):
            return {kind: spec[kind]}
    return None


class Context:
    def __init__(self, store: Store, clusters: ClusterRegistry, endpoints: Endpoints, faults: Faults,
                 config: SimConfig, alloc: TsoAllocator, kernel: LogKernel):
        self.store = store
        self.clusters = clusters
        self.endpoints = endpoints
        self.faults = faults
        self.config = config
        self.alloc = alloc
        self.kernel = kernel  # the clusters' log backup tasks (TiKV/PD), outside the operator
        self._jobs: dict[str, asyncio.Task[Any]] = {}

    # -- objects ---------------------------------------------------------------------------------
    def rt(self, group: str, plural: str) -> ResourceType:
        rt = self.store.type_for(group, plural)
        if rt is None:
            raise KeyError(f"{plural}.{group} is not served")
        return rt

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.find(rt, namespace, name)

    def write_status(self, rt: ResourceType, namespace: str, name: str,
                     mutate: Callable[[dict[str, Any], dict[str, Any]], None]) -> dict[str, Any] | None:
        """Read the latest object, let `mutate(status, obj)` change its status, write it back.

        Synchronous from read to write, so on the single event loop nothing can slip in between.
        """
        obj = self.store.find(rt, namespace, name)
        if obj is None:
            return None
        status = obj.setdefault("status", {})
        mutate(status, obj)
        sub = "status" if rt.status_subresource else None
        try:
            return self.store.update(rt, namespace, name, obj, subresource=sub)
        except ApiError as err:
            if err.code == 404:
                return None
            if err.code == 422:
                # The operator ignores a failed status update (`_ = statusUpdater.Update(...)`): v2's CRD
                # refuses condition reasons with spaces, so some of its conditions are never written.
                log.warning("status update of %s/%s refused: %s", namespace, name, err)
                return None
            raise

    def set_condition(self, rt: ResourceType, namespace: str, name: str, ctype: str, reason: str = "",
                      message: str = "", **fields: Any) -> dict[str, Any] | None:
        """Record a condition (which becomes the phase) and any other status fields, in one write."""
        def mutate(status: dict[str, Any], obj: dict[str, Any]) -> None:
            update_condition(status, rt.group, ctype, reason, message, obj["metadata"].get("generation"))
            status.update(fields)
        return self.write_status(rt, namespace, name, mutate)

    def write_object(self, rt: ResourceType, namespace: str, name: str,
                     mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        obj = self.store.find(rt, namespace, name)
        if obj is None:
            return None
        mutate(obj)
        try:
            return self.store.update(rt, namespace, name, obj)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    # -- jobs ------------------------------------------------------------------------------------
    def job_running(self, key: str) -> bool:
        task = self._jobs.get(key)
        return task is not None and not task.done()

    def start_job(self, key: str, factory: Callable[[], Awaitable[Any]]) -> bool:
        """Run one job per key at a time, like the operator's one Job per CR and sub-command."""
        if self.job_running(key):
            return False
        task = asyncio.get_running_loop().create_task(self._guard(key, factory))
        self._jobs[key] = task
        return True

    async def _guard(self, key: str, factory: Callable[[], Awaitable[Any]]) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in the simulation must not kill the operator
            log.exception("simulated job %s crashed", key)

    async def stop_jobs(self) -> None:
        tasks = [t for t in self._jobs.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- storage and clusters ----------------------------------------------------------------------
    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = self.store.find(self.rt("", "secrets"), namespace, name)
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def open_storage(self, namespace: str, block: dict[str, Any] | None,
                     secret_from: dict[str, Any] | None = None) -> Location:
        """Open a CR's storage with the credentials of the Secret it names.

        `secret_from` is the block whose secretName counts: a pitr restore reaches the snapshot with
        the log storage's credentials, since the operator passes only the snapshot's URL to BR.
        """
        if block is None:
            raise StorageFailure("InvalidSpec", "missing StorageProvider config in spec")
        kind, conf = next(iter(block.items()))
        if kind == "gcs":
            raise StorageFailure("StorageNotSimulated", "gcs storage is not simulated by the sandbox")
        cred_conf = next(iter((secret_from or block).values()))
        secret_name = cred_conf.get("secretName")
        secret = None
        if secret_name:
            secret = self.secret_data(namespace, secret_name)
            if secret is None:
                label = {"s3": "s3", "azblob": "azblob", "local": "local"}[kind]
                raise StorageFailure(
                    "GetSecretFailed",
                    f'get {label} secret {namespace}/{secret_name} failed, err: secrets "{secret_name}" not found')
        try:
            return open_location(block, secret, self.endpoints, secret_ref=f"{namespace}/{secret_name or ''}")
        except StorageError as err:
            raise StorageFailure(err.reason, err.message) from err

    def cluster_for(self, group: str, namespace: str, br: dict[str, Any] | None) -> SimCluster | str:
        """The simulated cluster a CR's `br` section names, or the operator's error message."""
        br = br or {}
        name = br.get("cluster") or ""
        cluster_ns = br.get("clusterNamespace") or namespace
        kind = "clusters.core.pingcap.com" if group == "br.pingcap.com" else "tidbclusters.pingcap.com"
        cluster = self.clusters.get(cluster_ns, name)
        if cluster is None or cluster.resource != kind:
            # v1 reads through a lister (singular resource in its NotFound), v2 through controller-runtime.
            what = "clusters.core.pingcap.com" if group == "br.pingcap.com" else "tidbcluster.pingcap.com"
            return f'{what} "{name}" not found'
        return cluster

    async def io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Storage calls are blocking clients; keep them off the event loop."""
        return await clock.to_thread(fn, *args, **kwargs)
