"""A BackupSchedule seen from here: which DAGs a managed cluster gets, its config errors, what its GC deletes
next (upstream's rules, mirrored), and the hazards the guard warns of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.config import ClusterConfig
from tidb_pitr.cr.model import BackupView
from tidb_pitr.factory import dags_for_cluster
from tidb_pitr.planning.schedule import gc_hazards, go_duration, hazards, made_by_schedule, next_gc
from tidb_pitr.tso import dt_to_tso

from .crs import backup_cr
from .test_config import cluster, problems

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LABELS = {"app.kubernetes.io/managed-by": "backup-schedule-operator", "tidb.pingcap.com/backup-schedule": "bs"}
LOG_TEMPLATE = {"backupMode": "log", "br": {"cluster": "basic"}}


def _at(hours_ago: float) -> int:
    return dt_to_tso(NOW - timedelta(hours=hours_ago))


def _snap(name: str, hours_ago: float, **kw: object) -> BackupView:
    return BackupView.from_cr(backup_cr(name, commit_ts=_at(hours_ago), labels=LABELS, **kw))


def _log(start_hours_ago: float, checkpoint_hours_ago: float = 0.0) -> BackupView:
    return BackupView.from_cr(backup_cr("log-bs", mode="log", phase="Running", commit_ts=_at(start_hours_ago),
                                        checkpoint_ts=_at(checkpoint_hours_ago), labels=LABELS,
                                        created=NOW - timedelta(hours=start_hours_ago)))


def test_a_managed_cluster_gets_no_snapshot_or_retention_dag_and_a_guard_that_starts_nothing() -> None:
    config = ClusterConfig.model_validate(cluster(managed_by="backup_schedule", backup_schedule="bs"))
    dags = {d.dag_id.rsplit("_", 1)[-1] if not d.dag_id.endswith("rpo_alert") else "rpo_alert": d
            for d in dags_for_cluster(config)}
    assert sorted(dags) == ["check", "guard", "restore", "rpo_alert"]
    guard = dags["guard"]
    assert sorted(guard.task_ids) == ["find_log_backup", "measure_rpo", "publish_status", "publish_window",
                                      "schedule_report"]
    own = ClusterConfig.model_validate(cluster())
    assert {"snapshot", "retention"} <= {d.dag_id.rsplit("_", 1)[-1] for d in dags_for_cluster(own)}


def test_managed_by_errors_name_the_field(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, {"clusters": [cluster(api_group="br.pingcap.com", managed_by="backup_schedule",
                                                         backup_schedule="bs")]})
    assert "managed_by: TiDB Operator v2 (br.pingcap.com) has no BackupSchedule controller" in problem
    [problem] = problems(tmp_path, {"clusters": [cluster(managed_by="backup_schedule")]})
    assert "backup_schedule: is required with managed_by: backup_schedule" in problem
    [problem] = problems(tmp_path, {"clusters": [cluster(backup_schedule="bs")]})
    assert "backup_schedule: applies only with managed_by: backup_schedule" in problem
    [problem] = problems(tmp_path, {"clusters": [cluster(managed_by="schedule")]})
    assert "managed_by" in problem and "'airflow'" in problem and "'backup_schedule'" in problem
    [problem] = problems(tmp_path, {"clusters": [cluster(managed_by="backup_schedule", backup_schedule="bs",
                                                         compaction=True)]})
    assert "compaction: must be false with managed_by: backup_schedule" in problem


def test_go_durations_as_the_operator_reads_them() -> None:
    assert go_duration("3h") == timedelta(hours=3)
    assert go_duration("1h30m") == timedelta(minutes=90)
    assert go_duration("1.5h") == timedelta(minutes=90)
    assert go_duration("30d") is None and go_duration("") is None


def test_max_reserved_time_keeps_the_newest_expired_snapshot_and_truncates_to_it() -> None:
    snaps = [_snap("a", 10), _snap("b", 6), _snap("c", 2)]
    gc = next_gc({"maxReservedTime": "4h"}, [*snaps, _log(12)], NOW)
    assert [v.name for v in gc.delete] == ["a"]
    assert gc.truncate_until == snaps[1].commit_ts  # b: the base of the oldest restorable time
    # The log started after b: no truncate (outside the log's range), a still goes.
    gc = next_gc({"maxReservedTime": "4h"}, [*snaps, _log(5)], NOW)
    assert [v.name for v in gc.delete] == ["a"] and gc.truncate_until is None
    # Only one expired snapshot: it is the base, nothing goes.
    assert next_gc({"maxReservedTime": "8h"}, [*snaps, _log(12)], NOW).delete == []


def test_without_a_log_every_snapshot_older_than_max_reserved_time_goes() -> None:
    snaps = [_snap("a", 10), _snap("b", 6), _snap("c", 2)]
    assert [v.name for v in next_gc({"maxReservedTime": "4h"}, snaps, NOW).delete] == ["a", "b"]


def test_max_backups_counts_the_log_backup_and_deletes_the_oldest() -> None:
    snaps = [_snap("a", 10, created=NOW - timedelta(hours=10)), _snap("b", 2, created=NOW - timedelta(hours=2))]
    gc = next_gc({"maxBackups": 2}, [*snaps, _log(12)], NOW)
    assert [v.name for v in gc.delete] == ["log-bs"]  # tidb-operator#6320
    assert next_gc({"maxBackups": 2, "maxReservedTime": "24h"}, [*snaps, _log(12)], NOW).rule == "maxReservedTime"


def test_hazards_of_a_spec() -> None:
    [warning] = hazards({"maxBackups": 5, "logBackupTemplate": LOG_TEMPLATE}, retention=timedelta(hours=1)) [:1]
    assert "tidb-operator#6320" in warning and "deletes it" in warning
    [warning] = hazards({"maxReservedTime": "3h", "logBackupTemplate": LOG_TEMPLATE}, retention=timedelta(days=30))
    assert "tidb-operator#6068" in warning and "30 days" in warning
    assert hazards({"maxReservedTime": "72h", "logBackupTemplate": LOG_TEMPLATE}, retention=timedelta(days=1)) == []
    [warning] = hazards({"maxReservedTime": "3h"}, retention=timedelta(hours=1))
    assert "no logBackupTemplate" in warning


def test_only_the_schedules_labels_make_a_backup_the_schedules() -> None:
    assert made_by_schedule(_snap("a", 1), "bs")
    assert not made_by_schedule(_snap("a", 1), "other")
    assert not made_by_schedule(BackupView.from_cr(backup_cr("x", commit_ts=_at(1))), "bs")


def test_a_managed_cluster_refuses_the_projects_logical_backups(tmp_path: Path) -> None:
    # Their retention would delete dumps on a cluster where the project promises to delete nothing.
    [problem] = problems(tmp_path, {"clusters": [cluster(managed_by="backup_schedule", backup_schedule="bs",
                                                         logical_backup={})]})
    assert "logical_backup: must be unset with managed_by: backup_schedule" in problem
    assert "Dumpling backupTemplate" in problem


# The guard's dry run must predict what the schedule's GC does: the same rules as the sandbox's controller (which
# follows upstream's code), checked on random histories. Tests may read both sides; the packages never do.
@settings(max_examples=150, deadline=None)
@given(ages=st.lists(st.floats(min_value=0.1, max_value=48), min_size=1, max_size=8, unique=True),
       log_start=st.floats(min_value=0, max_value=60), lag=st.floats(min_value=0, max_value=2),
       reserved=st.integers(min_value=1, max_value=30))
def test_the_dry_run_agrees_with_the_schedule_controller(ages: list[float], log_start: float, lag: float,
                                                         reserved: int) -> None:
    from tidb_sandbox.operator.backupschedule import expired_with_log

    ordered = sorted(ages, reverse=True)  # oldest first: made (and committed) in that order
    crs = [backup_cr(f"s{i}", commit_ts=_at(age), labels=LABELS, created=NOW - timedelta(hours=age))
           for i, age in enumerate(ordered)]
    log_cr = backup_cr("log-bs", mode="log", phase="Running", commit_ts=_at(log_start), checkpoint_ts=_at(lag),
                       labels=LABELS, created=NOW - timedelta(hours=log_start))
    gc = next_gc({"maxReservedTime": f"{reserved}h"}, [BackupView.from_cr(c) for c in [*crs, log_cr]], NOW)
    expired, truncate = expired_with_log(crs, log_cr, timedelta(hours=reserved))
    assert [v.name for v in gc.delete] == [c["metadata"]["name"] for c in expired]
    assert (gc.truncate_until or 0) == truncate


def test_a_failed_newest_expired_snapshot_makes_the_gc_delete_the_last_complete_base_and_the_guard_says_so() -> None:
    snaps = [_snap("a", 10), _snap("b", 8, phase="Failed"), _snap("c", 2)]
    gc = next_gc({"maxReservedTime": "4h"}, [*snaps, _log(12)], NOW)
    assert [v.name for v in gc.delete] == ["a"] and gc.kept is not None and gc.kept.name == "b"
    [warning] = gc_hazards(gc)
    assert "deletes a, the last Complete snapshot" in warning and "b, is Failed" in warning
    # With a Complete newest expired snapshot the base survives: no warning.
    assert gc_hazards(next_gc({"maxReservedTime": "4h"}, [_snap("a", 10), _snap("b", 8), _snap("c", 2), _log(12)],
                              NOW)) == []


# Whatever the states, the guard warns exactly when the next GC leaves no Complete snapshot at or before the cut
# while there was one, and the sandbox's controller (upstream's rule) deletes the same Backups.
@settings(max_examples=150, deadline=None)
@given(history=st.lists(st.tuples(st.floats(min_value=0.1, max_value=48), st.booleans()), min_size=1, max_size=8,
                        unique_by=lambda item: item[0]),
       reserved=st.integers(min_value=1, max_value=30))
def test_the_gc_warns_exactly_when_it_deletes_the_last_complete_base(history: list[tuple[float, bool]],
                                                                     reserved: int) -> None:
    from tidb_sandbox.operator.backupschedule import expired_with_log

    ordered = sorted(history, reverse=True)  # oldest first
    crs = [backup_cr(f"s{i}", phase="Failed" if failed else "Complete", commit_ts=None if failed else _at(age),
                     labels=LABELS, created=NOW - timedelta(hours=age)) for i, (age, failed) in enumerate(ordered)]
    log_cr = backup_cr("log-bs", mode="log", phase="Running", commit_ts=_at(60), checkpoint_ts=_at(0),
                       labels=LABELS, created=NOW - timedelta(hours=60))
    views = [BackupView.from_cr(c) for c in crs]
    gc = next_gc({"maxReservedTime": f"{reserved}h"}, [*views, BackupView.from_cr(log_cr)], NOW)
    expired, _ = expired_with_log(crs, log_cr, timedelta(hours=reserved))
    assert [v.name for v in gc.delete] == [c["metadata"]["name"] for c in expired]
    deleted = {v.name for v in gc.delete}
    bases = [v for v in views if v.phase == "Complete" and (v.commit_ts or 0) <= (gc.expired_before or 0)]
    warnings = gc_hazards(gc)
    assert bool(warnings) == bool(bases and all(v.name in deleted for v in bases))
    if warnings:
        assert f"deletes {bases[-1].name}," in warnings[0] and gc.kept is not None and gc.kept.name in warnings[0]
