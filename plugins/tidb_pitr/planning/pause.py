"""A paused log backup that can never resume: BR refused its resume because the GC passed its checkpoint.

`br log pause` holds the GC at the checkpoint for a TTL only (`--gc-ttl`, 24 h by default, which TiDB
Operator does not change: pingcap/tidb br/pkg/task/stream.go `RunStreamPause`). A resume after the GC passed
the checkpoint fails in `RunStreamResume` (br/pkg/utils `CheckGCSafePoint`, ErrBackupGCSafepointExceeded), and
the operator never reruns a failed sub-command for the same spec. The task is then dead for good: the only way
on is to stop it and start a new one, and the time from its checkpoint to the new log's first snapshot is lost.
A pause asked for on purpose (maintenance, from the log-control DAG) is bounded below that TTL and recorded on
the CR (`MaintenancePause`): the guard leaves it paused until it ends, then resumes it. Pure: reads CR views only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..cr.api import ANNOTATION_MAINTENANCE_PAUSE
from ..cr.model import BackupView
from ..tso import tso_iso
from ..units import format_duration

PAUSE_GC_TTL = timedelta(hours=24)  # BR's DefaultStreamPauseSafePointTTL; TiDB Operator passes no --gc-ttl
RESUME = "log-resume"
# What BR's refusal says, whichever BR version wrote it: the error code and the annotation of RunStreamResume.
_GC_MARKERS = ("ErrBackupGCSafepointExceeded", "backup GC safepoint exceeded", "has been gc")


def is_gc_refusal(message: str) -> bool:
    """True for BR's "the GC passed the checkpoint" error text."""
    return any(marker.lower() in message.lower() for marker in _GC_MARKERS)


def resume_refused_by_gc(view: BackupView) -> str | None:
    """BR's message when this log backup's last resume failed because the GC passed its checkpoint, else None.

    Only a Failed `log-resume` entry counts (a pause or resume after it marks it Repeatable or Complete), so a
    task that did resume, or was never resumed, is not dead."""
    if not view.is_log:
        return None
    sub = view.sub_statuses.get(RESUME)
    if sub is None or sub.phase != "Failed" or not is_gc_refusal(sub.message):
        return None
    return sub.message


def dead_pause_cause(view: BackupView) -> str:
    """One sentence for messages, notes and the page: what happened and why it is final."""
    checkpoint = f" ({tso_iso(view.checkpoint_ts)})" if view.checkpoint_ts else ""
    return (f"log backup {view.name} was paused longer than BR's pause GC TTL ({format_duration(PAUSE_GC_TTL)} by "
            f"default) and the GC has passed its checkpoint{checkpoint}: BR refused the resume, which is final "
            "for this task (the operator never reruns a failed resume)")


# -- a pause asked for on purpose (maintenance), which the guard leaves alone until it ends ------------------------
# The longest maintenance pause: BR's pause GC TTL less what the guard needs to resume in time (it runs every 10
# minutes, a resume takes a tracker interval or two): a resume after the TTL may find the GC past the checkpoint.
RESUME_MARGIN = timedelta(hours=1)
MAX_MAINTENANCE_PAUSE = PAUSE_GC_TTL - RESUME_MARGIN
MIN_MAINTENANCE_PAUSE = timedelta(minutes=10)  # one guard interval: a shorter pause would outlive its bound
CONTROL_ACTIONS = ("pause", "resume", "stop")


@dataclass(frozen=True)
class MaintenancePause:
    """What the log-control DAG wrote on the log backup CR when it paused it (annotation
    `tidb-pitr-airflow/maintenance-pause`)."""
    until: datetime
    at: datetime
    run: str
    reason: str

    def to_annotation(self) -> str:
        return json.dumps({"until": _iso(self.until), "at": _iso(self.at), "run": self.run, "reason": self.reason},
                          sort_keys=True)

    def to_dict(self) -> dict[str, str]:
        return {"until": _iso(self.until), "at": _iso(self.at), "run": self.run, "reason": self.reason}

    def active(self, now: datetime) -> bool:
        return now < self.until


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def maintenance_pause(view: BackupView) -> MaintenancePause | None:
    """The maintenance pause recorded on a log backup CR that is Paused now (not by an error), else None.

    A record on a CR that is not Paused (resumed by hand, never paused) means nothing: only a Paused task is held."""
    text = view.annotations.get(ANNOTATION_MAINTENANCE_PAUSE)
    if not text or not view.is_log or view.phase != "Paused" or view.error_paused:
        return None
    try:
        data = json.loads(text)
        until = datetime.fromisoformat(str(data["until"]).replace("Z", "+00:00"))
        at = datetime.fromisoformat(str(data.get("at") or data["until"]).replace("Z", "+00:00"))
    except (ValueError, TypeError, KeyError):
        return None  # unreadable: not a pause the guard may leave alone
    if until.tzinfo is None or at.tzinfo is None:
        return None
    # Never longer than the TTL from when it was paused, whatever the annotation says (hand-edited, or older code).
    return MaintenancePause(until=min(until, at + MAX_MAINTENANCE_PAUSE), at=at, run=str(data.get("run") or "?"),
                            reason=str(data.get("reason") or ""))


def pause_minutes_problem(minutes: object) -> str | None:
    """Why `pause_minutes` cannot be used (naming the field and the allowed range), else None."""
    low, high = int(MIN_MAINTENANCE_PAUSE.total_seconds() // 60), int(MAX_MAINTENANCE_PAUSE.total_seconds() // 60)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
        return (f"pause_minutes must be a whole number of minutes from {low} to {high} ({format_duration(high * 60)}: "
                f"BR's pause GC TTL of {format_duration(PAUSE_GC_TTL)} less {format_duration(RESUME_MARGIN)} for the "
                f"guard to resume it in time); got {minutes!r}")
    return None


class LogControlRefused(ValueError):
    """A log-control request that cannot be carried out; nothing was changed."""


def confirmation(action: str, cluster: str) -> str:
    """What the user types to confirm a resume or a stop: `stop demo1's log backup`."""
    return f"{action} {cluster}'s log backup"


def plan_log_control(*, action: object, pause_minutes: object, confirm: object, reason: object, cluster: str,
                     view: BackupView | None, now: datetime, run: str) -> dict[str, object]:
    """What the log-control DAG does to the cluster's live log backup (`view`): `action`, the CR, and the
    annotations written with the sub-command. Raises `LogControlRefused` naming the field and what is allowed,
    before anything changes: an unknown action, a pause outside the allowed range or of a task not Running, a
    resume or stop without its confirmation, a resume of a task not Paused or that BR will not resume."""
    if action not in CONTROL_ACTIONS:
        raise LogControlRefused(f"action must be one of {', '.join(CONTROL_ACTIONS)}; got {action!r}")
    reason_text = " ".join(str(reason or "").split())[:300]
    if action in ("resume", "stop"):
        wanted = confirmation(str(action), cluster)
        if " ".join(str(confirm or "").split()) != wanted:
            raise LogControlRefused(f"confirm must be exactly {wanted!r} to {action} the log backup; got "
                                    f"{confirm!r}")
    if view is None:
        raise LogControlRefused(f"{cluster} has no live log backup (Running or Paused) to {action}")
    if action == "pause":
        problem = pause_minutes_problem(pause_minutes)
        if problem:
            raise LogControlRefused(problem)
        if view.phase != "Running" or view.error_paused:
            held = maintenance_pause(view)
            already = (f"already paused for maintenance until {held.to_dict()['until']} by {held.run}; resume it "
                       "first (a new pause starts a new GC TTL)") if held else f"{view.phase or 'without status'}"
            raise LogControlRefused(f"cannot pause log backup {view.name}: it is {already}")
        assert isinstance(pause_minutes, int)
        pause = MaintenancePause(until=now + timedelta(minutes=pause_minutes), at=now, run=run, reason=reason_text)
        return {"action": "pause", "log_backup": view.name, "pause": pause.to_dict(), "reason": reason_text,
                "annotations": {ANNOTATION_MAINTENANCE_PAUSE: pause.to_annotation()}}
    if action == "resume":
        if view.phase != "Paused" and not view.error_paused:
            raise LogControlRefused(f"cannot resume log backup {view.name}: it is {view.phase or 'without status'}, "
                                    "not Paused")
        refusal = resume_refused_by_gc(view)
        if refusal:
            raise LogControlRefused(f"{dead_pause_cause(view)}. BR said: {refusal}. Trigger the guard with "
                                    "start_new_log_backup=true instead")
    held = maintenance_pause(view)
    return {"action": action, "log_backup": view.name, "pause": held.to_dict() if held else None, "reason": reason_text,
            "annotations": {ANNOTATION_MAINTENANCE_PAUSE: None}}
