"""Wait predicates on the statuses the real operator writes: hopeless waits end early, recovered tasks count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidb_pitr.triggers.predicates import FAILED, SUCCESS, evaluate

from .crs import backup_cr, condition

NOW = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)
BOUNDS = {"retry_failed_seconds": 600, "stuck_seconds": 1800}


def _sub(phase: str, since: datetime, **extra: str) -> dict:
    return {"command": "x", "phase": phase, "conditions": [{**condition("pingcap.com", phase, since), **extra}]}


def test_a_missing_secret_ends_the_wait_after_the_grace_with_the_operators_message():
    cr = backup_cr("snap", phase="RetryFailed", reason="GetS3SecretFailed",
                   message='get s3 secret tidb/s3 failed, err: secret "s3" not found', created=NOW)
    assert evaluate("terminal", "backups", cr, BOUNDS, now=NOW + timedelta(minutes=9)) is None
    verdict = evaluate("terminal", "backups", cr, BOUNDS, now=NOW + timedelta(minutes=10))
    assert verdict.status == FAILED and "GetS3SecretFailed" in verdict.message and 'secret "s3"' in verdict.message


def test_a_transient_retry_failed_is_waited_out():
    cr = backup_cr("snap", phase="RetryFailed", reason="RetryFailedBackup", created=NOW)
    assert evaluate("terminal", "backups", cr, BOUNDS, now=NOW + timedelta(hours=3)) is None


def test_a_cr_the_operator_never_touched_ends_the_wait():
    cr = backup_cr("snap", phase="", created=NOW)
    assert evaluate("terminal", "backups", cr, BOUNDS, now=NOW + timedelta(minutes=5)) is None
    verdict = evaluate("terminal", "backups", cr, BOUNDS, now=NOW + timedelta(minutes=11))
    assert verdict.status == FAILED and "has no status" in verdict.message


def test_a_log_start_that_recovered_from_an_error_pause_is_started():
    """TiDB Operator leaves log-start at RetryFailed after a pause/resume recovery; the phase says Running."""
    subs = {"log-start": _sub("RetryFailed", NOW, reason="LogBackupErrorPaused"),
            "log-resume": _sub("Complete", NOW)}
    cr = backup_cr("log", mode="log", phase="Running", commit_ts=1 << 40, checkpoint_ts=1 << 41, sub_statuses=subs)
    assert evaluate("log_started", "backups", cr, BOUNDS, now=NOW).status == SUCCESS


def test_a_log_job_whose_pod_died_is_stuck():
    subs = {"log-start": _sub("Running", NOW)}
    cr = backup_cr("log", mode="log", phase="Running", sub_statuses=subs, created=NOW)
    assert evaluate("log_started", "backups", cr, BOUNDS, now=NOW + timedelta(minutes=29)) is None
    verdict = evaluate("log_started", "backups", cr, BOUNDS, now=NOW + timedelta(minutes=30))
    assert verdict.status == FAILED and "stuck" in verdict.message and "backup-log-log-start" in verdict.message


def test_a_long_truncate_is_not_stuck_but_one_that_never_started_is():
    running = {"log-truncate": {**_sub("Running", NOW), "logTruncatingUntil": "123"}}
    cr = backup_cr("log", mode="log", phase="Running", commit_ts=1, spec={"logTruncateUntil": "123"},
                   sub_statuses=running)
    assert evaluate("truncate", "backups", cr, {**BOUNDS, "until": "123"}, now=NOW + timedelta(hours=5)) is None
    scheduled = {"log-truncate": {**_sub("Scheduled", NOW), "logTruncatingUntil": "123"}}
    cr = backup_cr("log", mode="log", phase="Running", commit_ts=1, spec={"logTruncateUntil": "123"},
                   sub_statuses=scheduled)
    verdict = evaluate("truncate", "backups", cr, {**BOUNDS, "until": "123"}, now=NOW + timedelta(hours=1))
    assert verdict.status == FAILED and "stuck" in verdict.message


def test_without_bounds_nothing_ends_early():
    cr = backup_cr("snap", phase="RetryFailed", reason="GetS3SecretFailed", created=NOW)
    assert evaluate("terminal", "backups", cr, {}, now=NOW + timedelta(days=3)) is None


def test_a_second_truncate_is_not_stuck_for_the_time_the_first_one_spent_in_prepare():
    """TiDB Operator keeps a sub-command condition's transition time when the same type comes back: the Prepare of
    a truncate asked for now still carries the failed one's time from an hour ago. It is stuck only `stuck_seconds`
    after this wait asked for it."""
    earlier = {"log-truncate": {**_sub("Prepare", NOW - timedelta(hours=1)), "logTruncatingUntil": "123"}}
    cr = backup_cr("log", mode="log", phase="Running", commit_ts=1, spec={"logTruncateUntil": "123"},
                   sub_statuses=earlier)
    asked = {**BOUNDS, "until": "123", "asked_at": NOW.timestamp()}
    assert evaluate("truncate", "backups", cr, asked, now=NOW + timedelta(minutes=29)) is None
    verdict = evaluate("truncate", "backups", cr, asked, now=NOW + timedelta(minutes=30))
    assert verdict.status == FAILED and "stuck: Prepare for 30m" in verdict.message
    # Without the time it was asked for, the wait goes by the condition's own time.
    assert evaluate("truncate", "backups", cr, {**BOUNDS, "until": "123"}, now=NOW).status == FAILED
