"""The simulated TiDB Operator: an informer on the store, a reconcile queue, and the controllers.

Jobs run in their own pods, so they are not the operator's: `restart_operator=<seconds>` stops the reconcile
loop and the trackers, and forgets everything held in memory, while Jobs and the clusters' log tasks go on;
after the pause it starts again from what the API server holds, as TiDB Operator does after a pod restart
(`initTrackLogBackupsProgress` in `pkg/backup/backup/backup_tracker.go`, the informers' initial list).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import clock
from ..k8s.crd import ResourceType
from ..k8s.store import Event
from .backupschedule import BackupScheduleController
from .cleaner import BackupCleaner
from .common import V2_GROUP
from .compact import run_compact
from .context import Context
from .export import admit_logical, is_logical, run_export, validate_logical
from .lightning import run_import
from .logbackup import LogBackupController
from .restore import admit_restore, run_restore, validate_restore
from .snapshot import admit_snapshot, run_snapshot_backup, validate_backup
from .tidbcluster import sync_cluster_status

log = logging.getLogger(__name__)

OPERATOR_GROUPS = ("pingcap.com", V2_GROUP)
WATCHED = ("backups", "restores", "compactbackups", "backupschedules")


class Operator:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.logs = LogBackupController(ctx)
        self.cleaner = BackupCleaner(ctx, self.logs)
        self.schedules = BackupScheduleController(ctx)
        self._pending: dict[tuple[str, str, str, str], None] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.down = False  # restarting: no reconcile, no tracker

    def start(self) -> None:
        self.ctx.store.add_listener(self._on_event)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._worker()))
        self._tasks.append(loop.create_task(self._resync()))
        self._come_up()

    def _come_up(self) -> None:
        self.down = False
        self.logs.tracker.start_all()
        self.enqueue_all()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.logs.stop()
        await self.ctx.stop_jobs()

    async def _restart(self, seconds: float) -> None:
        log.info("operator restarting: down for %.1fs", seconds)
        self.down = True
        self._pending.clear()
        await self.logs.tracker.stop()
        await clock.sleep(seconds)
        self._come_up()

    # -- the informer ------------------------------------------------------------------------------
    def _on_event(self, rt: ResourceType, event: Event) -> None:
        if self.down:
            return
        if rt.group in OPERATOR_GROUPS and rt.plural in WATCHED and event.type != "DELETED":
            meta = event.obj["metadata"]
            self._pending[(rt.group, rt.plural, meta["namespace"], meta["name"])] = None
            self._wake.set()

    def enqueue_all(self) -> None:
        for group in OPERATOR_GROUPS:
            for plural in WATCHED:
                rt = self.ctx.store.type_for(group, plural)
                if rt is None:
                    continue
                # The periodic resync needs only names: no copies of every object every two seconds.
                for namespace, name in self.ctx.store.keys(rt):
                    self._pending[(group, plural, namespace, name)] = None
        self._wake.set()

    async def _resync(self) -> None:
        while True:
            await clock.sleep(max(self.ctx.config.resync_interval, 0.1))
            seconds = self.ctx.faults.take_operator_restart()
            if seconds:
                await self._restart(seconds)
            if not self.down:
                self.enqueue_all()

    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.down:
                continue
            sync_cluster_status(self.ctx)
            while self._pending and not self.down:
                key = next(iter(self._pending))
                del self._pending[key]
                try:
                    self.reconcile(*key)
                except Exception:
                    log.exception("reconcile of %s failed", key)
                await asyncio.sleep(0)

    # -- reconcile ---------------------------------------------------------------------------------
    def reconcile(self, group: str, plural: str, namespace: str, name: str) -> None:
        rt = self.ctx.rt(group, plural)
        obj = self.ctx.get(rt, namespace, name)
        if obj is None:
            return
        if plural == "backups":
            self._reconcile_backup(rt, obj)
        elif plural == "restores":
            self._reconcile_restore(rt, obj)
        elif plural == "compactbackups":
            self._reconcile_compact(rt, obj)
        elif plural == "backupschedules":
            self.schedules.reconcile(rt, obj)

    def _invalid(self, rt: ResourceType, obj: dict[str, Any], message: str) -> None:
        meta = obj["metadata"]
        self.ctx.set_condition(rt, meta["namespace"], meta["name"], "Invalid", "InvalidSpec", message)

    def _reconcile_backup(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        namespace, name = meta["namespace"], meta["name"]
        snapshot_key = f"backup:{rt.group}/{namespace}/{name}"
        if meta.get("deletionTimestamp"):
            self.cleaner.reconcile_deleting(rt, obj, self.ctx.job_running(snapshot_key))
            return
        self.cleaner.ensure_finalizer(rt, obj)
        phase = status.get("phase")
        if phase == "Invalid":
            return
        if is_logical(spec):
            self._reconcile_logical(rt, obj, "backups", snapshot_key)
            return
        if phase is None or (phase == "RetryFailed" and spec.get("backupMode") != "log"):
            message = validate_backup(rt, obj)
            if message:
                self._invalid(rt, obj, message)
                return
        if spec.get("backupMode") == "log":
            self.logs.reconcile(rt, obj)
            return
        if spec.get("backupMode") == "volume-snapshot":
            if phase is None:
                self._invalid(rt, obj, "volume-snapshot backups are not simulated by the sandbox")
            return
        if phase in (None, "RetryFailed") and not self.ctx.job_running(snapshot_key) and admit_snapshot(
                self.ctx, rt, obj):
            self.ctx.start_job(snapshot_key, lambda: run_snapshot_backup(self.ctx, rt, namespace, name))

    def _reconcile_restore(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta, status = obj["metadata"], obj.get("status") or {}
        if meta.get("deletionTimestamp"):
            return
        phase = status.get("phase")
        namespace, name = meta["namespace"], meta["name"]
        key = f"restore:{rt.group}/{namespace}/{name}"
        if phase not in (None, "RetryFailed") or self.ctx.job_running(key):
            return
        if is_logical(obj.get("spec") or {}):
            self._reconcile_logical(rt, obj, "restores", key)
            return
        message = validate_restore(obj)
        if message:
            self._invalid(rt, obj, message)
            return
        if admit_restore(self.ctx, rt, obj):
            self.ctx.start_job(key, lambda: run_restore(self.ctx, rt, namespace, name))

    def _reconcile_logical(self, rt: ResourceType, obj: dict[str, Any], plural: str, key: str) -> None:
        """Dumpling (`from:`) and Lightning (`to:`) CRs: validated, admitted, then their Job (export.py,
        lightning.py)."""
        phase = (obj.get("status") or {}).get("phase")
        if phase not in (None, "RetryFailed") or self.ctx.job_running(key):
            return
        access = "from" if plural == "backups" else "to"
        message = validate_logical(rt, obj, access)
        if message:
            self._invalid(rt, obj, message)
            return
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if admit_logical(self.ctx, rt, obj, access):
            job = run_export if plural == "backups" else run_import
            self.ctx.start_job(key, lambda: job(self.ctx, rt, namespace, name))

    def _reconcile_compact(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.group == V2_GROUP and not self.ctx.config.v2_compact_controller:
            return  # TiDB Operator v2 (main, v2.0.1) ships the CRD without a controller: nothing happens
        meta, status = obj["metadata"], obj.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("state"):
            return
        namespace, name = meta["namespace"], meta["name"]
        self.ctx.start_job(f"compact:{rt.group}/{namespace}/{name}",
                           lambda: run_compact(self.ctx, rt, namespace, name))
