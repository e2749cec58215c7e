from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from tidb_pitr.planning import recoverable_window
from tidb_pitr.tso import dt_to_tso, tso_iso

from .crs import log, snapshot
from .histories import histories, probes, restorable

T = datetime(2026, 11, 21, tzinfo=UTC)


def ts(days: float) -> int:
    return dt_to_tso(T + timedelta(days=days))


def test_one_log():
    snaps = [snapshot("s1", ts(-10)), snapshot("s2", ts(-6)), snapshot("s3", ts(-2)),
             snapshot("bad", None, "Failed"), snapshot("run", None, "Running")]
    window = recoverable_window(snaps, [log("log", ts(-8), ts(0))])
    assert (window.earliest_ts, window.latest_ts, window.log_name) == (ts(-6), ts(0), "log")
    assert window.base_snapshots == ("s2", "s3") and window.gaps == ()
    assert window.span == timedelta(days=6)
    assert window.contains(ts(-6)) and window.contains(ts(0)) and window.contains(ts(-3))
    assert not window.contains(ts(-6) - 1) and not window.contains(ts(0) + 1)
    assert window.covers(ts(-6), ts(0)) and not window.covers(ts(-7), ts(0))


def test_truncate_moves_the_start():
    snaps = [snapshot("s1", ts(-10)), snapshot("s2", ts(-6)), snapshot("s3", ts(-2))]
    window = recoverable_window(snaps, [log("log", ts(-12), ts(0), truncated=ts(-5))])
    assert window.earliest_ts == ts(-2) and window.base_snapshots == ("s3",)
    # Truncated exactly to a snapshot's commitTs keeps that snapshot as a base (BR: start == log-min-ts).
    window = recoverable_window(snaps, [log("log", ts(-12), ts(0), truncated=ts(-6))])
    assert window.earliest_ts == ts(-6)


def test_no_log_no_base():
    window = recoverable_window([snapshot("s1", ts(-1))], [])
    assert window.earliest_ts is None and window.latest_ts is None and not window.contains(ts(-1))
    assert "no log backup" in window.notes[0]
    assert window.to_dict()["earliest"] == {"ts": None, "time": None}
    window = recoverable_window([snapshot("s1", ts(-3))], [log("log", ts(-2), ts(0))])
    assert window.earliest_ts is None and "no Complete snapshot inside the range of log backup log" in window.notes[0]
    assert "no recoverable window" in window.describe()
    pending = log("new", ts(-2), ts(0), phase="Scheduled")
    window = recoverable_window([], [pending.__class__.from_cr({**pending.raw, "status": {}})])
    assert any("has no start or checkpoint" in n for n in window.notes)


def test_stopped_log_and_its_successor_leave_a_gap():
    snaps = [snapshot("s1", ts(-20)), snapshot("s2", ts(-14)), snapshot("s3", ts(-6)), snapshot("s4", ts(-2))]
    logs = [log("old", ts(-21), ts(-10), phase="Stopped"), log("new", ts(-8), ts(0))]
    window = recoverable_window(snaps, logs)
    assert (window.earliest_ts, window.latest_ts, window.log_name) == (ts(-20), ts(0), "new")
    assert window.gaps == ((ts(-10), ts(-6)),)
    assert window.contains(ts(-10)) and not window.contains(ts(-8)) and window.contains(ts(-6))
    assert window.gap_at(ts(-7)) == (ts(-10), ts(-6)) and not window.covers(ts(-12), ts(-1))
    assert window.to_dict()["gaps"][0]["from"] == {"ts": str(ts(-10)), "time": tso_iso(ts(-10))}


def test_paused_log_ends_at_its_checkpoint():
    window = recoverable_window([snapshot("s1", ts(-5))], [log("log", ts(-6), ts(-1), phase="Paused")])
    assert window.latest_ts == ts(-1)


def test_deleting_and_foreign_storage_snapshots_are_not_bases():
    azure = snapshot("az", ts(-4), spec={"s3": None, "azblob": {"container": "c", "prefix": "p"}})
    assert list(azure.storage) == ["azblob"]
    snaps = [snapshot("gone", ts(-5), deleting=True), azure, snapshot("s3", ts(-3))]
    window = recoverable_window(snaps, [log("log", ts(-6), ts(0))])
    assert window.base_snapshots == ("s3",)


def test_to_dict_is_json_friendly():
    import json

    window = recoverable_window([snapshot("s1", ts(-5))], [log("log", ts(-6), ts(0))])
    data = json.loads(json.dumps(window.to_dict()))
    assert data["earliest"] == {"ts": str(ts(-5)), "time": "2026-11-16T00:00:00.000Z"}
    assert data["latest"]["ts"] == str(ts(0)) and data["span_seconds"] == 5 * 86400
    assert data["log_name"] == "log" and data["base_snapshots"] == ["s1"]


@settings(max_examples=150, deadline=None)
@given(histories())
def test_window_matches_the_oracle(history):
    window = recoverable_window(history.snapshots, history.logs)
    low = min(v.commit_ts or 0 for v in history.logs) - 10
    high = max(v.checkpoint_ts or 0 for v in history.logs) + 10
    for point in probes(history.snapshots, history.logs, low, high):
        assert window.contains(point) == restorable(point, history.snapshots, history.logs), tso_iso(point)
