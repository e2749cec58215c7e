"""The drill's T against the source's GC: the comparison's read sized from the tables, refused with the numbers
when the GC would pass T before the read ends, and the right advice when a lagging log backup holds the GC."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.planning import PlanError
from tidb_pitr.planning.drill_gc import ReadCost, SourceGc, check_readable, read_cost, readable_for_comparison
from tidb_pitr.units import parse_duration

MS = 1 << 18
SECOND = 1000 * MS
NOW = 1_800_000_000_000 * MS  # a TSO in 2027


def _gc(life_s: int, safe_behind_s: int, now: int = NOW) -> SourceGc:
    return SourceGc(timedelta(seconds=life_s), now - safe_behind_s * SECOND, now)


def _cost(size: int, rate: float, headroom_s: int = 120) -> ReadCost:
    return read_cost({"shop.orders": size}, rate, timedelta(seconds=headroom_s))


def _floor_at(gc: SourceGc, later_s: float, held_at: int | None = None) -> int:
    """The oracle: the GC safe point `later_s` from now, if the GC runs then (it never moves back); a service
    safe point at `held_at` keeps it there."""
    due = gc.now_ts + int(later_s * 1000) * MS - int(gc.life_time.total_seconds() * 1000) * MS
    if held_at is not None:
        due = min(due, held_at)
    return max(gc.safe_point_ts, due)


@settings(max_examples=300, deadline=None)
@given(life_s=st.integers(1, 7 * 86400), safe_behind_s=st.integers(0, 14 * 86400), t_behind_s=st.integers(0, 86400),
       size=st.integers(0, 10**13), rate=st.floats(1e3, 1e10), headroom_s=st.integers(1, 3600))
def test_an_accepted_time_stays_readable_for_the_whole_read(life_s, safe_behind_s, t_behind_s, size, rate,
                                                           headroom_s):
    gc, cost = _gc(life_s, safe_behind_s), _cost(size, rate, headroom_s)
    ts = NOW - t_behind_s * SECOND
    accepted = readable_for_comparison(ts, gc, cost)
    read_s = cost.needed.total_seconds()
    # Sound: accepted means T is above the safe point at every moment of the read and its headroom.
    if accepted:
        assert all(_floor_at(gc, x) <= ts for x in (0, read_s / 2, read_s))
    # Not too strict: refused means the GC (run on time) reaches T before the read and its headroom end.
    else:
        assert _floor_at(gc, read_s) > ts - MS


@settings(max_examples=200, deadline=None)
@given(life_s=st.integers(600, 86400), t_behind_s=st.integers(60, 86400), size=st.integers(1, 10**13),
       rate=st.floats(1e5, 1e9))
def test_a_refusal_gives_the_numbers_and_a_life_time_that_would_do(life_s, t_behind_s, size, rate):
    gc, cost = _gc(life_s, life_s), _cost(size, rate)
    ts = NOW - t_behind_s * SECOND
    if readable_for_comparison(ts, gc, cost):
        return
    with pytest.raises(PlanError) as err:
        check_readable(ts, gc, cost, checkpoint_ts=ts + 60 * SECOND)  # a log backup 1 min ahead of T: not holding
    message = str(err.value)
    assert "in 1 table of the source" in message and "/s: about" in message and "headroom" in message
    assert "tidb_gc_life_time" in message and "Raise tidb_gc_life_time to at least" in message
    # The advised life time is enough: on a source that keeps that much history, the same T is accepted.
    advised = re.search(r"at least (\S+),", message)
    assert advised is not None
    life = parse_duration(advised.group(1))
    longer = SourceGc(life, gc.now_ts - int(life.total_seconds()) * SECOND, gc.now_ts)
    assert readable_for_comparison(ts, longer, cost)


def test_a_large_table_and_a_slow_read_are_refused_with_the_numbers():
    # 30 GB at 50 MB/s is 10 minutes of reading; 10 min of life time leaves T, 1 min back, 9 min.
    gc, cost = _gc(600, 600), _cost(30 * 10**9, 50e6)
    ts = NOW - 60 * SECOND
    with pytest.raises(PlanError) as err:
        check_readable(ts, gc, cost, checkpoint_ts=NOW - 10 * SECOND)
    assert str(err.value).startswith(
        "the comparison reads 30.0 GB in 1 table of the source at 50.0 MB/s: about 10m, plus 2m headroom = 12m; "
        "the source keeps ")
    assert "readable for only 9m" in str(err.value) and "T is 1m before the source's now" in str(err.value)
    assert "Raise tidb_gc_life_time to at least 13m" in str(err.value)
    # A small table is fine at the same T.
    check_readable(ts, gc, _cost(10**9, 50e6), checkpoint_ts=NOW - 10 * SECOND)


def test_a_log_backup_that_holds_the_gc_is_named_instead_of_the_life_time():
    # The log checkpoint is 40 min behind, the life time 10 min: the log backup's service safe point holds the
    # GC at its checkpoint, and T (1 min before the checkpoint) is below it whatever the life time.
    checkpoint = NOW - 40 * 60 * SECOND
    gc = SourceGc(timedelta(minutes=10), checkpoint - 1, NOW)
    assert gc.held_at(checkpoint)
    ts = checkpoint - 60 * SECOND
    with pytest.raises(PlanError) as err:
        check_readable(ts, gc, _cost(10**6, 50e6), checkpoint)
    message = str(err.value)
    assert "cannot read" in message and "The log backup holds the GC safe point at its checkpoint" in message
    assert "40m behind" in message and "raising tidb_gc_life_time would not help" in message
    assert "Raise tidb_gc_life_time" not in message


@given(life_s=st.integers(600, 86400), lag_s=st.integers(0, 86400))
def test_the_gc_counts_as_held_only_when_it_sits_at_the_checkpoint_beyond_the_life_time(life_s, lag_s):
    checkpoint = NOW - lag_s * SECOND
    life_ts = NOW - life_s * SECOND
    held = lag_s > life_s + 1
    # What the GC worker would save: now minus the life time, or the log backup's service safe point if lower.
    gc = SourceGc(timedelta(seconds=life_s), min(life_ts, checkpoint - 1), NOW)
    assert gc.held_at(checkpoint) == held
    assert not gc.held_at(None)


def test_a_read_rate_must_be_positive():
    with pytest.raises(ValueError, match="positive bytes per second"):
        read_cost({"a.b": 1}, 0, timedelta(minutes=2))


def test_two_reads_of_each_table_take_twice_as_long_and_say_so():
    # The drill reads each table twice at T (ADMIN CHECKSUM, then the row fingerprint): 15 GB is 10 minutes.
    gc = _gc(600, 600)
    twice = read_cost({"shop.orders": 15 * 10**9}, 50e6, timedelta(minutes=2), passes=2)
    assert twice.read_time == timedelta(minutes=10)
    with pytest.raises(PlanError) as err:
        check_readable(NOW - 60 * SECOND, gc, twice, checkpoint_ts=NOW - 10 * SECOND)
    assert str(err.value).startswith("the comparison reads 15.0 GB in 1 table twice of the source at 50.0 MB/s: "
                                     "about 10m, plus 2m headroom = 12m"), str(err.value)
