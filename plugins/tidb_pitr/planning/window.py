"""The recoverable window: which times a PITR restore can reach, from the snapshot and log backup CRs.

A time T is restorable when some log backup L and some Complete snapshot S satisfy
`log_min(L) <= commitTs(S) <= T <= checkpoint(L)`, where `log_min` is the log's start raised by its last
truncate (reference section 9.5). One log gives one segment, [oldest base, checkpoint]; a stopped log and
its successor give two, with a gap between them when the new log had no snapshot yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..cr.model import BackupView, State
from ..tso import tso_iso, tso_str, tso_to_dt
from ..units import format_duration


@dataclass(frozen=True)
class Segment:
    """What one log backup makes restorable: [start_ts, end_ts], start_ts being its oldest base snapshot."""

    log: BackupView
    min_ts: int  # the log's start raised by its last truncate
    end_ts: int  # its checkpoint
    bases: tuple[BackupView, ...]  # usable base snapshots, oldest first

    @property
    def start_ts(self) -> int | None:
        return self.bases[0].commit_ts if self.bases else None

    def base_for(self, ts: int) -> BackupView | None:
        """The newest base at or before `ts` (the shortest log replay), if `ts` is inside this segment."""
        if ts > self.end_ts:
            return None
        usable = [b for b in self.bases if b.commit_ts is not None and b.commit_ts <= ts]
        return usable[-1] if usable else None


def _time(ts: int | None) -> dict[str, Any]:
    return {"ts": tso_str(ts), "time": tso_iso(ts)} if ts is not None else {"ts": None, "time": None}


@dataclass(frozen=True)
class Window:
    earliest_ts: int | None
    latest_ts: int | None
    log_name: str | None  # the log backup whose checkpoint is `latest_ts`
    base_snapshots: tuple[str, ...]  # every snapshot usable as a PITR base, oldest first
    gaps: tuple[tuple[int, int], ...]  # (a, b): times strictly between a and b are not restorable
    notes: tuple[str, ...]
    segments: tuple[Segment, ...] = field(default=(), repr=False, compare=False)

    def contains(self, ts: int) -> bool:
        if self.earliest_ts is None or self.latest_ts is None:
            return False
        return self.earliest_ts <= ts <= self.latest_ts and not any(a < ts < b for a, b in self.gaps)

    def covers(self, start_ts: int, end_ts: int) -> bool:
        """Every time in [start_ts, end_ts] is restorable (an empty range is covered)."""
        if start_ts > end_ts:
            return True
        return self.contains(start_ts) and self.contains(end_ts) and not any(
            a < end_ts and b > start_ts for a, b in self.gaps
        )

    def gap_at(self, ts: int) -> tuple[int, int] | None:
        return next(((a, b) for a, b in self.gaps if a < ts < b), None)

    @property
    def span(self) -> timedelta:
        if self.earliest_ts is None or self.latest_ts is None:
            return timedelta(0)
        return tso_to_dt(self.latest_ts) - tso_to_dt(self.earliest_ts)

    def describe(self) -> str:
        """`[2026-10-22T00:00:05.000Z (ts ...), 2026-11-21T05:29:40.000Z (ts ...)]`, gaps and notes included."""
        if self.earliest_ts is None or self.latest_ts is None:
            return "no recoverable window (" + "; ".join(self.notes or ("no backups",)) + ")"
        text = (f"[{tso_iso(self.earliest_ts)} (ts {self.earliest_ts}), "
                f"{tso_iso(self.latest_ts)} (ts {self.latest_ts})]")
        if self.gaps:
            text += " with gaps " + ", ".join(f"({tso_iso(a)}, {tso_iso(b)})" for a, b in self.gaps)
        return text

    def brief(self) -> str:
        """`2026-10-22T00:00:05Z to 2026-11-21T05:29:40Z (30d5h), gap 2026-11-02T10:00:00Z to ...`: no TSOs."""
        if self.earliest_ts is None or self.latest_ts is None:
            return "empty (" + "; ".join(self.notes or ("no backups",)) + ")"
        text = f"{_plain(self.earliest_ts)} to {_plain(self.latest_ts)} ({format_duration(self.span)})"
        for a, b in self.gaps:
            text += f", gap {_plain(a)} to {_plain(b)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly; TSOs as strings, since JavaScript numbers cannot hold them exactly."""
        return {
            "earliest": _time(self.earliest_ts),
            "latest": _time(self.latest_ts),
            "span_seconds": self.span.total_seconds(),
            "log_name": self.log_name,
            "base_snapshots": list(self.base_snapshots),
            "gaps": [{"from": _time(a), "to": _time(b)} for a, b in self.gaps],
            "notes": list(self.notes),
        }


def _plain(ts: int) -> str:
    return tso_to_dt(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_usable_snapshot(view: BackupView) -> bool:
    """A PITR base: a Complete full-cluster snapshot (db, table or filtered backups never are)."""
    return (not view.is_log and view.is_full_cluster and view.state == State.COMPLETE
            and view.commit_ts is not None and not view.deleting)


def is_usable_log(view: BackupView) -> bool:
    return view.is_log and view.commit_ts is not None and view.checkpoint_ts is not None and not view.deleting


def _provider(view: BackupView) -> str | None:
    return next(iter(view.storage), None)


def log_segments(snapshots: Iterable[BackupView], logs: Iterable[BackupView],
                 notes: list[str] | None = None) -> list[Segment]:
    """One Segment per usable log backup (bases may be empty), ordered by log start."""
    notes = notes if notes is not None else []
    usable = sorted((s for s in snapshots if is_usable_snapshot(s)), key=lambda s: (s.commit_ts or 0, s.name))
    segments = []
    for log in sorted(logs, key=lambda v: (v.commit_ts or 0, v.name)):
        if not is_usable_log(log):
            if log.is_log and not log.deleting:
                notes.append(f"log backup {log.name} ({log.phase or 'no status'}) has no start or checkpoint yet")
            elif log.deleting:
                notes.append(f"log backup {log.name} is being deleted and is not counted")
            continue
        min_ts, end_ts = log.log_min_ts or 0, log.checkpoint_ts or 0
        if end_ts < min_ts:
            notes.append(f"log backup {log.name} is truncated past its checkpoint: nothing in it is restorable")
        # BR reads the snapshot with the log storage's credentials: other storage kinds cannot be bases.
        bases = tuple(s for s in usable if min_ts <= (s.commit_ts or 0) <= end_ts and _provider(s) == _provider(log))
        segments.append(Segment(log=log, min_ts=min_ts, end_ts=end_ts, bases=bases))
    return segments


def window_from_segments(segments: Sequence[Segment], notes: Sequence[str] = ()) -> Window:
    notes = list(notes)
    if not segments:
        notes.append("no log backup has started: point-in-time recovery needs a running log backup")
        return Window(None, None, None, (), (), tuple(notes))
    live = [s for s in segments if s.bases]
    for seg in segments:
        if not seg.bases:
            notes.append(f"no Complete snapshot inside the range of log backup {seg.log.name} "
                         f"[{tso_iso(seg.min_ts)}, {tso_iso(seg.end_ts)}]: take a snapshot after the log started")
    if not live:
        return Window(None, None, None, (), (), tuple(notes), tuple(segments))
    ordered = sorted(live, key=lambda s: (s.start_ts or 0, s.end_ts))
    merged: list[list[int]] = []
    for seg in ordered:
        start = seg.start_ts or 0
        if merged and start <= merged[-1][1] + 1:  # touching or overlapping: no TSO between them is lost
            merged[-1][1] = max(merged[-1][1], seg.end_ts)
        else:
            merged.append([start, seg.end_ts])
    gaps = tuple((merged[i][1], merged[i + 1][0]) for i in range(len(merged) - 1))
    last = max(live, key=lambda s: (s.end_ts, s.log.commit_ts or 0))
    bases = sorted({b.name: b for seg in live for b in seg.bases}.values(), key=lambda b: (b.commit_ts or 0, b.name))
    if gaps:
        notes.append(f"{len(gaps)} gap(s) between log backups: times inside a gap cannot be restored")
    return Window(
        earliest_ts=merged[0][0], latest_ts=merged[-1][1], log_name=last.log.name,
        base_snapshots=tuple(b.name for b in bases), gaps=gaps, notes=tuple(notes), segments=tuple(segments),
    )


def recoverable_window(snapshots: Sequence[BackupView], logs: Sequence[BackupView]) -> Window:
    """The times a PITR restore can reach with these CRs (one source cluster's snapshots and log backups)."""
    notes: list[str] = []
    return window_from_segments(log_segments(snapshots, logs, notes), notes)
