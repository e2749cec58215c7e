"""Log backups: sub-commands, the checkpoint tracker, truncate, and the error-pause path.

Two levels of status, as in the operator (reference section 2.3): each sub-command has its own entry
in `status.logSubCommandStatuses`, and only some of their conditions reach the whole CR.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..k8s.crd import ResourceType
from ..storage import br_layout
from .common import V2_GROUP, now, sleep
from .conditions import make_condition, set_condition, update_condition
from .context import Context, StorageFailure, storage_block
from .tsparse import TsParseError, parse_ts_br, parse_ts_operator

START, STOP, PAUSE, RESUME, TRUNCATE, UNKNOWN = (
    "log-start", "log-stop", "log-pause", "log-resume", "log-truncate", "log-unknown")
ACTIVE_PHASES = ("Running", "Paused", "RetryFailed", "Scheduled", "Prepare")


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


def _sub_status(status: dict[str, Any], command: str) -> dict[str, Any]:
    return (status.get("logSubCommandStatuses") or {}).get(command) or {}


class LogBackupController:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._trackers: dict[str, asyncio.Task[None]] = {}
        self._kernel_paused: dict[str, str] = {}  # task key -> error message (TiKV paused the task)

    # -- reconcile ---------------------------------------------------------------------------------
    def reconcile(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = f"{rt.group}/{namespace}/{name}"
        status = obj.get("status") or {}
        if status.get("phase") == "Running" and status.get("commitTs"):
            self._ensure_tracker(rt, namespace, name, key)
        if self.ctx.job_running(f"log:{key}"):
            return
        command = current_subcommand(rt, obj)
        if command == UNKNOWN:
            sub = (obj.get("spec") or {}).get("logSubcommand")
            if status.get("phase") != "RetryFailed":
                self._whole(rt, namespace, name, "RetryFailed", "LogSubcommandNotSupported",
                            f"log backup subcommand {sub} is not supported")
            return
        if command == TRUNCATE:
            self._maybe_truncate(rt, obj, key)
            return
        if in_sync(command, obj):
            return
        sub_phase = _sub_status(status, command).get("phase")
        if sub_phase in ("Failed", "Invalid"):
            return  # a failed sub-command is not retried until the spec changes
        if command != START and not status.get("commitTs"):
            if status.get("phase") is None and command == STOP:
                self._finish_unstarted_stop(rt, namespace, name)
            return  # stop/pause/truncate wait until the task has started
        self.ctx.start_job(f"log:{key}", lambda: self._run(rt, namespace, name, command, key))

    def _maybe_truncate(self, rt: ResourceType, obj: dict[str, Any], key: str) -> None:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        until = spec["logTruncateUntil"]
        sub = _sub_status(status, TRUNCATE)
        if sub.get("logTruncatingUntil") == until and sub.get("phase") in ("Complete", "Failed", "Invalid"):
            return
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            until_ts = parse_ts_operator(until)
        except TsParseError as err:
            self._sub(rt, namespace, name, TRUNCATE, "Invalid", "InvalidSpec",
                      f"invalid logTruncateUntil {until}: {err}", truncating=until)
            return
        done_ts = max(int(status.get("commitTs") or 0), _safe_ts(status.get("logSuccessTruncateUntil")))
        if until_ts <= done_ts:
            # IsLogBackupAlreadyTruncate: nothing to delete, mark the request done without a job.
            def skip(st: dict[str, Any], o: dict[str, Any]) -> None:
                self._mutate_sub(st, rt.group, TRUNCATE, "Complete", "", "", until)
                if rt.group == V2_GROUP and not st.get("logSuccessTruncateUntil"):
                    st["logSuccessTruncateUntil"] = until
            self.ctx.write_status(rt, namespace, name, skip)
            return
        self.ctx.start_job(f"log:{key}", lambda: self._run(rt, namespace, name, TRUNCATE, key))

    # -- status helpers ----------------------------------------------------------------------------
    def _mutate_sub(self, status: dict[str, Any], group: str, command: str, phase: str, reason: str,
                    message: str, truncating: str | None = None) -> None:
        subs = status.setdefault("logSubCommandStatuses", {})
        entry = subs.setdefault(command, {"command": command})
        cond = make_condition("" if group != V2_GROUP else group, phase, reason, message)
        cond["command"] = command
        entry["conditions"] = set_condition(entry.get("conditions") or [], cond)
        entry["phase"] = phase
        if phase == "Scheduled":
            entry["timeStarted"] = now()
            entry.pop("timeCompleted", None)
        if phase in ("Complete", "Failed"):
            entry["timeCompleted"] = now()
        if truncating is not None:
            entry["logTruncatingUntil"] = truncating

    def _sub(self, rt: ResourceType, namespace: str, name: str, command: str, phase: str, reason: str = "",
             message: str = "", truncating: str | None = None, **fields: Any) -> dict[str, Any] | None:
        """Record a sub-command phase and propagate it to the whole CR as `restructCondition` does."""
        def mutate(status: dict[str, Any], obj: dict[str, Any]) -> None:
            self._mutate_sub(status, rt.group, command, phase, reason, message, truncating)
            whole = _whole_phase(command, phase)
            if whole is not None:
                update_condition(status, rt.group, whole, reason, message, obj["metadata"].get("generation"))
            status.update(fields)
        return self.ctx.write_status(rt, namespace, name, mutate)

    def _whole(self, rt: ResourceType, namespace: str, name: str, ctype: str, reason: str = "",
               message: str = "", **fields: Any) -> None:
        self.ctx.set_condition(rt, namespace, name, ctype, reason, message, **fields)

    def _finish_unstarted_stop(self, rt: ResourceType, namespace: str, name: str) -> None:
        self._sub(rt, namespace, name, STOP, "Complete", "LogBackupNotStarted", "log backup was never started")

    # -- jobs --------------------------------------------------------------------------------------
    async def _run(self, rt: ResourceType, namespace: str, name: str, command: str, key: str) -> None:
        obj = self.ctx.get(rt, namespace, name)
        if obj is None:
            return
        spec = obj.get("spec") or {}
        truncating = spec.get("logTruncateUntil") if command == TRUNCATE else None
        self._sub(rt, namespace, name, command, "Scheduled", truncating=truncating)
        await sleep(self.ctx.config.step_delay)
        try:
            location = self.ctx.open_storage(namespace, storage_block(spec))
        except StorageFailure as err:
            self._sub(rt, namespace, name, command, "Failed", err.reason, err.message)
            return
        prepare_fields = {"backupPath": location.url} if command == START else {}
        self._sub(rt, namespace, name, command, "Prepare", **prepare_fields)
        await sleep(self.ctx.config.step_delay)
        running_fields = {"timeStarted": now()} if command == START else {}
        self._sub(rt, namespace, name, command, "Running", **running_fields)
        try:
            if command == START:
                await self._start(rt, namespace, name, spec, location, key)
            elif command == TRUNCATE:
                await self._truncate(rt, namespace, name, spec, location)
            else:
                if command in (PAUSE, STOP):
                    await self._flush(rt, namespace, name, key, location)
                if command == RESUME:  # resuming clears an error pause in TiKV too
                    self._kernel_paused.pop(key, None)
                await sleep(self.ctx.config.step_delay)
                self._sub(rt, namespace, name, command, "Complete")
        except _JobFailure as err:
            self._sub(rt, namespace, name, command, "Failed", err.reason, err.message)

    async def _start(self, rt: ResourceType, namespace: str, name: str, spec: dict[str, Any], location: Any,
                     key: str) -> None:
        cluster = self.ctx.cluster_for(rt.group, namespace, spec.get("br"))
        if isinstance(cluster, str):
            raise _JobFailure("GetTidbClusterFailed", cluster)
        if self._other_task_running(rt, namespace, name, spec):
            raise _JobFailure("LogBackupStartFailed",
                              "[BR:Stream:ErrStreamLogTaskExist]stream task already exists: "
                              "only one log backup task is allowed per cluster")
        try:
            start_ts = parse_ts_br(spec["commitTs"]) if spec.get("commitTs") else self.ctx.alloc.next()
        except TsParseError as err:
            raise _JobFailure("LogBackupStartFailed", str(err)) from err
        try:
            await self.ctx.io(br_layout.start_log, location, start_ts=start_ts,
                              cluster_id=cluster.data.cluster_id, task_name=name)
        except Exception as err:
            raise _JobFailure("LogBackupStartFailed", str(getattr(err, "message", err))) from err
        await sleep(self.ctx.config.step_delay)
        self._kernel_paused.pop(key, None)
        self._sub(rt, namespace, name, START, "Complete", commitTs=str(start_ts), logCheckpointTs=str(start_ts))

    def _other_task_running(self, rt: ResourceType, namespace: str, name: str, spec: dict[str, Any]) -> bool:
        """BR allows one log task per cluster (`ErrStreamLogTaskExist`)."""
        br = spec.get("br") or {}
        target = (br.get("clusterNamespace") or namespace, br.get("cluster"))
        for other in self.ctx.store.iter_all(rt):
            m = other["metadata"]
            if (m["namespace"], m["name"]) == (namespace, name):
                continue
            o_spec, o_status = other.get("spec") or {}, other.get("status") or {}
            o_br = o_spec.get("br") or {}
            if (o_spec.get("backupMode") == "log" and o_status.get("commitTs")
                    and o_status.get("phase") in ACTIVE_PHASES
                    and (o_br.get("clusterNamespace") or m["namespace"], o_br.get("cluster")) == target):
                return True
        return False

    async def _truncate(self, rt: ResourceType, namespace: str, name: str, spec: dict[str, Any],
                        location: Any) -> None:
        until = spec["logTruncateUntil"]
        try:
            until_ts = parse_ts_br(until)
        except TsParseError as err:
            raise _JobFailure("LogBackupTruncateFailed", str(err)) from err
        started = time.monotonic()
        try:
            await self.ctx.io(br_layout.truncate_log, location, until_ts)
        except Exception as err:
            raise _JobFailure("LogBackupTruncateFailed", str(getattr(err, "message", err))) from err
        await sleep(self.ctx.config.truncate_duration - (time.monotonic() - started))
        self._sub(rt, namespace, name, TRUNCATE, "Complete", logSuccessTruncateUntil=until)

    # -- the checkpoint tracker ----------------------------------------------------------------------
    def _ensure_tracker(self, rt: ResourceType, namespace: str, name: str, key: str) -> None:
        task = self._trackers.get(key)
        if task is None or task.done():
            self._trackers[key] = asyncio.get_running_loop().create_task(self._track(rt, namespace, name, key))

    async def _track(self, rt: ResourceType, namespace: str, name: str, key: str) -> None:
        """Advance the checkpoint while Running: flush the cluster's changes to the log storage."""
        while True:
            await sleep(self.ctx.config.checkpoint_interval)
            obj = self.ctx.get(rt, namespace, name)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                return
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Stopped", "Failed", "Complete"):
                return
            if phase != "Running":
                continue
            message = None if key in self._kernel_paused else self.ctx.faults.take_log_error_pause(
                f"{namespace}/{name}")
            if message:
                self._kernel_paused[key] = message
                if rt.group != V2_GROUP and self.ctx.config.kernel_sync:
                    self._whole(rt, namespace, name, "RetryFailed", "LogBackupErrorPaused",
                                f"Log backup paused due to error: Paused by error(store 1): {message}",
                                timeSynced=now())
                continue
            if key in self._kernel_paused or self.ctx.faults.freeze_checkpoint:
                if rt.group != V2_GROUP and self.ctx.config.kernel_sync:
                    self.ctx.write_status(rt, namespace, name, lambda st, o: st.update(timeSynced=now()))
                continue
            try:
                location = self.ctx.open_storage(namespace, storage_block(obj.get("spec") or {}))
                await self._flush(rt, namespace, name, key, location, only_while_running=True)
            except Exception:  # storage trouble stalls the checkpoint, as it would in TiKV
                continue

    async def _flush(self, rt: ResourceType, namespace: str, name: str, key: str, location: Any, *,
                     only_while_running: bool = False) -> None:
        obj = self.ctx.get(rt, namespace, name)
        if obj is None or key in self._kernel_paused:
            return
        status = obj.get("status") or {}
        cluster = self.ctx.cluster_for(rt.group, namespace, (obj.get("spec") or {}).get("br"))
        if isinstance(cluster, str) or not status.get("logCheckpointTs"):
            return
        previous = int(status["logCheckpointTs"])
        checkpoint = self.ctx.alloc.next()
        changes = cluster.data.changes_between(previous, checkpoint)
        await self.ctx.io(br_layout.flush_log, location, changes, flush_ts=checkpoint, stores=self.ctx.config.stores)

        def mutate(st: dict[str, Any], o: dict[str, Any]) -> None:
            if only_while_running and st.get("phase") != "Running":
                return  # paused or stopped while this flush was in flight: the checkpoint stays
            if int(st.get("logCheckpointTs") or 0) < checkpoint:
                st["logCheckpointTs"] = str(checkpoint)
            if rt.group != V2_GROUP:
                st["timeSynced"] = now()
        self.ctx.write_status(rt, namespace, name, mutate)

    async def stop(self) -> None:
        for task in self._trackers.values():
            task.cancel()
        await asyncio.gather(*self._trackers.values(), return_exceptions=True)


class _JobFailure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _safe_ts(text: str | None) -> int:
    try:
        return parse_ts_operator(text)
    except TsParseError:
        return 0


def _whole_phase(command: str, phase: str) -> str | None:
    """Which sub-command phases reach the whole CR (`restructCondition`)."""
    if command == START:
        return None if phase == "Complete" else phase
    if command == STOP:
        return "Stopped" if phase == "Complete" else None
    if command == PAUSE:
        return "Paused" if phase == "Complete" else None
    if command == RESUME:
        return "Running" if phase == "Complete" else None
    return None  # log-truncate propagates nothing
