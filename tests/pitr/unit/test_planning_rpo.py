"""RPO levels and their announcements: each change of level is told once, in order, and nothing else is; a
maintenance pause is one notice, and a breach again once it outlives its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.planning.rpo import (
    CRITICAL,
    MAINTENANCE,
    OK,
    RECOVERED,
    STARTING,
    WARN,
    announce,
    held_level,
    rpo_level,
    seconds_to_next_level,
)

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


PAUSED_AT = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)


def test_a_maintenance_pause_is_a_notice_until_its_end_then_the_breach():
    until = PAUSED_AT + timedelta(hours=1)
    at = lambda minutes: PAUSED_AT + timedelta(minutes=minutes)  # noqa: E731
    assert held_level(WARN, until, at(30)) == held_level(CRITICAL, until, at(59)) == MAINTENANCE
    assert held_level(OK, until, at(5)) == OK and held_level(STARTING, until, at(5)) == STARTING  # no breach to hold
    assert held_level(CRITICAL, until, at(60)) == CRITICAL and held_level(WARN, None, at(1)) == WARN
    # Paused at a lag of 0: a notice past warn, nothing past critical, critical once the hour is over, recovered.
    lags = [(0, 60), (11, 60), (31, 60), (59, 60), (61, 60), (62, 60), (63, None), (64, None)]
    levels = [held_level(rpo_level(m * 60 if paused else 5, WARN_S, CRIT_S), until if paused else None, at(m))
              for m, paused in ((m, u is not None) for m, u in lags)]
    assert _announcements(levels) == [MAINTENANCE, CRITICAL, RECOVERED]
    # Resumed in time (the guard's job): the notice, then recovered; a breach before the pause: still one notice.
    assert _announcements([OK, MAINTENANCE, MAINTENANCE, OK]) == [MAINTENANCE, RECOVERED]
    assert _announcements([WARN, CRITICAL, MAINTENANCE, MAINTENANCE, CRITICAL]) == [WARN, CRITICAL, MAINTENANCE,
                                                                                    CRITICAL]


@given(st.integers(10, 23 * 60), st.lists(st.integers(0, 30 * 60), min_size=1, max_size=40),
       st.one_of(st.none(), st.integers(0, 30 * 60)))
def test_a_pause_never_pages_while_it_lasts_and_pages_once_it_is_overdue(pause_minutes, offsets, resumed):
    """Observations (minutes after the pause; the checkpoint frozen there until `resumed`): nothing but one notice is
    announced before the pause's end, and the first observation after it, still paused past warn, is a breach."""
    until = PAUSED_AT + timedelta(minutes=pause_minutes)
    announced, said = OK, []
    for minutes in sorted(offsets):
        paused = resumed is None or minutes < resumed
        level = held_level(rpo_level(minutes * 60.0 if paused else 5.0, WARN_S, CRIT_S), until if paused else None,
                           PAUSED_AT + timedelta(minutes=minutes))
        announced, what = announce(announced, level)
        said.append((minutes, paused, what))
    told = [(m, w) for m, _, w in said if w is not None]
    assert [w for m, w in told if m < pause_minutes and w != RECOVERED] in ([], [MAINTENANCE]), said
    overdue = [m for m, paused, _ in said if paused and m >= pause_minutes and m * 60 > WARN_S]
    if overdue:
        assert (overdue[0], WARN if overdue[0] * 60 <= CRIT_S else CRITICAL) in told, said
    assert all(a[1] != b[1] for a, b in zip(told, told[1:], strict=False)), said  # never the same twice in a row
