"""The simulated TiDB Operator: an informer on the store, a reconcile queue, and the controllers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..k8s.crd import ResourceType
from ..k8s.store import Event
from .cleaner import BackupCleaner
from .common import V2_GROUP
from .compact import run_compact
from .context import Context
from .logbackup import LogBackupController
from .restore import run_restore, validate_restore
from .snapshot import run_snapshot_backup, validate_backup

log = logging.getLogger(__name__)

OPERATOR_GROUPS = ("pingcap.com", V2_GROUP)
WATCHED = ("backups", "restores", "compactbackups")
RESYNC_SECONDS = 2.0


class Operator:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.logs = LogBackupController(ctx)
        self.cleaner = BackupCleaner(ctx, self.logs)
        self._pending: dict[tuple[str, str, str, str], None] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        self.ctx.store.add_listener(self._on_event)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._worker()))
        self._tasks.append(loop.create_task(self._resync()))
        self.enqueue_all()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.logs.stop()
        await self.ctx.stop_jobs()

    # -- the informer ------------------------------------------------------------------------------
    def _on_event(self, rt: ResourceType, event: Event) -> None:
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
            await asyncio.sleep(RESYNC_SECONDS)
            self.enqueue_all()

    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
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
        if phase in (None, "RetryFailed"):
            self.ctx.start_job(snapshot_key, lambda: run_snapshot_backup(self.ctx, rt, namespace, name))

    def _reconcile_restore(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta, status = obj["metadata"], obj.get("status") or {}
        if meta.get("deletionTimestamp"):
            return
        phase = status.get("phase")
        if phase not in (None, "RetryFailed"):
            return
        message = validate_restore(obj)
        if message:
            self._invalid(rt, obj, message)
            return
        namespace, name = meta["namespace"], meta["name"]
        self.ctx.start_job(f"restore:{rt.group}/{namespace}/{name}",
                           lambda: run_restore(self.ctx, rt, namespace, name))

    def _reconcile_compact(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.group == V2_GROUP and not self.ctx.config.v2_compact_controller:
            return  # TiDB Operator v2.0.1 ships the CRD without a controller
        meta, status = obj["metadata"], obj.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("state"):
            return
        namespace, name = meta["namespace"], meta["name"]
        self.ctx.start_job(f"compact:{rt.group}/{namespace}/{name}",
                           lambda: run_compact(self.ctx, rt, namespace, name))
