"""The retention plan: which snapshots to delete and how far to truncate the log, without losing the window.

TiDB Operator's `maxReservedTime` rule (reference section 4.4, pitr-anchors section 1.3): keep the newest
snapshot at or before the policy start E as the PITR base for E, delete the older ones, truncate the log to
that base's commitTs. Stricter here:
- only snapshots this project manages are ever deleted or relied on as the base: made by it for this cluster
  and stored where this cluster's snapshots go (`managed`); anything else is "not managed here: kept";
- only Complete full-cluster snapshots count, at least `min_snapshots` stay;
- a restore in progress (`protections`) keeps its base, and the log is never truncated past its start;
- the truncate never passes the oldest kept snapshot or the compaction progress;
- a plan that would make part of [E, checkpoint] unrestorable is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..cr.model import BackupView, State
from ..tso import dt_to_tso, tso_iso, tso_str, tso_to_dt
from ..units import format_duration
from .window import Window, is_usable_log, log_segments, recoverable_window, window_from_segments

DEFAULT_RETENTION = timedelta(days=30)
Ownership = Callable[[BackupView], str | None]  # None: managed here; otherwise why it is not


@dataclass(frozen=True)
class Protection:
    """A restore running, pending or about to start: its base stays, and the log from its start on."""

    base: str  # the base snapshot's name
    start_ts: int  # the restore reads the log from here (the base's commitTs)
    reason: str  # e.g. "Restore test1/demo1-pitr-... (Running) into test1/demo1-restore"


@dataclass(frozen=True)
class RetentionPlan:
    policy_start_ts: int  # E: every time in [E, checkpoint] must stay restorable
    log: BackupView | None  # the active log backup the truncate applies to
    keep: tuple[BackupView, ...]  # managed Complete snapshots that stay, oldest first
    delete: tuple[BackupView, ...]  # managed Complete snapshots to delete, oldest first
    ignored: tuple[tuple[BackupView, str], ...]  # snapshots this plan neither deletes nor relies on, and why
    truncate_until: int | None
    window_before: Window
    window_after: Window  # for a refused plan: the window its actions would have left
    reasons: list[str] = field(default_factory=list)
    refused: str | None = None
    base: BackupView | None = None  # the snapshot kept as the restore point for E

    @property
    def has_actions(self) -> bool:
        return self.refused is None and (bool(self.delete) or self.truncate_until is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_start": {"ts": tso_str(self.policy_start_ts), "time": tso_iso(self.policy_start_ts)},
            "log_name": self.log.name if self.log else None,
            "base": _snap(self.base) if self.base else None,
            "keep": [_snap(v) for v in self.keep],
            "delete": [_snap(v) for v in self.delete],
            "ignored": [{"name": v.name, "phase": v.phase, "reason": why} for v, why in self.ignored],
            "truncate_until": ({"ts": tso_str(self.truncate_until), "time": tso_iso(self.truncate_until)}
                               if self.truncate_until is not None else None),
            "window_before": self.window_before.to_dict(),
            "window_after": self.window_after.to_dict(),
            "reasons": list(self.reasons),
            "refused": self.refused,
        }


def _snap(view: BackupView) -> dict[str, Any]:
    ts = view.commit_ts
    return {"name": view.name, "commit_ts": tso_str(ts) if ts else None, "commit_time": tso_iso(ts) if ts else None,
            "backup_path": view.backup_path, "prefix": view.prefix}


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("plan_retention needs a timezone-aware `now`")
    return now


def _ignore_reason(view: BackupView, managed: Ownership) -> str | None:
    if view.deleting:
        return "already being deleted"
    foreign = managed(view)
    if foreign is not None:
        return f"not managed here: kept ({foreign})"
    if view.state != State.COMPLETE:
        return f"not Complete (phase {view.phase or 'none'}): never a base, and not deleted by retention"
    if view.commit_ts is None:
        return "Complete but without commitTs: cannot be placed in time"
    if not view.is_full_cluster:
        return "not a full-cluster backup (backupType db/table or a tableFilter): never a PITR base, kept"
    return None


def active_log(logs: Sequence[BackupView]) -> BackupView | None:
    """The log backup task retention works on: the newest started one that is running or paused."""
    live = [v for v in logs if is_usable_log(v) and v.state in (State.RUNNING, State.PAUSED)]
    return max(live, key=lambda v: (v.commit_ts or 0, v.name)) if live else None


def _everything_managed(view: BackupView) -> str | None:
    return None


def plan_retention(
    snapshots: Sequence[BackupView], logs: Sequence[BackupView], *, now: datetime,
    retention: timedelta = DEFAULT_RETENTION, min_snapshots: int = 2, compact_progress_ts: int | None = None,
    managed: Ownership = _everything_managed, protections: Sequence[Protection] = (),
) -> RetentionPlan:
    """Plan one retention pass over one cluster's snapshot and log Backup views. Pure: acts on nothing."""
    _aware(now)
    if retention <= timedelta(0) or min_snapshots < 1:
        raise ValueError(f"retention must be positive and min_snapshots >= 1; got {retention}, {min_snapshots}")
    reasons: list[str] = []
    ours: list[BackupView] = []
    ignored: list[tuple[BackupView, str]] = []
    for view in sorted(snapshots, key=lambda v: (v.commit_ts or 0, v.name)):
        why = _ignore_reason(view, managed)
        if why is None:
            ours.append(view)
        else:
            ignored.append((view, why))
    window_before = recoverable_window(snapshots, logs)
    log = active_log(logs)

    def nothing(policy_start: int) -> RetentionPlan:
        return RetentionPlan(policy_start, log, tuple(ours), (), tuple(ignored), None, window_before,
                             window_before, reasons)

    if log is None:
        reasons.append("no running or paused log backup: nothing is deleted or truncated until one runs "
                       "(without it, old snapshots are the only restore points left)")
        return nothing(dt_to_tso(now - retention))
    checkpoint = log.checkpoint_ts or 0
    # E from the checkpoint when it lags: the restorable history ends at the checkpoint, so a stalled log
    # backup holds retention back instead of letting it eat into the last `retention` of what can be restored.
    policy_start = dt_to_tso(min(now, tso_to_dt(checkpoint)) - retention)
    reasons.append(f"policy: keep [{tso_iso(policy_start)}, checkpoint {tso_iso(checkpoint)}] restorable "
                   f"(retention {format_duration(retention)}, log backup {log.name})")
    for view, why in ignored:
        if why.startswith("not managed here"):
            reasons.append(f"{view.name}: {why}")
    segment = next(s for s in log_segments(ours, [log]) if s.log is log)
    s0 = segment.base_for(policy_start)
    if s0 is None:
        reasons.append(f"no Complete snapshot managed here at or before {tso_iso(policy_start)} inside the log "
                       f"range [{tso_iso(segment.min_ts)}, {tso_iso(checkpoint)}]: nothing has expired yet")
        return nothing(policy_start)
    base_ts = s0.commit_ts or 0
    reasons.append(f"base for the policy start: {s0.name} (commitTs {tso_iso(base_ts)})")

    protected = {p.base for p in protections}
    keep = [v for v in ours if (v.commit_ts or 0) >= base_ts or v.name in protected]
    delete = [v for v in ours if (v.commit_ts or 0) < base_ts and v.name not in protected]
    for p in protections:
        reasons.append(f"restore in progress: {p.reason}; its base {p.base} stays and the log is not truncated "
                       f"past {tso_iso(p.start_ts)}")
    while len(keep) < min_snapshots and delete:
        held = delete.pop()  # the newest candidate: the most useful one to hold back
        keep.append(held)
        reasons.append(f"holding back {held.name}: at least {min_snapshots} Complete snapshots must remain")
    keep.sort(key=lambda v: (v.commit_ts or 0, v.name))
    for view in delete:
        reasons.append(f"delete {view.name} (commitTs {tso_iso(view.commit_ts or 0)}, older than the base)")

    ceilings = [p.start_ts for p in protections]
    truncate_until = _truncate_point(log, base_ts, keep, ceilings, compact_progress_ts, reasons)
    window_after = _window_after(snapshots, logs, log, delete, truncate_until)
    refused = None
    # Judged on what is managed here alone: the policy must not come to rest on a backup someone else may delete.
    if (_window_after(ours, logs, log, (), None).covers(policy_start, checkpoint)
            and not _window_after(ours, logs, log, delete, truncate_until).covers(policy_start, checkpoint)):
        refused = (f"refused: the plan would leave {window_after.describe()}, which no longer covers "
                   f"[{tso_iso(policy_start)}, {tso_iso(checkpoint)}] (before: {window_before.describe()})")
        reasons.append(refused)
        delete, truncate_until = [], None
    return RetentionPlan(policy_start, log, tuple(keep), tuple(delete), tuple(ignored), truncate_until,
                         window_before, window_after, reasons, refused, s0)


def _window_after(snapshots: Sequence[BackupView], logs: Sequence[BackupView], log: BackupView,
                  delete: Sequence[BackupView], truncate_until: int | None) -> Window:
    remaining = [v for v in snapshots if all(v is not d for d in delete)]
    after_logs = [dataclasses.replace(v, truncated_until=truncate_until) if v is log and truncate_until else v
                  for v in logs]
    return window_from_segments(log_segments(remaining, after_logs))


def _truncate_point(log: BackupView, base_ts: int, keep: list[BackupView], ceilings: Sequence[int],
                    compact_progress_ts: int | None, reasons: list[str]) -> int | None:
    start, checkpoint, done = log.commit_ts or 0, log.checkpoint_ts or 0, log.truncated_until or 0
    # Never past a snapshot that stays, nor past the log a restore in progress reads.
    until = min([base_ts, *(v.commit_ts or 0 for v in keep), *ceilings])
    if compact_progress_ts is not None and compact_progress_ts < until:
        reasons.append(f"truncate capped at the compaction progress {tso_iso(compact_progress_ts)}")
        until = compact_progress_ts
    if not start < until <= checkpoint:
        reasons.append(f"no truncate: {tso_iso(until) if until else until} is not inside the log range "
                       f"({tso_iso(start)}, {tso_iso(checkpoint)}]")
        return None
    if until <= done:
        reasons.append(f"no truncate: the log is already truncated until {tso_iso(done)}")
        return None
    reasons.append(f"truncate the log until {tso_iso(until)} (ts {until})")
    return until
