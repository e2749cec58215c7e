"""What a wait is waiting for: pure predicates over one CR's current state.

Each returns None while undecided, or a Verdict. The trigger (async, watch-based) and the poke
fallback (sync, polling) share them, so both modes decide exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..model import BackupView, CompactView, RestoreView, State
from ..tso import tso_to_dt

SUCCESS, FAILED, NOT_FOUND = "success", "failed", "not_found"
KINDS = ("terminal", "log_started", "log_phase", "checkpoint", "lag", "truncate", "gone")


@dataclass(frozen=True)
class Verdict:
    status: str  # success | failed | not_found
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _view(plural: str, obj: dict[str, Any]) -> Any:
    return {"backups": BackupView, "restores": RestoreView, "compactbackups": CompactView}[plural].from_cr(obj)


def evaluate(kind: str, plural: str, obj: dict[str, Any] | None, args: dict[str, Any],
             now: datetime | None = None) -> Verdict | None:
    if kind not in KINDS:
        raise ValueError(f"unknown wait kind {kind!r}; known: {', '.join(KINDS)}")
    if obj is None:
        return Verdict(SUCCESS, "the CR is gone") if kind == "gone" else Verdict(NOT_FOUND, "the CR does not exist")
    if kind == "gone":
        return None
    view = _view(plural, obj)
    where = f"{view.namespace}/{view.name}"
    if kind == "terminal":
        if view.state == State.COMPLETE:
            return Verdict(SUCCESS, f"{where} is Complete")
        if view.state in (State.FAILED, State.INVALID):
            return Verdict(FAILED, f"{where} is {view.phase or view.state}: {view.message or 'no message'}")
        return None
    # The rest are log-backup predicates.
    if kind == "truncate":
        result, message = view.truncate_result(str(args["until"]))
        if result == "done":
            return Verdict(SUCCESS, f"{where} truncated until {args['until']}")
        if result == "failed":
            return Verdict(FAILED, f"truncate of {where} until {args['until']} failed: {message}")
        return None
    if kind == "log_started":
        start = view.sub_statuses.get("log-start")
        if start is not None and start.phase == "Complete" and view.commit_ts:
            return Verdict(SUCCESS, f"{where} started at {view.commit_ts}")
        return _log_failure(view, "log-start", where)
    if kind == "log_phase":
        if view.phase == args["phase"] and not view.error_paused:
            return Verdict(SUCCESS, f"{where} is {args['phase']}")
        return _log_failure(view, args.get("command", ""), where)
    checkpoint = view.checkpoint_ts or 0
    now = now or datetime.now(UTC)
    lag = (now - tso_to_dt(checkpoint)).total_seconds() if checkpoint else None
    details = {"checkpoint_ts": checkpoint, "lag_seconds": lag}
    if kind == "checkpoint" and checkpoint >= int(args["ts"]):
        return Verdict(SUCCESS, f"{where} checkpoint {checkpoint} is at or past {args['ts']}", details)
    if kind == "lag" and lag is not None and lag <= float(args["max_lag_seconds"]):
        return Verdict(SUCCESS, f"{where} checkpoint lag {lag:.0f}s is under {args['max_lag_seconds']}s", details)
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
