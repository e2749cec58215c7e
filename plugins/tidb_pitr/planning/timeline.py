"""The status page's timeline of one cluster: log coverage, snapshot marks, gaps with their causes, the truncation
point, over the retention period plus a margin. Pure: the guard computes it from CR views and publishes it.

A gap is a stretch the log covers (or the time between two logs) that no restore can reach: between two
restorable segments of the window, or open at the end when the newest log has no snapshot yet (after a log
backup was stopped and replaced, until the next snapshot).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..cr.model import BackupView, State
from ..cr.names import snapshot_slot
from ..tso import dt_to_tso, tso_iso, tso_str, tso_to_dt
from .pause import resume_refused_by_gc
from .retention import active_log
from .window import Segment, Window, recoverable_window

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Ownership = Callable[[BackupView], str | None]  # None: managed here; otherwise why it is not
_LABELS = {State.COMPLETE: "Complete", State.FAILED: "Failed", State.RUNNING: "Running", State.PENDING: "Pending",
           State.INVALID: "Invalid", State.PAUSED: "Paused", State.STOPPED: "Stopped"}


def _at(ts: int | None) -> dict[str, Any] | None:
    """A TSO as the page reads it: decimal string (JavaScript numbers cannot hold a TSO) and ISO UTC."""
    return {"ts": tso_str(ts), "time": tso_iso(ts)} if ts is not None else None


@dataclass(frozen=True)
class Gap:
    from_ts: int
    to_ts: int
    cause: str
    open: bool = False  # at the end: the newest log has no snapshot yet

    def to_dict(self) -> dict[str, Any]:
        return {"from": _at(self.from_ts), "to": _at(self.to_ts), "cause": self.cause, "open": self.open}


@dataclass(frozen=True)
class Mark:
    snapshot: BackupView
    ts: int | None  # commitTs; None for a snapshot that has none (yet)
    at: datetime | None  # commitTs as a time, else when the CR was made
    managed: str | None  # None: made here for this cluster; otherwise why not
    base: bool  # a base of the recoverable window

    def to_dict(self) -> dict[str, Any]:
        view = self.snapshot
        return {"name": view.name, "ts": tso_str(self.ts) if self.ts is not None else None,
                "time": self.at.isoformat().replace("+00:00", "Z") if self.at else None,
                "state": "Deleting" if view.deleting else _LABELS.get(view.state, view.phase or "Pending"),
                "phase": view.phase, "managed": self.managed is None, "not_managed_because": self.managed,
                "base": self.base}


@dataclass(frozen=True)
class Timeline:
    range_from: int
    range_to: int
    now: int
    policy_start: int
    coverage: tuple[tuple[Segment, int, int], ...]  # each log's segment clipped to the range: (segment, from, to)
    gaps: tuple[Gap, ...]  # clipped to the range
    window_gaps: tuple[Gap, ...]  # the window's own gaps, whole, with their causes
    marks: tuple[Mark, ...]  # every snapshot of the cluster
    truncation: BackupView | None  # the live log: its log min is how far back it still reaches

    def to_dict(self) -> dict[str, Any]:
        truncation = None
        if self.truncation is not None and self.truncation.log_min_ts is not None:
            log = self.truncation
            truncation = {"log": log.name, **(_at(log.log_min_ts) or {}), "truncated": bool(log.truncated_until)}
        return {
            "range": {"from": _at(self.range_from), "to": _at(self.range_to)},
            "now": _at(self.now), "policy_start": _at(self.policy_start),
            "coverage": [{"log": seg.log.name, "state": _LABELS.get(seg.log.state, seg.log.phase),
                          "from": _at(lo), "to": _at(hi),
                          "restorable_from": _at(max(seg.start_ts, lo)) if seg.start_ts is not None else None}
                         for seg, lo, hi in self.coverage],
            "gaps": [g.to_dict() for g in self.gaps],
            "marks": [m.to_dict() for m in self.marks],
            "truncation": truncation,
        }


def _verb(log: BackupView) -> str:
    if resume_refused_by_gc(log):
        return "was paused past BR's pause GC TTL (its resume refused for good)"
    return {State.STOPPED: "stopped", State.FAILED: "failed", State.PAUSED: "is paused"}.get(log.state, "ends")


def gap_causes(window: Window) -> tuple[Gap, ...]:
    """The window's gaps, each with the logs on either side: what stopped, and what has no snapshot."""
    live = [s for s in window.segments if s.bases]
    out = []
    for a, b in window.gaps:
        before = next((s for s in live if s.end_ts == a), None)
        after = next((s for s in live if s.start_ts == b), None)
        first = f"log backup {before.log.name} {_verb(before.log)} at {tso_iso(a)}" if before else \
            f"the log ends at {tso_iso(a)}"
        then = f"no snapshot of the next log {after.log.name} until {tso_iso(b)}" if after else \
            f"nothing restorable until {tso_iso(b)}"
        if after is not None and after.min_ts > a:
            then = f"no log backup ran until {tso_iso(after.min_ts)}, and " + then
        out.append(Gap(a, b, f"{first}, {then}"))
    return tuple(out)


def _open_gap(window: Window) -> Gap | None:
    """After the window, up to the newest log's checkpoint, when that log has no snapshot yet."""
    if not window.segments:
        return None
    newest = max(window.segments, key=lambda s: (s.log.commit_ts or 0, s.log.name))
    if newest.bases:
        return None
    # From the end of the window: the time between the old log's checkpoint and the new log's start is lost too.
    start = window.latest_ts if window.latest_ts is not None else newest.min_ts
    if start >= newest.end_ts:
        return None
    if window.latest_ts is None:
        return Gap(start, newest.end_ts, f"no snapshot of log backup {newest.log.name} yet", open=True)
    last = max((s for s in window.segments if s.bases), key=lambda s: s.end_ts)
    return Gap(start, newest.end_ts, f"log backup {last.log.name} {_verb(last.log)} at {tso_iso(last.end_ts)}, "
                                     f"no snapshot of the next log {newest.log.name} yet", open=True)


def _clip(lo: int, hi: int, range_from: int, range_to: int) -> tuple[int, int] | None:
    lo, hi = max(lo, range_from), min(hi, range_to)
    return (lo, hi) if lo < hi else None


def margin_for(retention: timedelta) -> timedelta:
    """How far before the policy start the timeline begins: a tenth of the retention, at least a day."""
    return max(retention / 10, timedelta(days=1))


def build_timeline(snapshots: Sequence[BackupView], logs: Sequence[BackupView], *, now: datetime,
                   retention: timedelta, managed: Ownership = lambda view: None,
                   window: Window | None = None) -> Timeline:
    """The timeline over [now - retention - margin, now + a little]; `managed` says which snapshots are ours."""
    if now.tzinfo is None:
        raise ValueError("build_timeline needs a timezone-aware `now`")
    window = window if window is not None else recoverable_window(snapshots, logs)
    margin = margin_for(retention)
    range_from, range_to = dt_to_tso(now - retention - margin), dt_to_tso(now + margin / 20)
    coverage = []
    for seg in window.segments:
        clipped = _clip(seg.min_ts, seg.end_ts, range_from, range_to)
        if clipped:
            coverage.append((seg, *clipped))
    whole = [*gap_causes(window), *filter(None, [_open_gap(window)])]
    gaps = []
    for gap in whole:
        clipped = _clip(gap.from_ts, gap.to_ts, range_from, range_to)
        if clipped:
            gaps.append(Gap(*clipped, gap.cause, gap.open))
    bases = set(window.base_snapshots)
    marks = tuple(Mark(v, v.commit_ts, tso_to_dt(v.commit_ts) if v.commit_ts else v.created, managed(v),
                       v.name in bases) for v in sorted(snapshots, key=lambda v: (v.commit_ts or 0, v.name)))
    return Timeline(range_from, range_to, dt_to_tso(now), dt_to_tso(now - retention), tuple(coverage), tuple(gaps),
                    gap_causes(window), marks, active_log(logs))


def window_with_causes(window: Window) -> dict[str, Any]:
    """`Window.to_dict()` with a `cause` on each gap."""
    out = window.to_dict()
    for entry, gap in zip(out["gaps"], gap_causes(window), strict=True):
        entry["cause"] = gap.cause
    return out


def last_snapshot(snapshots: Sequence[BackupView], now: datetime,
                  managed: Ownership = lambda view: None) -> dict[str, Any] | None:
    """The newest snapshot CR (by creation, then commitTs): its state and how old it is."""
    if not snapshots:
        return None
    view = max(snapshots, key=lambda v: (v.created or _EPOCH, v.commit_ts or 0))
    at = tso_to_dt(view.commit_ts) if view.commit_ts else view.created
    slot = snapshot_slot(view.name)
    # `time`: when its data was taken (commitTs); `slot`: the run it belongs to (its name); one snapshot, two dates
    return {"name": view.name, "state": _LABELS.get(view.state, view.phase), "phase": view.phase,
            "time": at.isoformat().replace("+00:00", "Z") if at else None,
            "slot": slot.isoformat().replace("+00:00", "Z") if slot else None, "size_bytes": view.backup_size,
            "age_seconds": (now - at).total_seconds() if at else None, "managed": managed(view) is None,
            "message": view.message or None}
