"""A paused log backup that can never resume: BR refused its resume because the GC passed its checkpoint.

`br log pause` holds the GC at the checkpoint for a TTL only (`--gc-ttl`, 24 h by default, which TiDB
Operator does not change: pingcap/tidb br/pkg/task/stream.go `RunStreamPause`). A resume after the GC passed
the checkpoint fails in `RunStreamResume` (br/pkg/utils `CheckGCSafePoint`, ErrBackupGCSafepointExceeded), and
the operator never reruns a failed sub-command for the same spec. The task is then dead for good: the only way
on is to stop it and start a new one, and the time from its checkpoint to the new log's first snapshot is lost.
Pure: reads CR views only.
"""

from __future__ import annotations

from datetime import timedelta

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
