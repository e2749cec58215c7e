"""The seeded history's snapshot times: a short history has a snapshot whatever the time of day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from tidb_sandbox.seed import snapshot_times


def test_a_day_begun_late_in_the_evening_still_has_a_snapshot():
    # A 1-day history made at 23:28 UTC starts (with the log 10 minutes in) at 23:38 the day before: no midnight
    # is an hour after that and before now, which left the e2e tests' clusters without any window.
    now = datetime(2026, 12, 1, 23, 28, tzinfo=UTC)
    start = now - timedelta(days=1) + timedelta(minutes=10)
    assert snapshot_times(start, now) == [start + timedelta(hours=1)]


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
       st.floats(min_value=0.2, max_value=45))
def test_every_history_of_a_few_hours_or_more_has_snapshots_inside_it(now, days):
    now = now.replace(tzinfo=UTC)
    start = now - timedelta(days=days) + timedelta(minutes=10)
    times = snapshot_times(start, now)
    assert times, (start, now)
    assert all(start + timedelta(hours=1) <= t < now - timedelta(minutes=5) for t in times)
    assert all(b - a == timedelta(days=2) for a, b in zip(times, times[1:], strict=False))
    if days >= 3:  # long histories keep the midnight rule
        assert all(t.hour == 0 and t.minute == 0 for t in times)
