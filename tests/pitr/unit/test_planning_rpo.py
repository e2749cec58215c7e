"""RPO levels and their announcements: each change of level is told once, in order, and nothing else is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.planning.rpo import CRITICAL, OK, RECOVERED, STARTING, WARN, announce, rpo_level, seconds_to_next_level

WARN_S, CRIT_S = 600.0, 1800.0


def _announcements(levels: list[str]) -> list[str]:
    announced, out = OK, []
    for level in levels:
        announced, what = announce(announced, level)
        if what is not None:
            out.append(what)
    return out


def test_levels_against_the_thresholds_inclusive():
    assert rpo_level(0, WARN_S, CRIT_S) == OK
    assert rpo_level(WARN_S, WARN_S, CRIT_S) == OK
    assert rpo_level(WARN_S + 0.1, WARN_S, CRIT_S) == WARN
    assert rpo_level(CRIT_S, WARN_S, CRIT_S) == WARN
    assert rpo_level(CRIT_S + 0.1, WARN_S, CRIT_S) == CRITICAL
    # No checkpoint: critical, except right after a start (the tracker has not written one yet).
    assert rpo_level(None, WARN_S, CRIT_S) == CRITICAL
    assert rpo_level(None, WARN_S, CRIT_S, starting=True) == STARTING


def test_a_frozen_checkpoint_then_a_catch_up_is_warn_critical_recovered():
    lags = [1, 300, 599, 601, 900, 1799, 1801, 2400, 3000, 5, 1]
    assert _announcements([rpo_level(lag, WARN_S, CRIT_S) for lag in lags]) == [WARN, CRITICAL, RECOVERED]


def test_easing_from_critical_to_warn_is_the_same_breach():
    assert _announcements([WARN, CRITICAL, WARN, CRITICAL, WARN, OK]) == [WARN, CRITICAL, RECOVERED]
    # Straight to critical (e.g. a triggerer that was down) is one announcement, not warn then critical.
    assert _announcements([CRITICAL, OK, STARTING, OK]) == [CRITICAL, RECOVERED]


LEVELS = st.sampled_from([OK, STARTING, WARN, CRITICAL])


@given(st.lists(LEVELS, max_size=60))
def test_each_change_is_announced_once(levels):
    said = _announcements(levels)
    # Never the same thing twice in a row; recovery only after a breach; a breach ends with one recovery.
    assert all(a != b for a, b in zip(said, said[1:], strict=False))
    breaches = [w for w in said if w != RECOVERED]
    for before, after in zip(said, said[1:], strict=False):
        if after == RECOVERED:
            assert before in (WARN, CRITICAL)
        if before == CRITICAL:
            assert after == RECOVERED
    assert said[:1] != [RECOVERED]
    # Repeating each observation (a watcher that re-checks often) changes nothing.
    assert _announcements([lv for lv in levels for _ in range(3)]) == said
    # The announcements follow the worst level seen since the last recovery.
    if not levels or all(lv in (OK, STARTING) for lv in levels):
        assert said == []
    assert len(breaches) <= len(levels)


@given(st.floats(min_value=0, max_value=4000, allow_nan=False))
def test_the_next_crossing_is_where_the_level_changes(lag):
    due = seconds_to_next_level(lag, WARN_S, CRIT_S)
    if lag > CRIT_S:
        assert due is None
    else:
        assert due is not None and due > 0
        assert rpo_level(lag + due, WARN_S, CRIT_S) != rpo_level(lag, WARN_S, CRIT_S)
        assert rpo_level(lag + due - 0.01, WARN_S, CRIT_S) == rpo_level(lag, WARN_S, CRIT_S)
