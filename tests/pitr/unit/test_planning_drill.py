"""The drill's pure planning: the time it picks, the tables it selects, how it compares checksums."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.planning import PlanError, recoverable_window
from tidb_pitr.planning.drill import (
    GcState,
    TableSum,
    check_filter,
    compare,
    pick_random,
    pick_recent,
    restorable_ranges,
    select_tables,
    verifiable,
)

from .histories import histories, restorable

MS = 1 << 18
MINUTE = 60_000 * MS


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(0, 2**32))
def test_a_random_drill_time_is_always_restorable(history, seed):
    window = recoverable_window(history.snapshots, history.logs)
    if window.earliest_ts is None:
        with pytest.raises(PlanError, match="no recoverable window"):
            pick_random(window, random.Random(seed))
        return
    ts = pick_random(window, random.Random(seed))
    assert window.contains(ts) and window.gap_at(ts) is None
    assert restorable(ts, history.snapshots, history.logs)  # the oracle shares no code with the planner


def test_random_times_spread_over_every_range_by_length():
    from tidb_pitr.planning.window import Window

    # One gap: [0, 10 min] and [40 min, 100 min] are restorable.
    window = Window(earliest_ts=0, latest_ts=100 * MINUTE, log_name="l", base_snapshots=("s",),
                    gaps=((10 * MINUTE, 40 * MINUTE),), notes=())
    assert restorable_ranges(window) == [(0, 10 * MINUTE), (40 * MINUTE, 100 * MINUTE)]
    rng = random.Random(7)
    picks = [pick_random(window, rng) for _ in range(2000)]
    assert not any(10 * MINUTE < p < 40 * MINUTE for p in picks)
    early = sum(p <= 10 * MINUTE for p in picks) / len(picks)
    assert 0.10 < early < 0.20  # 10 of the 70 restorable minutes


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(0, 120), st.integers(1, 600))
def test_a_recent_drill_time_is_restorable_readable_and_before_the_checkpoint(history, margin_s, life_min):
    window = recoverable_window(history.snapshots, history.logs)
    live = [v for v in history.logs if v.phase == "Running" and v.checkpoint_ts]
    if not live:
        return
    checkpoint = max(v.checkpoint_ts for v in live)
    now_ms = checkpoint // MS + 30_000
    gc = GcState(timedelta(minutes=life_min), (now_ms - life_min * 60_000) * MS)
    margin, headroom = timedelta(seconds=margin_s), timedelta(minutes=2)
    try:
        ts = pick_recent(window, checkpoint, gc, margin=margin, headroom=headroom)
    except PlanError as refused:
        # Refused only for a reason it names: not in the window, or not readable long enough.
        assert "recoverable window" in str(refused) or "GC safe point" in str(refused)
        return
    assert window.contains(ts) and ts <= checkpoint - int(margin.total_seconds() * 1000) * MS
    assert restorable(ts, history.snapshots, history.logs)
    assert verifiable(ts, gc, headroom) and ts - gc.safe_point_ts >= 2 * MINUTE


def test_a_log_too_far_behind_for_the_gc_life_time_is_refused_with_the_fix():
    from tidb_pitr.planning.window import Window

    window = Window(earliest_ts=0, latest_ts=1000 * MINUTE, log_name="l", base_snapshots=("s",), gaps=(), notes=())
    gc = GcState(timedelta(minutes=10), 1005 * MINUTE)  # now is 1015 min: the checkpoint is 15 min behind
    refusal = r"GC safe point .*\(tidb_gc_life_time 10m\) is past it.*raise tidb_gc_life_time"
    with pytest.raises(PlanError, match=refusal):
        pick_recent(window, 1000 * MINUTE, gc, margin=timedelta(minutes=1), headroom=timedelta(minutes=2))
    assert pick_recent(window, 1000 * MINUTE, GcState(timedelta(minutes=30), 980 * MINUTE),
                       margin=timedelta(minutes=1), headroom=timedelta(minutes=2)) == 999 * MINUTE


@pytest.mark.parametrize(("rules", "expected"), [
    (["*.*"], ["crm.events", "shop.orders", "shop.tmp_x", "test.t"]),
    (["shop.*"], ["shop.orders", "shop.tmp_x"]),
    (["*.*", "!shop.tmp*"], ["crm.events", "shop.orders", "test.t"]),
    (["!shop.tmp*", "*.*"], ["crm.events", "shop.orders", "shop.tmp_x", "test.t"]),  # the last match decides
    (["SHOP.Orders"], ["shop.orders"]),
])
def test_table_filter_rules_select_as_br_does(rules, expected):
    names = ["shop.orders", "shop.tmp_x", "crm.events", "test.t", "mysql.user", "INFORMATION_SCHEMA.TABLES"]
    assert select_tables(names, rules) == expected


def test_bad_filter_rules_are_named():
    assert check_filter(["shop", "a.b.c", "!x.*", "db."]) == [
        "'shop' must be 'db.table' (wildcards * ? [..] allowed, '!' in front excludes)",
        "'a.b.c' must be 'db.table' (wildcards * ? [..] allowed, '!' in front excludes)",
        "'db.' must be 'db.table' (wildcards * ? [..] allowed, '!' in front excludes)",
    ]


sums = st.builds(TableSum, st.integers(0, 2**64 - 1), st.integers(0, 10**6), st.integers(0, 10**9),
                 st.one_of(st.none(), st.integers(100, 200)), st.one_of(st.none(), st.integers(0, 5)),
                 st.one_of(st.none(), st.integers(0, 2**32 - 1)))
tables = st.dictionaries(st.sampled_from(["a.x", "a.y", "b.z", "c.w"]), sums, max_size=4)


@given(tables)
def test_a_restore_equal_to_the_source_passes_or_says_what_it_could_not_verify(source):
    result = compare(source, dict(source))
    assert not result.failed and not result.differences()
    assert result.passed == (not result.unverified)
    assert {t for t, _ in result.methods} == set(source)


@given(tables, tables)
def test_any_difference_fails_and_is_named_and_nothing_passes_unverified(source, target):
    result = compare(source, target)
    for table in set(source) ^ set(target):
        assert table in " ".join(result.differences())
    for table in set(source) & set(target):
        s, t = source[table], target[table]
        same_id = s.table_id is None or t.table_id is None or s.table_id == t.table_id
        fingerprinted = s.fingerprinted and t.fingerprinted
        if result.passed:
            assert fingerprinted or same_id, "passed needs a comparison a changed value breaks"
            if fingerprinted:
                assert (s.rows, s.rows_crc32_xor) == (t.rows, t.rows_crc32_xor)
            if same_id:
                assert s.crc64_xor == t.crc64_xor


def test_a_table_with_a_new_id_and_no_fingerprint_is_not_verified_never_passed():
    source = {"a.x": TableSum(1, 10, 100, 101), "a.y": TableSum(5, 3, 30, 102)}
    result = compare(source, {"a.x": TableSum(2, 10, 100, 140), "a.y": TableSum(5, 3, 30, 102)})
    assert not result.passed and not result.failed
    assert result.unverified[0][0] == "a.x" and "table ID 101 at the source, 140 restored" in result.unverified[0][1]
    assert dict(result.methods) == {"a.x": "Total_kvs and Total_bytes only", "a.y": "ADMIN CHECKSUM (same table ID)"}


def test_a_new_id_is_compared_by_the_row_fingerprint_which_sees_a_same_width_change():
    source = {"a.x": TableSum(1, 10, 100, 101, rows=10, rows_crc32_xor=77)}
    equal = compare(source, {"a.x": TableSum(2, 10, 100, 140, rows=10, rows_crc32_xor=77)})
    assert equal.passed and equal.how() == "1 by row fingerprint"
    changed = compare(source, {"a.x": TableSum(2, 10, 100, 140, rows=10, rows_crc32_xor=78)})
    assert changed.failed and changed.first_differences() == (
        "a.x: row fingerprint 10 rows, BIT_XOR(CRC32) 77 at the source, 10 rows, 78 restored")
