"""What a wait is waiting for: pure predicates over one CR's current state.

Each returns None while undecided, or a Verdict. The trigger (async, watch-based) and the poke
fallback (sync, polling) share them, so both modes decide exactly alike.

Some waits are hopeless although the CR never says Failed, and are ended early (with `args` bounds):
- `RetryFailed` for a reason waiting does not heal (a Secret missing or incomplete, the TiDB cluster not
  found): TiDB Operator requeues it forever (`retry_failed_seconds`);
- a CR nobody has written a status to (no operator, or one whose status update the CRD refuses);
- a log sub-command Scheduled or Running for too long: the operator does not notice a log Job whose pod
  died (`stuck_seconds`; a truncate, which may run for hours, only while its Job has not started).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..cr.model import BackupView, CompactView, RestoreView, State
from ..tso import tso_to_dt
from ..units import format_duration

SUCCESS, FAILED, NOT_FOUND = "success", "failed", "not_found"
KINDS = ("terminal", "log_started", "log_phase", "checkpoint", "lag", "truncate", "gone")
# RetryFailed reasons of TiDB Operator that no amount of waiting fixes (pkg/backup/util/util.go
# GenerateStorageCertEnv, GenerateTidbPasswordEnv; backup_manager.go / restore_manager.go validate*).
PERSISTENT_REASONS = frozenset({
    "GetS3SecretFailed", "s3KeyNotExist", "GetGcsSecretFailed", "gcsKeyNotExist", "GetAzblobSecretFailed",
    "azblobAccountNotExist", "azblobKeyOrAADMissing", "GetTidbSecretFailed", "KeyNotExist",
})
PERSISTENT_PREFIXES = ("failed to fetch tidbcluster",)
IN_FLIGHT = ("Scheduled", "Prepare", "Running")


@dataclass(frozen=True)
class Verdict:
    status: str  # success | failed | not_found
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _view(plural: str, obj: dict[str, Any]) -> Any:
    return {"backups": BackupView, "restores": RestoreView, "compactbackups": CompactView}[plural].from_cr(obj)


def persistent(reason: str) -> bool:
    return reason in PERSISTENT_REASONS or reason.startswith(PERSISTENT_PREFIXES)


def _age(since: datetime | None, now: datetime) -> float | None:
    return (now - since).total_seconds() if since is not None else None


def _hopeless(view: Any, where: str, args: dict[str, Any], now: datetime, command: str | None) -> Verdict | None:
    grace = args.get("retry_failed_seconds")
    if grace is not None:
        phase, reason, message, since = view.phase, getattr(view, "reason", ""), view.message, None
        if command is not None:
            sub = view.sub_statuses.get(command)
            if sub is not None and sub.phase == "RetryFailed":
                phase, reason, message, since = sub.phase, sub.reason, sub.message, sub.since
        if phase == "RetryFailed" and persistent(reason):
            since = since or getattr(view, "phase_since", None) or view.created
            age = _age(since, now)
            if age is not None and age >= float(grace):
                return Verdict(FAILED, f"{where} is RetryFailed ({reason}) for {format_duration(age)}, which "
                                       f"waiting does not fix: {message or 'no message'}. TiDB Operator retries it "
                                       f"forever; fix the cause (the Secret, the cluster), then run this task again")
        age = _age(view.created, now)
        if not view.phase and age is not None and age >= float(grace):
            return Verdict(FAILED, f"{where} has no status {format_duration(age)} after it was created: TiDB "
                                   f"Operator has not acted on it. Is the operator running and watching this "
                                   f"namespace, is the TiDB cluster there and Ready? (`kubectl describe` it, and read "
                                   f"the operator's log)")
    stuck = args.get("stuck_seconds")
    if stuck is not None and command is not None:
        sub = view.sub_statuses.get(command)
        since = sub.since if sub is not None else None
        asked = args.get("asked_at")
        if since is not None and asked is not None:
            # TiDB Operator keeps a sub-command condition's lastTransitionTime when the same type comes back with
            # the same status (release-1.6 pkg/backup/util/backup_status.go `updateLogSubCommandConditionOnly`):
            # a second truncate after a failed one shows the first one's Prepare time. It began after we asked.
            since = max(since, datetime.fromtimestamp(float(asked), UTC))
        age = _age(since, now)
        # A truncate may run for hours (BR deletes about 600 GB/h); only its Job not starting is a sign.
        phases = IN_FLIGHT if command != "log-truncate" else ("Scheduled", "Prepare")
        if sub is not None and sub.phase in phases and age is not None and age >= float(stuck):
            return Verdict(FAILED, f"{command} of {where} is stuck: {sub.phase} for {format_duration(age)}. TiDB "
                                   f"Operator does not notice a log Job whose pod died (OOM, eviction): look at "
                                   f"`kubectl get pods -l tidb.pingcap.com/backup={view.name}` and the Job "
                                   f"backup-{view.name}-{command}; "
                                   f"delete the dead Job to let the operator make it again")
    return None


def evaluate(kind: str, plural: str, obj: dict[str, Any] | None, args: dict[str, Any],
             now: datetime | None = None) -> Verdict | None:
    if kind not in KINDS:
        raise ValueError(f"unknown wait kind {kind!r}; known: {', '.join(KINDS)}")
    if obj is None:
        return Verdict(SUCCESS, "the CR is gone") if kind == "gone" else Verdict(NOT_FOUND, "the CR does not exist")
    if kind == "gone":
        return None
    now = now or datetime.now(UTC)
    view = _view(plural, obj)
    where = f"{view.namespace}/{view.name}"
    if kind == "terminal":
        if view.state == State.COMPLETE:
            return Verdict(SUCCESS, f"{where} is Complete")
        if view.state in (State.FAILED, State.INVALID):
            return Verdict(FAILED, f"{where} is {view.phase or view.state}: {view.message or 'no message'}")
        return _hopeless(view, where, args, now, None) if plural != "compactbackups" else None
    # The rest are log-backup predicates.
    if kind == "truncate":
        result, message = view.truncate_result(str(args["until"]))
        if result == "done":
            return Verdict(SUCCESS, f"{where} truncated until {args['until']}")
        if result == "failed":
            return Verdict(FAILED, f"truncate of {where} until {args['until']} failed: {message}")
        sub = view.sub_statuses.get("log-truncate")
        mine = sub is not None and sub.truncating_until == str(args["until"])
        return _hopeless(view, where, args, now, "log-truncate" if mine else None)
    if kind == "log_started":
        start = view.sub_statuses.get("log-start")
        # Running is running: after an error pause is fixed, the operator leaves log-start at RetryFailed.
        started = (start is not None and start.phase == "Complete") or view.phase == "Running"
        if started and view.commit_ts and not view.error_paused:
            return Verdict(SUCCESS, f"{where} started at {view.commit_ts}")
        return _log_failure(view, "log-start", where) or _hopeless(view, where, args, now, "log-start")
    if kind == "log_phase":
        if view.phase == args["phase"] and not view.error_paused:
            return Verdict(SUCCESS, f"{where} is {args['phase']}")
        command = args.get("command") or None
        return _log_failure(view, command or "", where) or _hopeless(view, where, args, now, command)
    checkpoint = view.checkpoint_ts or 0
    lag = (now - tso_to_dt(checkpoint)).total_seconds() if checkpoint else None
    details = {"checkpoint_ts": checkpoint, "lag_seconds": lag}
    if kind == "checkpoint" and checkpoint >= int(args["ts"]):
        return Verdict(SUCCESS, f"{where} checkpoint {checkpoint} is at or past {args['ts']}", details)
    if kind == "lag" and lag is not None and lag <= float(args["max_lag_seconds"]):
        return Verdict(SUCCESS, f"{where} checkpoint lag {format_duration(lag)} is under "
                                f"{format_duration(float(args['max_lag_seconds']))}", details)
    if view.state in (State.STOPPED, State.FAILED, State.INVALID) or view.error_paused:
        state = "error-paused" if view.error_paused else view.phase
        return Verdict(FAILED, f"{where} is {state}; its checkpoint ({checkpoint}) will not advance: "
                               f"{view.message or 'no message'}", details)
    return None


def _log_failure(view: BackupView, command: str, where: str) -> Verdict | None:
    sub = view.sub_statuses.get(command)
    if sub is not None and sub.phase in ("Failed", "Invalid"):
        return Verdict(FAILED, f"{command} of {where} is {sub.phase}: {sub.message or 'no message'}")
    if view.state in (State.FAILED, State.INVALID):
        return Verdict(FAILED, f"{where} is {view.phase}: {view.message or 'no message'}")
    if view.error_paused:
        return Verdict(FAILED, f"{where} was paused by an error: {view.message}")
    return None
