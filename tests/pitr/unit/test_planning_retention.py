import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from tidb_pitr.cr.model import State
from tidb_pitr.cr.ownership import snapshot_ownership
from tidb_pitr.planning import plan_retention, retention
from tidb_pitr.planning.retention import Protection
from tidb_pitr.tso import dt_to_tso, tso_iso, tso_to_dt

from .crs import log, snapshot
from .histories import OURS, ROOT, STORAGE, histories, owned_histories, probes, restorable

NOW = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def ts(days: float) -> int:
    return dt_to_tso(NOW + timedelta(days=days))


def names(views) -> list[str]:
    return [v.name for v in views]


def test_operator_diagram():
    """Reference section 4.4: t1 < t2 <= expiredTS < t3 ... tn; delete snapshot1, keep snapshot2, truncate to t2."""
    snaps = [snapshot("snapshot1", ts(-40)), snapshot("snapshot2", ts(-32)), snapshot("snapshot3", ts(-28)),
             snapshot("snapshot4", ts(-14)), snapshot("snapshotN", ts(-2))]
    lg = log("log", ts(-45), ts(0))  # checkpoint == now: the operator's expiredTS and ours agree
    plan = plan_retention(snaps, [lg], now=NOW)
    assert plan.policy_start_ts == ts(-30)
    assert names(plan.delete) == ["snapshot1"]
    assert names(plan.keep) == ["snapshot2", "snapshot3", "snapshot4", "snapshotN"]
    assert plan.truncate_until == ts(-32)
    assert plan.refused is None and plan.has_actions and plan.log is lg
    assert plan.window_before.earliest_ts == ts(-40) and plan.window_after.earliest_ts == ts(-32)
    assert plan.window_after.latest_ts == ts(0)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["truncate_until"] == {"ts": str(ts(-32)), "time": tso_iso(ts(-32))}
    assert [d["name"] for d in data["delete"]] == ["snapshot1"]


def test_failed_snapshot_is_never_the_base():
    # The operator would count the Failed one (empty commitTs = 0) as the newest expired backup and keep it,
    # deleting snapshot2 (reference section 4.4 step 4). Only Complete snapshots count here.
    snaps = [snapshot("snapshot1", ts(-40)), snapshot("snapshot2", ts(-33)), snapshot("failed", None, "Failed"),
             snapshot("snapshot3", ts(-28)), snapshot("snapshot4", ts(-2))]
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0))], now=NOW)
    assert names(plan.delete) == ["snapshot1"] and plan.truncate_until == ts(-33)
    assert [(v.name, "not Complete" in why) for v, why in plan.ignored] == [("failed", True)]


def test_nothing_expired_yet():
    snaps = [snapshot("a", ts(-20)), snapshot("b", ts(-10))]
    plan = plan_retention(snaps, [log("log", ts(-25), ts(0))], now=NOW)
    assert plan.delete == () and plan.truncate_until is None and not plan.has_actions
    assert any("nothing has expired" in r for r in plan.reasons)


def test_keeps_two_complete_snapshots():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-35)), snapshot("failed", None, "Failed")]
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0))], now=NOW)
    assert plan.delete == () and names(plan.keep) == ["a", "b"]
    assert any("holding back a" in r for r in plan.reasons)
    assert plan.truncate_until == ts(-40)  # never past a snapshot that stays


def test_truncate_capped_by_compaction():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-20)), snapshot("d", ts(-2))]
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0))], now=NOW, compact_progress_ts=ts(-36))
    assert plan.truncate_until == ts(-36) and names(plan.delete) == ["a"]
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0))], now=NOW, compact_progress_ts=ts(-50))
    assert plan.truncate_until is None and names(plan.delete) == ["a"]


def test_already_truncated_and_log_started_late():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-20)), snapshot("d", ts(-2))]
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0), truncated=ts(-32))], now=NOW)
    assert plan.truncate_until is None and names(plan.delete) == ["a"]
    assert any("already truncated" in r for r in plan.reasons)
    # Log started after b: b is no base, nothing at or before E is in the log, so nothing expires.
    plan = plan_retention(snaps, [log("log", ts(-31), ts(0))], now=NOW)
    assert plan.delete == () and plan.truncate_until is None


def test_no_active_log_means_no_action():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-2))]
    for phase in ("Stopped", "Failed"):
        plan = plan_retention(snaps, [log("log", ts(-45), ts(-1), phase=phase)], now=NOW)
        assert not plan.has_actions and plan.log is None
    assert not plan_retention(snaps, [], now=NOW).has_actions


def test_paused_log_still_gets_retention():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-2))]
    lg = log("log", ts(-45), ts(0), phase="RetryFailed", reason="LogBackupErrorPaused", message="disk full")
    assert lg.state == State.PAUSED
    assert names(plan_retention(snaps, [lg], now=NOW).delete) == ["a"]


def test_stalled_checkpoint_holds_retention_back():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-27)), snapshot("d", ts(-2))]
    plan = plan_retention(snaps, [log("log", ts(-45), ts(-4))], now=NOW)
    # E = checkpoint - 30 d = -34 d: `b` is newer than E, so `a` stays as the base (now - 30 d would drop it).
    assert plan.policy_start_ts == ts(-34) and plan.delete == () and plan.truncate_until == ts(-40)


def test_custom_retention():
    snaps = [snapshot(f"s{i}", ts(-2 * i)) for i in range(10, 0, -1)]
    plan = plan_retention(snaps, [log("log", ts(-25), ts(0))], now=NOW, retention=7 * DAY)
    assert plan.policy_start_ts == ts(-7)
    assert names(plan.keep) == ["s4", "s3", "s2", "s1"] and plan.truncate_until == ts(-8)


def test_refuses_a_plan_that_would_shrink_the_window(monkeypatch):
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-2))]
    monkeypatch.setattr(retention, "_truncate_point", lambda *args: ts(-1))  # a bug that truncates too far
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0))], now=NOW)
    assert plan.refused and "no longer covers" in plan.refused
    assert plan.delete == () and plan.truncate_until is None and not plan.has_actions


def test_input_checks():
    with pytest.raises(ValueError):
        plan_retention([], [], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        plan_retention([], [], now=NOW, min_snapshots=0)


def _after(history, plan):
    deleted = {v.name for v in plan.delete}
    snaps = [v for v in history.snapshots if v.name not in deleted]
    logs = [dataclasses.replace(v, truncated_until=plan.truncate_until)
            if plan.truncate_until is not None and plan.log is not None and v.name == plan.log.name else v
            for v in history.logs]
    return snaps, logs


def _assert_policy_kept(history, plan) -> None:
    """Every time in [now - retention, checkpoint] that was restorable still is, after the plan (the oracle)."""
    snaps, logs = _after(history, plan)
    low = dt_to_tso(history.now - retention.DEFAULT_RETENTION)
    high = max(v.checkpoint_ts or 0 for v in history.logs)
    for point in probes(history.snapshots, history.logs, low, high, extra=[plan.policy_start_ts]):
        if restorable(point, history.snapshots, history.logs):
            assert restorable(point, snaps, logs), f"{tso_iso(point)} lost; {plan.reasons}"


@settings(max_examples=200, deadline=None)
@given(histories())
def test_retention_invariants(history):
    plan = plan_retention(history.snapshots, history.logs, now=history.now,
                          compact_progress_ts=history.compact_progress_ts)
    assert plan.refused is None  # the guard is for bugs; a correct plan never trips it
    # (a) nothing restorable in [now - retention, checkpoint] becomes unrestorable
    _assert_policy_kept(history, plan)

    # (b) only Complete snapshots are deleted, and at least two Complete ones stay
    complete_before = [v for v in history.snapshots if v.phase == "Complete" and not v.deleting]
    assert all(v.state == State.COMPLETE and not v.deleting for v in plan.delete)
    assert len(complete_before) - len(plan.delete) >= min(2, len(complete_before))
    assert {v.name for v in plan.keep} | {v.name for v in plan.delete} == {v.name for v in complete_before}

    # (c) the truncate point stays inside the log and behind every kept snapshot
    if plan.truncate_until is not None:
        lg = plan.log
        assert lg is not None and lg.commit_ts is not None and lg.checkpoint_ts is not None
        assert lg.commit_ts < plan.truncate_until <= lg.checkpoint_ts
        assert plan.truncate_until > (lg.truncated_until or 0)
        assert all(plan.truncate_until <= (v.commit_ts or 0) for v in plan.keep)
        if history.compact_progress_ts is not None:
            assert plan.truncate_until <= history.compact_progress_ts
    # and deletions never reach into the policy window
    assert all(tso_to_dt(v.commit_ts or 0) < history.now - retention.DEFAULT_RETENTION for v in plan.delete)


@settings(max_examples=200, deadline=None)
@given(owned_histories())
def test_nothing_not_ours_is_ever_planned_for_deletion(case):
    history, protections = case
    owned = snapshot_ownership("basic", STORAGE, ROOT)
    plan = plan_retention(history.snapshots, history.logs, now=history.now, managed=owned,
                          compact_progress_ts=history.compact_progress_ts, protections=protections)
    assert plan.refused is None
    for view in plan.delete:
        assert owned(view) is None, f"{view.name} is not ours: {owned(view)}"
        assert view.state == State.COMPLETE and view.is_full_cluster and not view.deleting
    protected = {p.base for p in protections}
    assert not protected & {v.name for v in plan.delete}, "a restore in progress lost its base"
    if plan.truncate_until is not None:
        assert all(plan.truncate_until <= p.start_ts for p in protections), "truncated past a restore's start"
        assert plan.base is not None and owned(plan.base) is None, "the base must be ours, or it may vanish"
    # ... and nothing in the policy that was restorable stops being so.
    _assert_policy_kept(history, plan)


def test_the_reviewed_case_a_dbas_retain_backup_in_another_bucket_is_kept():
    stamp = lambda d: (NOW + timedelta(days=d)).strftime("%Y%m%d%H%M%S")  # noqa: E731
    ours = [snapshot(f"basic-snapshot-{stamp(d)}", ts(d), labels=OURS, prefix=f"{ROOT}/snapshot-{stamp(d)}")
            for d in (-40, -32, -28, -2)]
    dba = snapshot("dba-full", ts(-38), bucket="dba-bucket", prefix="backups", spec={"cleanPolicy": "Retain"})
    same_bucket = snapshot("dba-in-our-bucket", ts(-37), prefix="backups/dba")
    plan = plan_retention([*ours, dba, same_bucket], [log("log", ts(-45), ts(0))], now=NOW,
                          managed=snapshot_ownership("basic", STORAGE, ROOT))
    assert names(plan.delete) == [ours[0].name]
    kept = {v.name: why for v, why in plan.ignored}
    assert kept["dba-full"].startswith("not managed here: kept") and "no app.kubernetes.io/managed-by" in kept[
        "dba-full"]
    assert kept["dba-in-our-bucket"].startswith("not managed here: kept")


def test_a_filtered_backup_is_never_a_base_and_never_shrinks_the_window():
    full = [snapshot("a", ts(-40)), snapshot("c", ts(-20)), snapshot("d", ts(-2))]
    filtered = snapshot("b-filtered", ts(-31), spec={"tableFilter": ["shop.*"]})
    plan = plan_retention([*full, filtered], [log("log", ts(-45), ts(0))], now=NOW)
    assert plan.base.name == "a" and plan.delete == () and plan.truncate_until == ts(-40)
    assert "b-filtered" not in plan.window_before.base_snapshots
    assert any(v.name == "b-filtered" and "not a full-cluster backup" in why for v, why in plan.ignored)


def test_a_restore_in_progress_keeps_its_base_and_its_log():
    snaps = [snapshot("a", ts(-40)), snapshot("b", ts(-32)), snapshot("c", ts(-28)), snapshot("d", ts(-2))]
    restore = Protection("a", ts(-40), "Restore tidb/r1 (Running)")
    plan = plan_retention(snaps, [log("log", ts(-45), ts(0))], now=NOW, protections=[restore])
    # "a" stays (without the restore it would go), and the log still starts at it: the restore reads from there.
    assert plan.delete == () and names(plan.keep) == ["a", "b", "c", "d"] and plan.truncate_until == ts(-40)
    assert any("restore in progress: Restore tidb/r1" in r for r in plan.reasons)
