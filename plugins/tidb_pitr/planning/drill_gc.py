"""Restore drills against the source's GC, the pure part: how long the comparison reads the source at T, and
whether the source keeps T readable that long. No I/O.

The drill compares every table of the restore with the source read as of T: full scans of the source at T
(ADMIN CHECKSUM TABLE reads every row and index, `pkg/executor/checksum.go`; so do row fingerprints). Each
coprocessor request checks T against the GC safe point (client-go `KVStore.CheckVisibility`, TiDB's 9006), so
the whole read must end before the safe point passes T, or the drill ends "not verified". The safe point is
now minus tidb_gc_life_time at the latest GC run, or lower while a service safe point holds it (a log
backup's `log-backup-coordinator`, at its checkpoint), and it never moves back. So T, when above the safe
point, stays readable for `T - (now - life time)` from now on; the comparison needs the source's bytes over
the read rate, plus headroom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..tso import LOGICAL_BITS, tso_iso
from ..units import format_bytes, format_duration
from .restore import PlanError

# Below this the safe point counts as "at the log checkpoint" (TSOs of the two come from different clocks:
# the advancer's service safe point and the CR's status copy of the checkpoint).
HELD_SLACK = timedelta(seconds=1)


def _ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


def _between(later_ts: int, earlier_ts: int) -> timedelta:
    return timedelta(milliseconds=_ms(later_ts) - _ms(earlier_ts))


@dataclass(frozen=True)
class SourceGc:
    """The source's GC as the plan reads it: its life time, the safe point now, and its now (its own TSO)."""

    life_time: timedelta
    safe_point_ts: int
    now_ts: int

    def room(self, ts: int) -> timedelta:
        """How long from now a read at `ts` stays above the safe point (negative: already below it). Once the
        safe point is at or below `ts`, the GC passes `ts` when now minus the life time does: assumed to run on
        time (tidb_gc_run_interval may give more, never less), and a service safe point does not keep `ts`
        readable either unless it is below `ts` already."""
        if self.safe_point_ts > ts:
            return _between(ts, self.safe_point_ts)
        return _between(ts, self.now_ts) + self.life_time

    def held_at(self, checkpoint_ts: int | None) -> bool:
        """Whether a service safe point holds the GC at the log checkpoint: the safe point is behind now minus
        the life time (the worker would have gone further) and at or past the checkpoint. Then every time a
        drill could restore to is below it, and a longer tidb_gc_life_time does not bring it back."""
        if checkpoint_ts is None:
            return False
        behind_life = _between(self.now_ts, self.safe_point_ts) > self.life_time + HELD_SLACK
        return behind_life and _between(self.safe_point_ts, checkpoint_ts) >= -HELD_SLACK


@dataclass(frozen=True)
class ReadCost:
    """What the comparison reads on the source and how long that takes at the given rate."""

    tables: int
    size: int  # bytes: DATA_LENGTH + INDEX_LENGTH of the compared tables
    rate: float  # bytes per second
    headroom: timedelta
    passes: int = 1  # full reads of each table: ADMIN CHECKSUM TABLE and the row fingerprint are one each

    @property
    def read_time(self) -> timedelta:
        return timedelta(seconds=self.size * self.passes / self.rate)

    @property
    def needed(self) -> timedelta:
        return self.read_time + self.headroom

    def describe(self) -> str:
        tables = f"{self.tables} table" + ("" if self.tables == 1 else "s")
        times = "" if self.passes == 1 else " twice" if self.passes == 2 else f" {self.passes} times"
        return (f"the comparison reads {format_bytes(self.size)} in {tables}{times} of the source at "
                f"{format_bytes(self.rate)}/s: about {format_duration(self.read_time)}, plus "
                f"{format_duration(self.headroom)} headroom = {format_duration(self.needed)}")

    def to_dict(self) -> dict[str, float | int]:
        return {"tables": self.tables, "bytes": self.size, "passes": self.passes, "rate_bytes_per_second": self.rate,
                "read_seconds": self.read_time.total_seconds(), "needed_seconds": self.needed.total_seconds()}


def read_cost(sizes: Mapping[str, int], rate: float, headroom: timedelta, passes: int = 1) -> ReadCost:
    """The cost of reading these tables (`db.table` -> bytes) `passes` times at `rate` bytes/s, plus `headroom`."""
    if rate <= 0:
        raise ValueError(f"the read rate must be positive bytes per second, got {rate!r}")
    return ReadCost(len(sizes), sum(max(size, 0) for size in sizes.values()), rate, headroom, max(1, passes))


def readable_for_comparison(ts: int, gc: SourceGc, cost: ReadCost) -> bool:
    """Whether the source stays readable at `ts` for the whole comparison plus headroom."""
    return gc.room(ts) >= cost.needed


def check_readable(ts: int, gc: SourceGc, cost: ReadCost, checkpoint_ts: int | None) -> None:
    """PlanError with the numbers when the source will not stay readable at `ts` for the comparison; the advice
    depends on who holds the safe point: a log backup that lags (fix its lag), or the life time (raise it)."""
    if readable_for_comparison(ts, gc, cost):
        return
    room = gc.room(ts)
    readable = (f"the source keeps {tso_iso(ts)} readable for only {format_duration(max(room, timedelta(0)))}"
                if room > timedelta(0) else f"the source cannot read {tso_iso(ts)} at all")
    facts = (f"{readable} (GC safe point {tso_iso(gc.safe_point_ts)}, tidb_gc_life_time "
             f"{format_duration(gc.life_time)}, T is {format_duration(_between(gc.now_ts, ts))} before the "
             f"source's now)")
    if gc.held_at(checkpoint_ts):
        assert checkpoint_ts is not None
        lag = _between(gc.now_ts, checkpoint_ts)
        raise PlanError(
            f"{cost.describe()}; {facts}. The log backup holds the GC safe point at its checkpoint "
            f"{tso_iso(checkpoint_ts)} ({format_duration(lag)} behind, more than tidb_gc_life_time): every time "
            f"a drill can restore to is below it, and raising tidb_gc_life_time would not help (the safe point "
            f"never moves back). Fix the log backup's lag first")
    needed_life = timedelta(minutes=math.ceil((_between(gc.now_ts, ts) + cost.needed) / timedelta(minutes=1)))
    raise PlanError(
        f"{cost.describe()}; {facts}. Raise tidb_gc_life_time to at least {format_duration(needed_life)}, "
        f"compare fewer tables (drill.tables), or lower the log backup's lag")
