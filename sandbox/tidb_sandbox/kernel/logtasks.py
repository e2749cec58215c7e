"""Log backup tasks as TiKV and PD hold them: one task per cluster, flushed to storage on a timer.

Three checkpoints, each later than the next, as on a real cluster:
- the data flushed to storage (data files and metas), every `checkpoint_interval`: TiKV's
  `log-backup.max-flush-interval` (tikv/tikv `src/config/mod.rs` `BackupStreamConfig::default`, 3 min in
  current releases), scaled down like the sandbox's other intervals, so the checkpoint is not "now" but up to
  one interval behind it;
- PD's global checkpoint (`/tidb/br-stream/checkpoint/<task>`), which the advancer moves to the flush just
  made; the operator's tracker copies it into `status.logCheckpointTs` when it polls;
- the global checkpoint files in storage (`v1/global_checkpoint/<store>.ts`), which TiKV uploads after the
  advancer has broadcast the checkpoint; they trail PD by `storage_checkpoint_lag` seconds. BR's restore
  checks this one (`br log metadata` log-max-ts), so a restore to a time PD has passed may still fail.

A pause holds the GC at the checkpoint for `log_pause_gc_ttl` seconds only (BR's pause safe point); a resume
after the GC has passed the checkpoint fails, and the task never backs up the span it was paused for.

The checkpoint is the minimum resolved ts of the regions, which a long-open transaction holds at its start
(fault `pin_checkpoint`); and while a task exists its checkpoint holds the cluster's GC safe point
(`service_safe_point`), as the advancer's `log-backup-coordinator` service safe point does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import clock
from ..data.tso import TsoAllocator
from ..faults import Faults
from ..operator.clusters import ClusterRegistry, SimCluster
from ..sql.errors import go_time
from ..storage import br_layout
from ..storage.base import Location

log = logging.getLogger(__name__)

ClusterKey = tuple[str, str]  # (namespace, name) of the TiDB cluster
MANUAL = "manual"


class TaskExists(Exception):
    """`br log start` while the cluster already has a log backup task (BR's ErrStreamLogTaskExist)."""


class CheckpointGCed(Exception):
    """`br log resume` after the GC passed the task's checkpoint (BR's ErrBackupGCSafepointExceeded)."""


@dataclass
class LogTask:
    cluster: ClusterKey
    name: str  # the task name: the Backup CR's name
    owner: str  # "namespace/name" of the Backup CR whose job started it
    location: Location
    start_ts: int
    checkpoint: int  # PD's global checkpoint; 0 until the first flush
    last_flush: int  # changes up to this TSO are in storage
    paused: bool = False
    pause_error: str | None = None  # paused by TiKV on an error (V2 pause info, severity ERROR)
    pending: list[tuple[float, int]] = field(default_factory=list)  # flushes not yet in the checkpoint files
    storage_checkpoint: int = 0
    pause_safe_point_until: float | None = None  # wall time (clock.time()) the pause safe point expires


@dataclass(frozen=True)
class KernelState:
    """What the operator's kernel-state sync reads from PD's etcd (`/tidb/br-stream/{info,pause,...}`)."""

    info_exists: bool
    paused: bool
    pause_reason: str  # "" when running, "manual", or the error TiKV paused it for
    checkpoint: int


class LogKernel:
    def __init__(self, clusters: ClusterRegistry, alloc: TsoAllocator, config: Any, faults: Faults,
                 gc_safe_point: Callable[[], int] = lambda: 0):
        self.clusters = clusters
        self.alloc = alloc
        self.config = config  # checkpoint_interval, storage_checkpoint_lag, stores, log_pause_gc_ttl
        self.faults = faults
        # The GC safe point TiDB's GC worker has set, not counting the pause safe points held here.
        self.gc_safe_point = gc_safe_point
        self._tasks: dict[ClusterKey, LogTask] = {}
        self._pins: dict[ClusterKey, int] = {}  # the start TSO of a long-open transaction, per cluster

    # -- what `br log ...` does ----------------------------------------------------------------------
    def start(self, cluster: SimCluster, name: str, owner: str, location: Location, start_ts: int) -> LogTask:
        key = (cluster.namespace, cluster.name)
        existing = self._tasks.get(key)
        if existing is not None:
            raise TaskExists(f"[BR:Stream:ErrStreamLogTaskExist]stream task already exists: task {existing.name} "
                             f"is running on cluster {key[0]}/{key[1]}; only one log backup task is allowed")
        task = LogTask(key, name, owner, location, start_ts, checkpoint=0, last_flush=start_ts)
        self._tasks[key] = task
        return task

    def adopt(self, cluster: SimCluster, name: str, owner: str, location: Location, start_ts: int,
              checkpoint: int) -> LogTask:
        """A task that has been running since before the sandbox started (seeded history)."""
        task = self.start(cluster, name, owner, location, start_ts)
        task.checkpoint = task.last_flush = task.storage_checkpoint = checkpoint
        return task

    def pause(self, cluster: ClusterKey, name: str) -> None:
        """`br log pause`: BR sets a service safe point at the checkpoint with a TTL (`--gc-ttl`, default 24 h:
        pingcap/tidb br/pkg/task/stream.go `RunStreamPause`, br/pkg/utils `DefaultStreamPauseSafePointTTL`);
        the operator passes no `--gc-ttl`, so the sandbox setting `log_pause_gc_ttl` stands for the default."""
        task = self._require(cluster, name)
        task.paused, task.pause_error = True, None
        task.pause_safe_point_until = clock.time() + self.config.log_pause_gc_ttl

    def resume(self, cluster: ClusterKey, name: str) -> None:
        """`br log resume`: refused when the GC has passed the checkpoint (pingcap/tidb br/pkg/task/stream.go
        `RunStreamResume` -> br/pkg/utils `CheckGCSafePoint`: `ts <= safePoint` fails, the error annotated
        "the global checkpoint ts: ... has been gc."). Once the pause safe point has expired nothing holds the GC
        at the checkpoint, and TiKV cannot scan the paused span again: the task stays paused for good."""
        task = self._require(cluster, name)
        if task.paused and task.pause_error is None:
            safe_point = self.effective_gc_safe_point(task)
            if task.checkpoint <= safe_point:
                raise CheckpointGCed(
                    f"the global checkpoint ts: {task.checkpoint}({go_time(task.checkpoint)}) has been gc. : "
                    f"GC safepoint {safe_point} exceed TS {task.checkpoint}: "
                    "[BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded")
        task.paused, task.pause_error, task.pause_safe_point_until = False, None, None

    def effective_gc_safe_point(self, task: LogTask) -> int:
        """The GC safe point as PD reports it to BR: held just below the checkpoint (BR sets the service safe
        point at `BackupTS-1`, `UpdateServiceSafePoint`) while the pause safe point lives."""
        safe_point = self.gc_safe_point()
        if task.pause_safe_point_until is not None and clock.time() < task.pause_safe_point_until:
            return min(safe_point, task.checkpoint - 1)
        return safe_point

    def stop(self, cluster: ClusterKey, name: str) -> None:
        """`br log stop`: the task and its etcd keys go; what was flushed stays in storage."""
        task = self._tasks.get(cluster)
        if task is not None and task.name == name:
            del self._tasks[cluster]

    def forget_cluster(self, cluster: ClusterKey) -> bool:
        """The cluster is gone (the sandbox's cleanup route): its task goes with PD's keys, nothing is flushed."""
        return self._tasks.pop(cluster, None) is not None

    def error_pause(self, cluster: ClusterKey, name: str, message: str) -> None:
        task = self._require(cluster, name)
        task.paused, task.pause_error = True, f"Paused by error(store 1): {message}"

    def _require(self, cluster: ClusterKey, name: str) -> LogTask:
        task = self.task(cluster, name)
        if task is None:
            raise LookupError(f"[BR:Stream:ErrStreamLogTaskNotFound]log backup task {name} not found "
                              f"on cluster {cluster[0]}/{cluster[1]}")
        return task

    # -- what PD's etcd answers ------------------------------------------------------------------------
    def task(self, cluster: ClusterKey, name: str) -> LogTask | None:
        task = self._tasks.get(cluster)
        return task if task is not None and task.name == name else None

    def tasks(self) -> Iterable[LogTask]:
        return list(self._tasks.values())

    def state(self, cluster: ClusterKey, name: str) -> KernelState:
        task = self.task(cluster, name)
        if task is None:
            return KernelState(False, False, "", 0)
        reason = "" if not task.paused else (task.pause_error or MANUAL)
        return KernelState(True, task.paused, reason, task.checkpoint)

    def service_safe_point(self, cluster: ClusterKey) -> int | None:
        """The GC safe point the cluster's log backup holds, None without a task.

        The advancer keeps PD's service safe point `log-backup-coordinator` one below the global checkpoint
        (pingcap/tidb `br/pkg/streamhelper/advancer_env.go` `BlockGCUntil`, TTL 24 h); before the first
        checkpoint `br log start` has set it at the start TSO. A task paused by `br log pause` holds the GC only
        through the pause's own safe point, for its TTL (`RunStreamPause`): the advancer does not renew its hold
        for a paused task, so once the pause safe point lapses nothing holds the GC at the checkpoint."""
        task = self._tasks.get(cluster)
        if task is None:
            return None
        if (task.paused and task.pause_error is None and task.pause_safe_point_until is not None
                and clock.time() >= task.pause_safe_point_until):
            return None
        return max((task.checkpoint or task.start_ts) - 1, 0)

    # -- TiKV flushing -----------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await clock.sleep(max(self.config.checkpoint_interval, 0.05))
            for task in self.tasks():
                try:
                    await self._tick(task)
                except Exception:  # storage trouble stalls a task's checkpoint, as in TiKV
                    log.debug("log task %s: flush failed", task.name, exc_info=True)

    async def _tick(self, task: LogTask) -> None:
        if task.paused and self.faults.take_task_resume(task.owner):
            self.resume(task.cluster, task.name)
        message = None if task.paused else self.faults.take_log_error_pause(task.owner)
        if message:
            self.error_pause(task.cluster, task.name, message)
        if not task.paused and not self.faults.freeze_checkpoint:
            await self._flush(task)
        await self._upload_checkpoint(task)

    async def _flush(self, task: LogTask) -> None:
        cluster = self.clusters.get(*task.cluster)
        if cluster is None:
            return
        flush_ts = self.alloc.next()
        changes = cluster.data.changes_between(task.last_flush, flush_ts)
        # Nothing written since the last flush: TiKV uploads no data file and no meta (tikv/tikv
        # components/backup-stream/src/router.rs: `merge_log` has no file to merge, `flush_meta` writes a meta
        # only `if !metadata_info.file_groups.is_empty()`), yet the checkpoint moves on: BR's advancer
        # (pingcap/tidb br/pkg/streamhelper/advancer.go `tick` -> `optionalTick` / `importantTick`) uploads the
        # minimum of the regions' checkpoints, which TiKV moves with the resolved ts, with or without writes.
        # So an idle task costs no storage request here while PD's checkpoint still rises; its checkpoint
        # objects follow below, as TiKV's `update_global_checkpoint` uploads `v1/global_checkpoint/<store>.ts`
        # whenever the checkpoint has risen, and only then.
        if changes:
            await clock.to_thread(br_layout.flush_log, task.location, changes, flush_ts=flush_ts,
                                    stores=self.config.stores, write_checkpoint=False)
        if self.task(task.cluster, task.name) is not task or task.paused:
            return  # stopped or paused while the flush was in flight: the advancer does not move
        task.last_flush = flush_ts
        task.checkpoint = max(task.checkpoint, min(flush_ts, self._pin(task)))
        task.pending.append((clock.monotonic(), task.checkpoint))

    def _pin(self, task: LogTask) -> int:
        """Where a long-open transaction holds the task's checkpoint (no limit without one).

        TiKV's checkpoint is the regions' resolved ts, which cannot pass the start_ts of a transaction whose
        locks are still there (tikv/tikv `components/resolved_ts` `Resolver`: the minimum of the locks'
        start_ts; inferred from its design, not re-read); the data is flushed all the same. The fault
        `pin_checkpoint` names the clusters ("namespace/name", comma-separated) with such a transaction: it
        started at the checkpoint the task had when the fault was first seen, and ends when it is cleared."""
        named = {c.strip() for c in (self.faults.pin_checkpoint or "").split(",") if c.strip()}
        if f"{task.cluster[0]}/{task.cluster[1]}" not in named:
            self._pins.pop(task.cluster, None)
            return 1 << 64
        return self._pins.setdefault(task.cluster, task.checkpoint or task.start_ts)

    async def _upload_checkpoint(self, task: LogTask) -> None:
        # TiKV uploads the checkpoint objects in `update_global_checkpoint` (tikv/tikv
        # components/backup-stream/src/router.rs), a storage write of its own after the advancer has moved PD's
        # checkpoint: when it fails, the error is logged and retried on the next tick, and PD's checkpoint (the
        # CR's) goes on rising while storage's stays (inferred from its design, not re-read). Fault
        # `stall_storage_checkpoint` makes that write fail; what is pending is uploaded once it is cleared.
        if self.faults.storage_checkpoint_stalled(task.cluster):
            return
        horizon = clock.monotonic() - self.config.storage_checkpoint_lag
        due = [ts for at, ts in task.pending if at <= horizon]
        if not due:
            return
        task.pending = [(at, ts) for at, ts in task.pending if at > horizon]
        newest = max(due)
        if newest <= task.storage_checkpoint:
            return  # not risen since the last upload: TiKV writes no checkpoint object then (router.rs)
        await clock.to_thread(br_layout.write_global_checkpoint, task.location, newest, stores=self.config.stores)
        task.storage_checkpoint = max(task.storage_checkpoint, newest)
