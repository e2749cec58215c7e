import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from tidb_pitr.planning import recoverable_window
from tidb_pitr.planning.rpo import rpo_level
from tidb_pitr.planning.timeline import build_timeline, last_snapshot, window_with_causes
from tidb_pitr.tso import dt_to_tso, tso_iso

from .crs import log, snapshot
from .histories import histories

T = datetime(2026, 11, 21, tzinfo=UTC)
MONTH = timedelta(days=30)


def ts(days: float) -> int:
    return dt_to_tso(T + timedelta(days=days))


def test_a_stopped_and_replaced_log_leaves_a_gap_with_its_cause():
    snaps = [snapshot("s1", ts(-20)), snapshot("s2", ts(-14)), snapshot("s3", ts(-6)), snapshot("s4", ts(-2))]
    logs = [log("old", ts(-21), ts(-10), phase="Stopped"), log("new", ts(-8), ts(0))]
    line = build_timeline(snaps, logs, now=T, retention=MONTH)
    (gap,) = line.gaps
    assert (gap.from_ts, gap.to_ts, gap.open) == (ts(-10), ts(-6), False)
    assert gap.cause == (f"log backup old stopped at {tso_iso(ts(-10))}, no log backup ran until {tso_iso(ts(-8))}, "
                         f"and no snapshot of the next log new until {tso_iso(ts(-6))}")
    assert window_with_causes(recoverable_window(snaps, logs))["gaps"][0]["cause"] == gap.cause
    assert [c[0].log.name for c in line.coverage] == ["old", "new"]
    assert line.truncation is not None and line.truncation.name == "new"


def test_a_new_log_without_a_snapshot_is_an_open_gap():
    snaps = [snapshot("s1", ts(-6)), snapshot("s2", ts(-4))]
    logs = [log("old", ts(-7), ts(-1), phase="Stopped"), log("new", ts(-1) + 1000, ts(0))]
    line = build_timeline(snaps, logs, now=T, retention=MONTH)
    (gap,) = line.gaps
    assert gap.open and (gap.from_ts, gap.to_ts) == (ts(-1), ts(0))  # from the old checkpoint, not the new start
    assert gap.cause == f"log backup old stopped at {tso_iso(ts(-1))}, no snapshot of the next log new yet"


def test_marks_say_state_and_ownership_and_json_holds_tsos_as_strings():
    snaps = [snapshot("ours", ts(-3)), snapshot("dba", ts(-2)), snapshot("bad", None, "Failed", created=T),
             snapshot("run", None, "Running", created=T)]
    line = build_timeline(snaps, [log("log", ts(-4), ts(0), truncated=ts(-3.5))], now=T, retention=MONTH,
                          managed=lambda v: None if v.name == "ours" else "no managed-by label")
    data = json.loads(json.dumps(line.to_dict()))
    marks = {m["name"]: m for m in data["marks"]}
    assert marks["ours"]["managed"] and not marks["dba"]["managed"]
    assert marks["dba"]["not_managed_because"] == "no managed-by label"
    assert (marks["bad"]["state"], marks["run"]["state"], marks["ours"]["state"]) == ("Failed", "Running", "Complete")
    assert marks["ours"]["ts"] == str(ts(-3)) and marks["ours"]["base"] and marks["bad"]["ts"] is None
    assert data["truncation"] == {"log": "log", "ts": str(ts(-3.5)), "time": tso_iso(ts(-3.5)), "truncated": True}
    assert data["policy_start"]["ts"] == str(ts(-30)) and data["now"]["ts"] == str(ts(0))
    assert data["range"]["from"]["ts"] == str(ts(-33))  # the retention and a margin of a tenth of it


def test_rpo_levels_and_the_last_snapshot():
    assert [rpo_level(x, 600, 1800, starting=False) for x in (10, 600, 601, 1800, 1801, None)] == [
        "ok", "ok", "warn", "warn", "critical", "critical"]
    assert rpo_level(None, 600, 1800, starting=True) == "starting"
    snaps = [snapshot("a", ts(-3), created=T - timedelta(days=3)),
             snapshot("b", None, "Failed", created=T - timedelta(hours=2))]
    newest = last_snapshot(snaps, T)
    assert newest is not None and (newest["name"], newest["state"], newest["age_seconds"]) == ("b", "Failed", 7200)
    assert last_snapshot([], T) is None


@settings(max_examples=150, deadline=None)
@given(histories())
def test_the_timeline_agrees_with_the_window(history):
    window = recoverable_window(history.snapshots, history.logs)
    line = build_timeline(history.snapshots, history.logs, now=history.now, retention=MONTH, window=window)
    for gap in line.gaps:  # every gap inside the range, and never over a restorable time
        assert line.range_from <= gap.from_ts < gap.to_ts <= line.range_to
        probe = (gap.from_ts + gap.to_ts) // 2
        assert not window.contains(probe) or probe in (window.earliest_ts, window.latest_ts)
    for _, lo, hi in line.coverage:
        assert line.range_from <= lo < hi <= line.range_to
    assert sorted(m.snapshot.name for m in line.marks) == sorted(v.name for v in history.snapshots)
    if window.earliest_ts is not None:  # the window starts at a snapshot and ends at a log's checkpoint
        assert window.earliest_ts in {m.ts for m in line.marks}
        assert window.latest_ts in {lg.checkpoint_ts for lg in history.logs}
    assert len(line.window_gaps) == len(window.gaps) and all(g.cause for g in line.window_gaps)
    json.dumps(line.to_dict())
