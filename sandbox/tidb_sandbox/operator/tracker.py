"""The log backup tracker: checkpoint polling and, for v1.6.4+, the kernel-state sync.

Follows `backupTracker` (v1 `pkg/backup/backup/backup_tracker.go`, release-1.6: `refreshLogBackupProgress`,
`doRefreshLogBackupState`, `GetLogBackupState`, `SyncLogBackupState`; v2
`pkg/controllers/br/manager/backup/backup_tracker.go`, main: checkpoint only):
- one poll loop per log Backup, started when its log-start Job is scheduled and, at operator start, for
  every log Backup (`initTrackLogBackupsProgress`); every `tracker_interval` (60 s upstream), and only while
  the phase is `Running`, it copies PD's checkpoint into `status.logCheckpointTs` (and `timeSynced`, v1);
  it ends when the CR is deleted, Complete, or (v1) Stopped;
- the kernel state is cached for a tracker interval; a reconcile that needs no Job reads it: a task gone
  from PD is `Failed`/`LogBackupTaskNotFound`, an error pause is `RetryFailed`/`LogBackupErrorPaused` on the
  current sub-command (so a running task's `log-start` entry becomes `RetryFailed` too, and nothing ever
  resets it), and a manual pause or resume made behind the operator's back is corrected to `Complete` of
  log-pause / log-resume (`LogBackupKernelSync`) once it is seen on two reconciles in a row.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .. import clock
from ..k8s.crd import ResourceType
from ..kernel import KernelState
from .common import V2_GROUP, now
from .context import Context
from .logstatus import PAUSE, RESUME, START, STOP, write_log_status


@dataclass
class _Tracked:
    task: asyncio.Task[None] | None = None
    state: KernelState | None = None
    refreshed: float = 0.0
    inconsistent: bool = False
    last_command: str = ""


def cluster_key(obj: dict[str, Any]) -> tuple[str, str]:
    br = (obj.get("spec") or {}).get("br") or {}
    return br.get("clusterNamespace") or obj["metadata"]["namespace"], br.get("cluster") or ""


def _consistent(command: str, state: KernelState) -> bool:
    """`isCommandConsistentWithKernelState`."""
    if state.paused:
        return command == PAUSE
    return command in (START, RESUME)


class LogTracker:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._tracked: dict[str, _Tracked] = {}

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> str:
        return f"{rt.group}/{namespace}/{name}"

    # -- the poll loop ---------------------------------------------------------------------------------
    def start(self, rt: ResourceType, namespace: str, name: str) -> None:
        tracked = self._tracked.setdefault(self.key(rt, namespace, name), _Tracked())
        if tracked.task is None or tracked.task.done():
            tracked.task = asyncio.get_running_loop().create_task(self._poll(rt, namespace, name))

    def start_all(self) -> None:
        """At operator start: every log Backup, whatever its phase (`initTrackLogBackupsProgress`)."""
        for group in ("pingcap.com", V2_GROUP):
            rt = self.ctx.store.type_for(group, "backups")
            if rt is None:
                continue
            for obj in self.ctx.store.iter_all(rt):
                if (obj.get("spec") or {}).get("backupMode") == "log":
                    self.start(rt, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def tracked_count(self) -> int:
        """Log Backups with a live poll loop (what `GET /sandbox/v1/info` reports as trackedBackups)."""
        return sum(1 for t in self._tracked.values() if t.task is not None and not t.task.done())

    async def stop(self) -> None:
        tasks = [t.task for t in self._tracked.values() if t.task is not None and not t.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tracked.clear()  # in memory only: an operator restart forgets it all

    async def _poll(self, rt: ResourceType, namespace: str, name: str) -> None:
        key = self.key(rt, namespace, name)
        while True:
            await clock.sleep(self.ctx.config.tracker_interval)
            obj = self.ctx.get(rt, namespace, name)
            if obj is None:
                self._tracked.pop(key, None)
                return
            phase = (obj.get("status") or {}).get("phase")
            ending = ("Complete",) if rt.group == V2_GROUP else ("Complete", "Stopped")
            if obj["metadata"].get("deletionTimestamp") or phase in ending:
                self._tracked.pop(key, None)
                return
            if phase != "Running":
                continue
            state = self._refresh(key, obj)
            if state.checkpoint > 0:
                fields: dict[str, Any] = {"logCheckpointTs": str(state.checkpoint)}
                if rt.group != V2_GROUP:
                    fields["timeSynced"] = now()
                self._write(rt, namespace, name, None, None, fields=fields)

    def _refresh(self, key: str, obj: dict[str, Any]) -> KernelState:
        state = self.ctx.kernel.state(cluster_key(obj), obj["metadata"]["name"])
        tracked = self._tracked.setdefault(key, _Tracked())
        tracked.state, tracked.refreshed = state, clock.monotonic()
        if tracked.inconsistent and tracked.last_command and _consistent(tracked.last_command, state):
            tracked.inconsistent = False
        return state

    def _cached(self, key: str, obj: dict[str, Any], force: bool) -> KernelState:
        tracked = self._tracked.get(key)
        fresh = tracked is not None and tracked.state is not None and (
            clock.monotonic() - tracked.refreshed < self.ctx.config.tracker_interval)
        if fresh and not force:
            return tracked.state  # type: ignore[union-attr]
        return self._refresh(key, obj)

    def _write(self, rt: ResourceType, namespace: str, name: str, command: str | None, ctype: str | None,
               reason: str = "", message: str = "", fields: dict[str, Any] | None = None) -> None:
        def mutate(status: dict[str, Any], obj: dict[str, Any]) -> None:
            write_log_status(status, rt.group, obj["metadata"].get("generation"),
                             deleting=bool(obj["metadata"].get("deletionTimestamp")), command=command,
                             ctype=ctype, reason=reason, message=message, fields=fields)
        self.ctx.write_status(rt, namespace, name, mutate)

    # -- kernel-state sync (v1.6.4+) ----------------------------------------------------------------------
    def sync_kernel_state(self, rt: ResourceType, obj: dict[str, Any], command: str) -> None:
        """`SyncLogBackupState`: called by a reconcile whose current sub-command needs no Job."""
        if rt.group == V2_GROUP or not self.ctx.config.kernel_sync:
            return
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = self.key(rt, namespace, name)
        if key not in self._tracked:
            return  # "not found in tracker": the sync errors out and nothing is written
        tracked = self._tracked[key]
        state = self._cached(key, obj, force=tracked.inconsistent)
        if not state.info_exists:
            if command != STOP:
                self._write(rt, namespace, name, command, "Failed", "LogBackupTaskNotFound",
                            "Log backup task not found in TiKV, the task may have been deleted or cluster state "
                            "is inconsistent")
            return
        if state.paused and state.pause_reason not in ("", "manual"):
            self._write(rt, namespace, name, command, "RetryFailed", "LogBackupErrorPaused",
                        f"Log backup paused due to error: {state.pause_reason}", fields={"timeSynced": now()})
            return
        if tracked.last_command != command:
            tracked.inconsistent, tracked.last_command = False, command
        if _consistent(command, state):
            tracked.inconsistent = False
        elif not tracked.inconsistent:
            tracked.inconsistent = True  # maybe a cache delay: look again on the next reconcile
        else:
            actual = PAUSE if state.paused else RESUME
            self._write(rt, namespace, name, actual, "Complete", "LogBackupKernelSync",
                        f"Synced with kernel state: {'paused' if state.paused else 'running'}",
                        fields={"timeSynced": now()})
            tracked.inconsistent = False
