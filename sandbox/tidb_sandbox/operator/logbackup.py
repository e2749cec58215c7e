"""Log backups: which sub-command is current, when a Job runs for it, and what the Job does.

Follows v1 `pkg/apis/pingcap/v1alpha1/backup.go` (`ParseLogBackupSubcommand`, `IsLogSubcommandAlreadySync`,
`IsLogBackupAlreadyTruncate`), `pkg/backup/backup/backup_manager.go` (`syncBackupJob`, `skipLogBackupSync`,
`waitPreTaskDone`, `makeBackupJob`), `pkg/controller/backup/backup_controller.go` (`updateBackup`: a log
Backup whose current sub-command is Scheduled, Prepare or Running is not enqueued, and log Jobs have no
failure detection, so a Job that dies leaves it there for good) and the Job side
`cmd/backup-manager/app/backup/manager.go` (`performLogBackup`, `startLogBackup`, ...); v2 has the same
files under `pkg/controllers/br/manager/backup/` and `cmd/tidb-backup-manager/` on main.
"""

from __future__ import annotations

from typing import Any

from .. import clock
from ..k8s.crd import ResourceType
from ..kernel import CheckpointGCed, TaskExists
from ..storage import br_layout
from .common import V2_GROUP, backup_path, now, sleep
from .context import Context, StorageFailure, storage_block
from .logstatus import PAUSE, RESUME, START, STOP, TRUNCATE, UNKNOWN, sub_status, write_log_status
from .secrets import cluster_problem, storage_secret_problem
from .tidbcluster import cluster_ready
from .tracker import LogTracker
from .tsparse import TsParseError, parse_ts_br, parse_ts_operator

IN_FLIGHT = ("Scheduled", "Prepare", "Running")
DONE = ("Complete", "Failed", "Invalid")
FAILURE_REASONS = {START: "StartLogBackupFailed", STOP: "StopLogBackupFailed", PAUSE: "PauseLogBackupFailed",
                   RESUME: "ResumeLogBackuFailed", TRUNCATE: "TruncateLogBackuFailed"}  # sic, upstream's words


def current_subcommand(rt: ResourceType, obj: dict[str, Any]) -> str:
    """`ParseLogBackupSubcommand` of the operator, for the CR's API group."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = status.get("phase")
    requested = spec.get("logSubcommand") or ""
    if requested == "":
        if spec.get("logStop") or phase == "Stopped":
            command = STOP
        elif phase == "Paused" and rt.group != V2_GROUP:
            command = RESUME
        else:
            command = START
    elif requested == START:
        command = RESUME if phase == "Paused" else START
    elif requested in (STOP, PAUSE):
        command = requested
    else:
        return UNKNOWN  # v2's CRD allows log-resume and log-truncate, its controller does not
    if in_sync(command, obj) and truncate_requested(obj):
        return TRUNCATE
    return command


def in_sync(command: str, obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    phase = status.get("phase")
    if command == START:
        return bool(status.get("commitTs"))
    if command == STOP:
        return phase == "Stopped"
    if command == PAUSE:
        return phase == "Paused"
    if command == RESUME:
        return phase == "Running"
    return False


def truncate_requested(obj: dict[str, Any]) -> bool:
    until = (obj.get("spec") or {}).get("logTruncateUntil") or ""
    return until != "" and until != (obj.get("status") or {}).get("logSuccessTruncateUntil", "")


def _current_phase(obj: dict[str, Any], command: str) -> str | None:
    """`IsLogBackupSubCommandOntheCondition`: a truncate counts only for the value now in the spec."""
    sub = sub_status(obj.get("status") or {}, command)
    if command == TRUNCATE and sub.get("logTruncatingUntil") != (obj.get("spec") or {}).get("logTruncateUntil"):
        return None
    return sub.get("phase")


def _already_truncated(obj: dict[str, Any]) -> bool:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    try:
        until = parse_ts_operator(spec.get("logTruncateUntil"))
    except TsParseError:
        return False
    done = max(_safe_ts(status.get("commitTs")), _safe_ts(status.get("logSuccessTruncateUntil")))
    return until <= done


class _JobFailure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class LogBackupController:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.tracker = LogTracker(ctx)

    def write(self, rt: ResourceType, namespace: str, name: str, command: str | None, ctype: str | None,
              reason: str = "", message: str = "", **fields: Any) -> None:
        def mutate(status: dict[str, Any], obj: dict[str, Any]) -> None:
            write_log_status(status, rt.group, obj["metadata"].get("generation"),
                             deleting=bool(obj["metadata"].get("deletionTimestamp")), command=command,
                             ctype=ctype, reason=reason, message=message, fields=fields)
        self.ctx.write_status(rt, namespace, name, mutate)

    # -- reconcile (syncBackupJob) ---------------------------------------------------------------------
    def reconcile(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = f"log:{rt.group}/{namespace}/{name}"
        if self.ctx.job_running(key):
            return  # one Job per CR at a time (waitOldBackupJobDone)
        command = current_subcommand(rt, obj)
        phase = _current_phase(obj, command)
        if phase in IN_FLIGHT:
            return  # updateBackup does not enqueue it; a Job that died leaves it here
        if command == UNKNOWN:
            message = f"log backup {namespace}/{name} subcommand `{(obj.get('spec') or {}).get('logSubcommand')}` " \
                      "is not supported"
            self.write(rt, namespace, name, UNKNOWN, "RetryFailed", message, message)
            return
        cluster = cluster_problem(self.ctx, rt, obj)
        if isinstance(cluster, tuple):
            self.write(rt, namespace, name, command, "RetryFailed", *cluster)
            return
        if not cluster_ready(self.ctx, rt.group, cluster):
            return  # requeued silently while the TidbCluster is not Ready
        if command != TRUNCATE and in_sync(command, obj):
            self.tracker.sync_kernel_state(rt, obj, command)
            return
        if command == TRUNCATE and _already_truncated(obj):
            until = (obj.get("spec") or {}).get("logTruncateUntil")
            # No Job: marked done; v1 leaves logSuccessTruncateUntil alone, v2 fills it only when empty.
            fields: dict[str, Any] = {"timeStarted": now(), "timeCompleted": now(), "logTruncatingUntil": until}
            if rt.group == V2_GROUP and not (obj.get("status") or {}).get("logSuccessTruncateUntil"):
                fields["logSuccessTruncateUntil"] = until
            self.write(rt, namespace, name, TRUNCATE, "Complete", **fields)
            return
        if phase in DONE:
            return  # a failed sub-command is not retried for the same spec
        if command in (STOP, PAUSE, TRUNCATE) and not (obj.get("status") or {}).get("commitTs"):
            return  # shouldLogBackupCommandRequeue: wait for the start
        spec = obj.get("spec") or {}
        problem = storage_secret_problem(self.ctx, namespace, storage_block(spec))
        if problem:
            self.write(rt, namespace, name, command, "RetryFailed", problem[0], problem[1])
            return
        if command == START:
            self.tracker.start(rt, namespace, name)
        scheduled: dict[str, Any] = {}
        if command == TRUNCATE:
            scheduled["logTruncatingUntil"] = spec.get("logTruncateUntil")
        self.write(rt, namespace, name, command, "Scheduled", **scheduled)
        self.ctx.start_job(key, lambda: self._job(rt, namespace, name, command))

    # -- the Job (backup-manager in the pod) ------------------------------------------------------------
    async def _job(self, rt: ResourceType, namespace: str, name: str, command: str) -> None:
        await sleep(self.ctx.config.step_delay)
        obj = self.ctx.get(rt, namespace, name)
        if obj is None:
            return
        spec = obj.get("spec") or {}
        self.write(rt, namespace, name, command, "Prepare")
        await sleep(self.ctx.config.step_delay)
        try:
            location = self.ctx.open_storage(namespace, storage_block(spec))
        except StorageFailure as err:
            self.write(rt, namespace, name, command, "Failed", err.reason, err.message)
            return
        running = {"backupPath": backup_path(storage_block(spec))} if command == START else {}
        self.write(rt, namespace, name, command, "Running", **running)
        if self.ctx.faults.take_log_job_crash(f"{namespace}/{name}"):
            return  # the pod is OOM-killed: nothing more is written, and nothing notices
        started = now()
        try:
            done = await self._run(rt, obj, command, location)
        except _JobFailure as err:
            self.write(rt, namespace, name, command, "Failed", err.reason, err.message)
            return
        self.write(rt, namespace, name, command, "Complete", timeStarted=started, timeCompleted=now(), **done)

    async def _run(self, rt: ResourceType, obj: dict[str, Any], command: str, location: Any) -> dict[str, Any]:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        cluster = self.ctx.cluster_for(rt.group, namespace, spec.get("br"))
        if isinstance(cluster, str):
            raise _JobFailure(FAILURE_REASONS[command], cluster)
        task_cluster = (cluster.namespace, cluster.name)
        try:
            if command == START:
                return await self._start(cluster, obj, location)
            if command == TRUNCATE:
                return await self._truncate(spec, location)
            await sleep(self.ctx.config.step_delay)
            if command == PAUSE:
                self.ctx.kernel.pause(task_cluster, name)
            elif command == RESUME:
                self.ctx.kernel.resume(task_cluster, name)
            elif command == STOP:
                self.ctx.kernel.stop(task_cluster, name)
        except (LookupError, CheckpointGCed) as err:
            # A resume refused for the GC is Failed like any sub-command, and `reconcile` never reruns a failed
            # sub-command for the same spec: the CR stays Paused with this message until someone stops it.
            raise _JobFailure(FAILURE_REASONS[command], str(err)) from err
        return {}

    async def _start(self, cluster: Any, obj: dict[str, Any], location: Any) -> dict[str, Any]:
        spec, name = obj.get("spec") or {}, obj["metadata"]["name"]
        try:
            start_ts = parse_ts_br(spec["commitTs"]) if spec.get("commitTs") else self.ctx.alloc.next()
            # BR checks for a task first (one per cluster), then writes the log backupmeta.
            self.ctx.kernel.start(cluster, name, f"{obj['metadata']['namespace']}/{name}", location, start_ts)
        except (TsParseError, TaskExists) as err:
            raise _JobFailure("StartLogBackupFailed", str(err)) from err
        try:
            await self.ctx.io(br_layout.start_log, location, start_ts=start_ts, cluster_id=cluster.data.cluster_id,
                              task_name=name)
        except Exception as err:
            self.ctx.kernel.stop((cluster.namespace, cluster.name), name)
            raise _JobFailure("StartLogBackupFailed", str(getattr(err, "message", err))) from err
        await sleep(self.ctx.config.step_delay)
        # The task's start TS from the backupmeta; the checkpoint is the tracker's to write, later.
        return {"commitTs": str(start_ts)}

    async def _truncate(self, spec: dict[str, Any], location: Any) -> dict[str, Any]:
        until = spec["logTruncateUntil"]
        started = clock.monotonic()
        failure = self.ctx.faults.take_truncate_failure()
        if failure:
            raise _JobFailure("TruncateLogBackuFailed", failure)
        try:
            await self.ctx.io(br_layout.truncate_log, location, parse_ts_br(until))
        except TsParseError as err:
            raise _JobFailure("TruncateLogBackuFailed", str(err)) from err
        except Exception as err:
            raise _JobFailure("TruncateLogBackuFailed", str(getattr(err, "message", err))) from err
        await sleep(self.ctx.config.truncate_duration - (clock.monotonic() - started))
        return {"logSuccessTruncateUntil": until}

    async def stop(self) -> None:
        await self.tracker.stop()


def _safe_ts(text: str | None) -> int:
    try:
        return parse_ts_operator(text)
    except TsParseError:
        return 0
