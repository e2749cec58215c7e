"""Typed, read-only views of TiDB Operator `Backup`, `Restore` and `CompactBackup` objects (both API groups).

The views never fail on odd input: a missing or unreadable field becomes None (or "" / {}), so a half-written
CR from a busy operator can always be looked at. Each view keeps the object it was built from in `raw`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..tso import EPOCH, parse_cr_ts
from .api import V1_GROUP

STORAGE_PROVIDERS = ("s3", "gcs", "azblob", "local")  # the operator's order: the first one set wins
LOG_TRUNCATE = "log-truncate"
ERROR_PAUSED_REASON = "LogBackupErrorPaused"


class State(StrEnum):
    """What a CR's phase means for a DAG, the same words for every kind and API group."""

    PENDING = "pending"  # no status yet, Scheduled, Prepare
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PAUSED = "paused"
    STOPPED = "stopped"
    INVALID = "invalid"

    @property
    def terminal(self) -> bool:
        return self in (State.COMPLETE, State.FAILED, State.INVALID, State.STOPPED)


_COMMON = {
    "": State.PENDING, "Scheduled": State.PENDING, "Prepare": State.PENDING, "Running": State.RUNNING,
    # RetryFailed is transient: the operator retries the Job (backoff policy / Job re-creation).
    "RetryFailed": State.RUNNING, "Complete": State.COMPLETE, "Failed": State.FAILED, "Invalid": State.INVALID,
}
_SNAPSHOT_STATES = {
    **_COMMON,
    "VolumeBackupInitialized": State.RUNNING, "VolumeBackupSnapshotsCreated": State.RUNNING,
    "VolumeBackupInitializeComplete": State.RUNNING, "VolumeBackupComplete": State.COMPLETE,
    "VolumeBackupInitializeFailed": State.FAILED, "VolumeBackupFailed": State.FAILED,
}
_LOG_STATES = {
    **_COMMON,
    # log-start's Complete is never copied to the whole CR; if an operator ever does, the task is running.
    "Complete": State.RUNNING,
    "Paused": State.PAUSED, "Stopped": State.STOPPED,
}
_RESTORE_STATES = {
    **_COMMON,
    **dict.fromkeys(("VolumeComplete", "WarmUpStarted", "WarmUpComplete", "DataComplete", "TikvComplete",
                     "CleanVolumeComplete", "SnapshotRestore", "LogRestore"), State.RUNNING),
    # v1 `prune: afterFailed` cleans up after a failed restore: the restore itself failed.
    **dict.fromkeys(("PruneScheduled", "PruneRunning", "PruneComplete", "PruneFailed"), State.FAILED),
}
_COMPACT_STATES = dict(_COMMON)


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_transition: datetime | None


@dataclass(frozen=True)
class SubStatus:
    """One entry of a log backup's `status.logSubCommandStatuses` (the last run of that sub-command)."""

    phase: str
    truncating_until: str | None
    message: str
    time_started: datetime | None
    time_completed: datetime | None
    reason: str = ""
    since: datetime | None = None  # when this entry's current phase began (its condition's transition time)


@dataclass(frozen=True)
class Progress:
    step: str
    progress: float
    last_transition: datetime | None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _tso(value: Any) -> int | None:
    """A status TSO: decimal string; "" and "0" mean "not set" (e.g. Restore commitTs "0" in pitr mode)."""
    ts = _int(value)
    return ts or None


def _cr_ts(value: Any) -> int | None:
    """A TS field a human may have written (decimal, date, RFC 3339); unreadable -> None."""
    try:
        return parse_cr_ts(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _conditions(value: Any) -> tuple[Condition, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        Condition(_str(c.get("type")), _str(c.get("status")), _str(c.get("reason")), _str(c.get("message")),
                  _time(c.get("lastTransitionTime")))
        for c in value if isinstance(c, dict)
    )


def _matching(conditions: tuple[Condition, ...], ctype: str) -> Condition | None:
    found = [c for c in conditions if c.type == ctype]
    return found[-1] if found else None


def _message_and_reason(conditions: tuple[Condition, ...], phase: str) -> tuple[str, str]:
    """The operator's own words: the condition of the current phase, else the last condition with a message."""
    current = _matching(conditions, phase)
    reason = current.reason if current else ""
    if current and current.message:
        return current.message, reason
    with_message = [c for c in conditions if c.message]
    return (with_message[-1].message if with_message else ""), reason


def _state(phase: str, table: Mapping[str, State], conditions: tuple[Condition, ...]) -> State:
    if phase in table:
        return table[phase]
    # Phases outside the life cycle (Clean, CleanFailed while deleting, Repeatable, ...): the latest
    # life-cycle condition says what the CR was. Conditions are replaced in place, so list order is not
    # time order; the transition time decides, list position breaks ties.
    candidates = [(c.last_transition or EPOCH, i, c.type) for i, c in enumerate(conditions) if c.type in table]
    return table[max(candidates)[2]] if candidates else State.PENDING


def storage_block(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The storage provider of a spec as a one-key dict ({"s3": {...}}), or {} when none is set."""
    for provider in STORAGE_PROVIDERS:
        block = spec.get(provider)
        if isinstance(block, dict):
            return {provider: block}
    return {}


def storage_url(storage: Mapping[str, Any]) -> str | None:
    """The BR storage URL the operator derives from a one-key provider block (`status.backupPath` form)."""
    if not storage:
        return None
    provider, block = next(iter(storage.items()))
    block = _dict(block)
    prefix = _str(block.get("prefix")).strip("/")
    if provider == "s3":
        base = f"s3://{_str(block.get('bucket'))}"
    elif provider == "gcs":
        base = f"gcs://{_str(block.get('bucket'))}"
    elif provider == "azblob":
        base = f"azure://{_str(block.get('container'))}"
    elif provider == "local":
        mount = _str(_dict(block.get("volumeMount")).get("mountPath")).strip("/")
        base = f"local://{'/' + mount if mount else ''}"
    else:
        return None
    return f"{base}/{prefix}/" if prefix else f"{base}/"


@dataclass(frozen=True)
class _Meta:
    name: str
    namespace: str
    group: str
    labels: dict[str, str]
    annotations: dict[str, str]
    created: datetime | None
    deleting: bool


def _meta(obj: Mapping[str, Any]) -> _Meta:
    meta = _dict(obj.get("metadata"))
    api_version = _str(obj.get("apiVersion"))
    return _Meta(
        name=_str(meta.get("name")), namespace=_str(meta.get("namespace")),
        group=api_version.split("/")[0] if "/" in api_version else V1_GROUP,
        labels=dict(_dict(meta.get("labels"))), annotations=dict(_dict(meta.get("annotations"))),
        created=_time(meta.get("creationTimestamp")), deleting=bool(meta.get("deletionTimestamp")),
    )


def _common(obj: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every view shares: identity, the cluster its `br` names, its storage, metadata."""
    meta = _meta(obj)
    br = _dict(spec.get("br"))
    storage = storage_block(spec)
    return {"name": meta.name, "namespace": meta.namespace, "group": meta.group, "cluster": _str(br.get("cluster")),
            "cluster_namespace": _str(br.get("clusterNamespace")) or meta.namespace, "storage": storage,
            "storage_url": storage_url(storage), "labels": meta.labels, "annotations": meta.annotations,
            "created": meta.created, "deleting": meta.deleting, "raw": dict(obj)}


def _sub_statuses(value: Any) -> dict[str, SubStatus]:
    subs = {}
    for command, entry in _dict(value).items():
        entry = _dict(entry)
        phase = _str(entry.get("phase"))
        conditions = _conditions(entry.get("conditions"))
        message, reason = _message_and_reason(conditions, phase)
        current = _matching(conditions, phase)
        subs[command] = SubStatus(
            phase=phase, truncating_until=_opt_str(entry.get("logTruncatingUntil")), message=message,
            time_started=_time(entry.get("timeStarted")), time_completed=_time(entry.get("timeCompleted")),
            reason=reason, since=current.last_transition if current else None,
        )
    return subs


@dataclass(frozen=True)
class BackupView:
    name: str
    namespace: str
    group: str
    mode: str  # "snapshot" | "log" (| "volume-snapshot", v1)
    phase: str
    state: State
    message: str
    reason: str
    commit_ts: int | None  # snapshot: its BackupTS; log: the task's start TS
    checkpoint_ts: int | None
    backup_path: str | None
    backup_size: int | None
    log_subcommand: str | None
    log_stop: bool
    truncate_until: str | None  # spec.logTruncateUntil, verbatim
    truncated_until: int | None  # status.logSuccessTruncateUntil as a TSO
    sub_statuses: dict[str, SubStatus]
    cluster: str
    cluster_namespace: str
    storage: dict[str, Any]
    storage_url: str | None
    clean_policy: str
    labels: dict[str, str]
    annotations: dict[str, str]
    created: datetime | None
    deleting: bool
    time_started: datetime | None
    time_completed: datetime | None
    error_paused: bool  # log task paused by the kernel on an error (v1.6.4+ RetryFailed/LogBackupErrorPaused)
    backup_type: str  # spec.backupType: "" / full / db / table
    table_filter: tuple[str, ...]
    br_db: str
    phase_since: datetime | None  # when the current phase began (its condition's transition time)
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_cr(cls, obj: Mapping[str, Any]) -> BackupView:
        spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
        mode = _str(spec.get("backupMode")) or "snapshot"
        phase = _str(status.get("phase"))
        conditions = _conditions(status.get("conditions"))
        message, reason = _message_and_reason(conditions, phase)
        is_log = mode == "log"
        error_paused = is_log and phase == "RetryFailed" and reason == ERROR_PAUSED_REASON
        if error_paused:
            state = State.PAUSED
        else:
            state = _state(phase, _LOG_STATES if is_log else _SNAPSHOT_STATES, conditions)
        current = _matching(conditions, phase)
        filters = spec.get("tableFilter")
        return cls(
            **_common(obj, spec), mode=mode, phase=phase, state=state,
            backup_type=_str(spec.get("backupType")), br_db=_str(_dict(spec.get("br")).get("db")),
            table_filter=tuple(f for f in filters if isinstance(f, str)) if isinstance(filters, list) else (),
            phase_since=current.last_transition if current else None,
            message=message, reason=reason, commit_ts=_tso(status.get("commitTs")),
            checkpoint_ts=_tso(status.get("logCheckpointTs")), backup_path=_opt_str(status.get("backupPath")),
            backup_size=_int(status.get("backupSize")), log_subcommand=_opt_str(spec.get("logSubcommand")),
            log_stop=spec.get("logStop") is True, truncate_until=_opt_str(spec.get("logTruncateUntil")),
            truncated_until=_cr_ts(status.get("logSuccessTruncateUntil")) or None,
            sub_statuses=_sub_statuses(status.get("logSubCommandStatuses")),
            clean_policy=_str(spec.get("cleanPolicy")) or "Retain",
            time_started=_time(status.get("timeStarted")), time_completed=_time(status.get("timeCompleted")),
            error_paused=error_paused,
        )

    @property
    def is_log(self) -> bool:
        return self.mode == "log"

    @property
    def is_full_cluster(self) -> bool:
        """A backup of the whole cluster: the only kind a point-in-time restore can start from."""
        return (self.mode == "snapshot" and self.backup_type in ("", "full") and not self.table_filter
                and not self.br_db)

    def label(self, key: str) -> str:
        return self.labels.get(key, "")

    @property
    def prefix(self) -> str | None:
        """The storage prefix from the spec (where this backup's data lives under the bucket/container)."""
        if not self.storage:
            return None
        return _opt_str(_dict(next(iter(self.storage.values()))).get("prefix"))

    @property
    def log_min_ts(self) -> int | None:
        """Oldest TS the log still covers: its start, raised by the last successful truncate."""
        if self.commit_ts is None:
            return None
        return max(self.commit_ts, self.truncated_until or 0)

    def truncate_result(self, until: str) -> tuple[str, str]:
        """("done" | "failed" | "pending", message) for a truncate to `until` (reference section 2.4 step 4).

        Judged on `logSubCommandStatuses["log-truncate"]` only: when the log already starts at or after
        `until` the operator skips BR and leaves `logSuccessTruncateUntil` unchanged, yet the truncate is done.
        """
        sub = self.sub_statuses.get(LOG_TRUNCATE)
        where = f"{self.namespace}/{self.name}"
        if sub is not None and sub.truncating_until == until:
            if sub.phase == "Complete":
                return "done", f"{where}: log truncated until {until}"
            if sub.phase in ("Failed", "Invalid"):
                return "failed", f"{where}: truncate until {until} is {sub.phase}: {sub.message or 'no message'}"
            return "pending", f"{where}: truncate until {until} is {sub.phase or 'not started'}"
        if self.truncate_until != until:
            return "pending", (f"{where}: spec.logTruncateUntil is {self.truncate_until!r}, not {until!r}; "
                               f"the truncate has not been requested")
        previous = f" (last truncate recorded: until {sub.truncating_until})" if sub is not None else ""
        return "pending", f"{where}: waiting for the operator to start the truncate until {until}{previous}"


@dataclass(frozen=True)
class RestoreView:
    name: str
    namespace: str
    group: str
    mode: str  # "snapshot" | "pitr" (| "volume-snapshot", v1)
    phase: str
    state: State
    message: str
    reason: str
    pitr_restored_ts: str | None  # spec, verbatim
    cluster: str  # the target cluster
    cluster_namespace: str
    commit_ts: int | None  # "0" in pitr mode: not the restored point (reference section 3.2)
    time_started: datetime | None
    time_completed: datetime | None
    progresses: tuple[Progress, ...]
    storage: dict[str, Any]  # pitr: the log storage
    storage_url: str | None
    full_backup_storage: dict[str, Any]  # pitr: the base snapshot's storage
    labels: dict[str, str]
    annotations: dict[str, str]
    created: datetime | None
    deleting: bool
    raw: dict[str, Any] = field(repr=False, compare=False)
    table_filter: tuple[str, ...] = ()  # spec.tableFilter: a filtered restore's rules; () restores everything

    @classmethod
    def from_cr(cls, obj: Mapping[str, Any]) -> RestoreView:
        spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
        phase = _str(status.get("phase"))
        conditions = _conditions(status.get("conditions"))
        message, reason = _message_and_reason(conditions, phase)
        progresses = tuple(
            Progress(_str(p.get("step")), _number(p.get("progress")), _time(p.get("lastTransitionTime")))
            for p in status.get("progresses") or [] if isinstance(p, dict)
        )
        return cls(
            **_common(obj, spec), mode=_str(spec.get("restoreMode")) or "snapshot", phase=phase,
            state=_state(phase, _RESTORE_STATES, conditions), message=message, reason=reason,
            pitr_restored_ts=_opt_str(spec.get("pitrRestoredTs")),
            commit_ts=_tso(status.get("commitTs")), time_started=_time(status.get("timeStarted")),
            time_completed=_time(status.get("timeCompleted")), progresses=progresses,
            full_backup_storage=storage_block(_dict(spec.get("pitrFullBackupStorageProvider"))),
            table_filter=tuple(f for f in spec.get("tableFilter") or [] if isinstance(f, str)),
        )

    @property
    def restored_ts(self) -> int | None:
        return _cr_ts(self.pitr_restored_ts)


@dataclass(frozen=True)
class CompactView:
    name: str
    namespace: str
    group: str
    phase: str  # status.state, verbatim
    state: State
    progress: str  # "[READ_META(17/17),COMPACT_WORK(1291/1291)]"
    message: str
    start_ts: int | None  # spec.startTs as a TSO
    end_ts: int | None  # spec.endTs as a TSO
    status_end_ts: int | None  # status.endTs (v1): how far compaction really got
    cluster: str
    cluster_namespace: str
    storage: dict[str, Any]
    storage_url: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    created: datetime | None
    deleting: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_cr(cls, obj: Mapping[str, Any]) -> CompactView:
        spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
        phase = _str(status.get("state"))
        return cls(
            **_common(obj, spec), phase=phase,
            state=_COMPACT_STATES.get(phase, State.RUNNING), progress=_str(status.get("progress")),
            message=_str(status.get("message")), start_ts=_cr_ts(spec.get("startTs")),
            end_ts=_cr_ts(spec.get("endTs")), status_end_ts=_tso(status.get("endTs")),
        )

    def progress_steps(self) -> dict[str, tuple[int, int]]:
        """`{"READ_META": (17, 17), "COMPACT_WORK": (1291, 1291)}` from the progress string."""
        steps = {}
        for item in self.progress.strip("[]").split(","):
            step, _, rest = item.strip().partition("(")
            done, _, total = rest.rstrip(")").partition("/")
            if step and done.isdigit() and total.isdigit():
                steps[step] = (int(done), int(total))
        return steps
