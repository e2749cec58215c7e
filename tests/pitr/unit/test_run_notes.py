"""Run notes (planning/notes.py, runtime/notes.py): the outcome or the reason first, in a headline short enough for
the line Airflow's run header shows, the window's bounds whole in a refusal's, times in UTC with the cluster's
local time beside them where it is not UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.planning.notes import (
    HEADLINE,
    dry_run_note,
    guard_note,
    note_time,
    reason_of,
    refusal_note,
    retention_note,
    short_time,
    snapshot_note,
)
from tidb_pitr.runtime.notes import NOTE_KEY, publish_note
from tidb_pitr.tso import dt_to_tso

T = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)
TSOS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                    timezones=st.just(UTC)).map(dt_to_tso)
# What refusals say: a field, names, times, the punctuation they use (`: `, `; `), and long lists.
WORDS = st.text(st.characters(codec="ascii", categories=("L", "N"), include_characters="-_./:"), min_size=1,
                max_size=40)
MESSAGES = st.lists(WORDS, min_size=1, max_size=40).map(" ".join).flatmap(
    lambda head: st.sampled_from(["", "; the recoverable window is 2026-10-22T00:00:05Z to 2026-11-21T05:29:40Z",
                                  "; empty it or choose another target"]).map(lambda tail: head + tail))


def test_times_are_utc_with_the_local_time_where_the_cluster_is_not_on_utc() -> None:
    assert note_time(T) == "2026-11-21 05:30:00Z"
    assert note_time(dt_to_tso(T), "UTC") == "2026-11-21 05:30:00Z"
    assert note_time(T, "Asia/Shanghai") == "2026-11-21 05:30:00Z (13:30:00 Asia/Shanghai)"
    # Another day there: the date too, so nobody reads the wrong day.
    assert note_time(T, "America/Los_Angeles") == "2026-11-21 05:30:00Z (2026-11-20 21:30:00 America/Los_Angeles)"


@given(MESSAGES, st.one_of(st.none(), st.just(()), st.tuples(TSOS, TSOS)), st.sampled_from(["Refused:",
                                                                                                "Drill refused:"]))
def test_a_refusal_headline_starts_with_its_reason_and_holds_the_window_whole(
        message: str, window: Any, prefix: str) -> None:
    note = refusal_note(prefix, message, window)
    headline = note.split("\n\n")[0]
    assert len(headline) <= HEADLINE, headline
    reason = reason_of(message)
    shown = headline[len(prefix) + 1:]
    # The reason's first words, cut (with an ellipsis) only when it would push the window out of the line.
    assert headline.startswith(prefix + " ") and (reason.startswith(shown.split(" | ")[0].rstrip("…"))), headline
    if window:
        assert headline.endswith(f" | window {short_time(window[0])} to {short_time(window[1])}")
    elif window == ():
        assert headline.endswith(" | no recoverable window")
    # Nothing is lost: the whole message follows the headline when the headline does not hold it.
    assert " ".join(message.split()) in note


def test_a_dry_run_says_so_first() -> None:
    note = dry_run_note("restore test1/demo1 to 2026-11-21T05:30:00.000Z (ts 1) into test1/demo1-restore: " + "x" * 200)
    assert note.startswith("Dry run: restore test1/demo1 to ") and len(note.split("\n\n")[0]) <= HEADLINE
    assert note.split("\n\n")[1].startswith("Dry run, nothing was created or changed: restore test1/demo1")


def test_snapshot_retention_and_guard_notes_say_what_the_run_did() -> None:
    ts = dt_to_tso(T)
    snap = snapshot_note("demo1-snapshot-20261121053000", ts, 1_500_000_000, "s3://b/demo1/snapshot-20261121053000",
                         "Asia/Shanghai")
    assert snap.split("\n\n")[0] == ("Snapshot demo1-snapshot-20261121053000 Complete: 1.5 GB, data as of "
                                     "2026-11-21 05:30:00Z (13:30:00 Asia/Shanghai)")
    assert "s3://b/demo1/snapshot-20261121053000" in snap
    kept = retention_note(["s1", "s2"], 3_000_000, ts, "2026-10-22T00:00:05Z to 2026-11-21T05:29:40Z (30d5h)", "UTC")
    assert kept.split("\n\n")[0] == ("Retention: deleted 2 snapshots (3.0 MB freed), log truncated to "
                                     "2026-11-21 05:30:00Z")
    assert "s1, s2" in kept and "window now 2026-10-22T00:00:05Z" in kept
    assert retention_note([], 0, None, "w", "UTC").startswith("Retention: deleted 0 snapshots (0 B freed), log not "
                                                              "truncated")
    earliest = dt_to_tso(T - timedelta(days=30))
    guard = guard_note("warn", 754.0, (earliest, ts), "demo1-log", "UTC")
    assert guard.split("\n\n")[0] == "RPO warn, lag 12m34s | window 2026-10-22 05:30Z to 2026-11-21 05:30Z"
    assert guard_note("starting", None, None, None, "UTC").startswith("RPO starting, no checkpoint yet | no "
                                                                      "recoverable window")


class _Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_a_published_note_keeps_its_headline_apart_and_each_paragraph_on_one_line() -> None:
    ti = _Ti()
    publish_note({"ti": ti}, "Refused:  the   reason\n| window a to b\n\nthe whole\n  message")
    assert ti.pushed[NOTE_KEY] == "Refused: the reason | window a to b\n\nthe whole message"
