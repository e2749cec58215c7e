"""Deleting a Backup: the protection finalizer, stopping a log task, and `cleanPolicy` (reference section 7)."""

from __future__ import annotations

from functools import partial
from typing import Any

from ..k8s.crd import ResourceType
from .common import finalizer_for, now, sleep
from .conditions import update_condition
from .context import Context, StorageFailure, storage_block
from .logbackup import LogBackupController
from .logstatus import STOP
from .tracker import cluster_key


def is_clean_candidate(obj: dict[str, Any]) -> bool:
    spec = obj.get("spec") or {}
    return spec.get("backupMode") == "log" or spec.get("cleanPolicy") in ("Delete", "OnFailure")


def wants_data_clean(obj: dict[str, Any]) -> bool:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    policy = spec.get("cleanPolicy") or "Retain"
    return policy == "Delete" or (policy == "OnFailure" and status.get("phase") == "Failed")


class BackupCleaner:
    def __init__(self, ctx: Context, logs: LogBackupController):
        self.ctx = ctx
        self.logs = logs

    def ensure_finalizer(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        finalizer = finalizer_for(rt.group)
        if not is_clean_candidate(obj) or finalizer in (obj["metadata"].get("finalizers") or []):
            return
        self.ctx.write_object(rt, obj["metadata"]["namespace"], obj["metadata"]["name"],
                              lambda o: o["metadata"].setdefault("finalizers", []).append(finalizer))

    def reconcile_deleting(self, rt: ResourceType, obj: dict[str, Any], snapshot_job_running: bool) -> None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if finalizer_for(rt.group) not in (obj["metadata"].get("finalizers") or []):
            return
        if snapshot_job_running:
            return  # the operator waits for the backup job before cleaning
        self.ctx.start_job(f"clean:{rt.group}/{namespace}/{name}", lambda: self._clean(rt, namespace, name))

    async def _clean(self, rt: ResourceType, namespace: str, name: str) -> None:
        obj = self.ctx.get(rt, namespace, name)
        if obj is None:
            return
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if spec.get("backupMode") == "log" and status.get("phase") != "Stopped":
            await self._stop_log(rt, namespace, name, obj)
        obj = self.ctx.get(rt, namespace, name)
        if obj is None:
            return
        if wants_data_clean(obj):
            if not self.ctx.job_running(f"log:{rt.group}/{namespace}/{name}"):
                ok = await self._clean_data(rt, namespace, name, obj)
                if not ok:
                    return  # CleanFailed: the CR stays, with its finalizer, as on a real cluster
        self._drop_finalizer(rt, namespace, name)

    async def _stop_log(self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any]) -> None:
        """`StopLogBackup` (`pkg/backup/backup/backup_cleaner.go`): a `stop-<name>` Job runs `br log stop`.

        While the CR is being deleted its conditions go to the whole CR as they are (the status updater's
        deletion branch), so the phase ends `Complete`, not `Stopped`.
        """
        status = obj.get("status") or {}
        if not status.get("commitTs"):
            self.logs.write(rt, namespace, name, STOP, "Complete")
            return
        self.logs.write(rt, namespace, name, STOP, "Scheduled")
        await sleep(self.ctx.config.step_delay)
        self.logs.write(rt, namespace, name, STOP, "Prepare")
        self.logs.write(rt, namespace, name, STOP, "Running")
        cns, cname = cluster_key(obj)
        self.ctx.kernel.stop((cns, cname), name)
        await sleep(self.ctx.config.step_delay)
        self.logs.write(rt, namespace, name, STOP, "Complete", timeCompleted=now())

    async def _clean_data(self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any]) -> bool:
        condition = partial(self.ctx.set_condition, rt, namespace, name)

        if not (obj.get("status") or {}).get("backupPath"):
            condition("Clean")
            return True
        # CleanData writes Clean=False when it creates the clean-<name> Job; the Job writes Clean=True.
        self.ctx.write_status(rt, namespace, name, lambda st, o: update_condition(
            st, rt.group, "Clean", status_value="False", generation=o["metadata"].get("generation")))
        await sleep(self.ctx.config.step_delay)
        try:
            location = self.ctx.open_storage(namespace, storage_block(obj.get("spec") or {}))
            objects = await self.ctx.io(location.list, "")
            await self.ctx.io(location.delete, [o.rel for o in objects])
        except StorageFailure as err:
            condition("CleanFailed", "CleanBackupDataFailed", err.message)
            return False
        except Exception as err:
            condition("CleanFailed", "CleanBackupDataFailed", str(getattr(err, "message", err)))
            return False
        await sleep(self.ctx.config.step_delay)
        condition("Clean")
        return True

    def _drop_finalizer(self, rt: ResourceType, namespace: str, name: str) -> None:
        finalizer = finalizer_for(rt.group)

        def mutate(o: dict[str, Any]) -> None:
            o["metadata"]["finalizers"] = [f for f in o["metadata"].get("finalizers") or [] if f != finalizer]
        self.ctx.write_object(rt, namespace, name, mutate)
