"""A log backup paused past BR's pause GC TTL: when a CR says its resume was refused for good, and what the
window's gap, the RPO alert and the status say about it. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.cr.model import BackupView
from tidb_pitr.planning import recoverable_window
from tidb_pitr.planning.pause import resume_refused_by_gc
from tidb_pitr.planning.timeline import gap_causes
from tidb_pitr.triggers.rpo import RpoLagTrigger
from tidb_pitr.tso import dt_to_tso

from .crs import backup_cr

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# BR's words, as the operator copies them into the log-resume entry (br/pkg/task/stream.go RunStreamResume).
REFUSAL = ("the global checkpoint ts: 470000000000000000(2026-05-30 10:00:00 +0000 UTC) has been gc. : GC safepoint "
           "470000000000000001 exceed TS 470000000000000000: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC "
           "safepoint exceeded")


def _ago(hours: float) -> int:
    return dt_to_tso(NOW - timedelta(hours=hours))


def _resume(phase: str, message: str) -> dict[str, Any]:
    return {"log-resume": {"command": "log-resume", "phase": phase,
                           "conditions": [{"type": phase, "status": "True", "reason": "ResumeLogBackuFailed",
                                           "message": message}]}}


def _log(name: str, *, phase: str = "Paused", started: float = 60, checkpoint: float = 30,
         subs: dict[str, Any] | None = None) -> dict[str, Any]:
    return backup_cr(name, mode="log", phase=phase, commit_ts=_ago(started), checkpoint_ts=_ago(checkpoint),
                     sub_statuses=subs, prefix=f"backups/{name}")


@given(phase=st.sampled_from(["Failed", "Complete", "Repeatable", "Running"]),
       message=st.sampled_from([REFUSAL, "context deadline exceeded", "", "log backup task not found"]))
def test_only_a_failed_resume_with_brs_gc_error_is_final(phase: str, message: str) -> None:
    view = BackupView.from_cr(_log("log", subs=_resume(phase, message)))
    assert (resume_refused_by_gc(view) is not None) == (phase == "Failed" and message == REFUSAL)
    assert resume_refused_by_gc(BackupView.from_cr(_log("log"))) is None  # never resumed


def test_the_gap_after_a_dead_pause_says_why_and_the_alert_names_the_way_out() -> None:
    dead = _log("log", phase="Stopped", subs=_resume("Failed", REFUSAL))
    new = _log("log-2", phase="Running", started=2, checkpoint=0)
    snaps = [backup_cr("old-base", commit_ts=_ago(50), prefix="backups/log"),
             backup_cr("new-base", commit_ts=_ago(1), prefix="backups/log-2")]
    window = recoverable_window([BackupView.from_cr(s) for s in snaps], [BackupView.from_cr(v) for v in (dead, new)])
    assert window.gaps == ((_ago(30), _ago(1)),)
    assert "log backup log was paused past BR's pause GC TTL" in gap_causes(window)[0].cause
    assert not window.contains(_ago(10))

    trigger = RpoLagTrigger(kubernetes_conn_id="k8s", api_group="pingcap.com", namespace="tidb",
                            tidb_cluster="basic", cluster="tidb/basic", warn_seconds=60, critical_seconds=120,
                            starting_grace_seconds=5)
    paused = _log("log", subs=_resume("Failed", REFUSAL))
    figures = trigger.assess([paused], NOW)
    assert figures["level"] == "critical" and "pause GC TTL" in figures["cause"]
    message = trigger._payload("critical", figures)["message"]
    assert "BR refused the resume" in message and "start_new_log_backup" in message
    assert trigger.assess([_log("log")], NOW)["cause"] is None


@given(st.floats(min_value=0, max_value=30, allow_nan=False))
def test_the_alert_holds_a_maintenance_pause_no_longer_than_brs_pause_gc_ttl_allows(hours_later: float) -> None:
    """An annotation edited to claim 30 hours: the RPO watcher says "maintenance" only within the bound from the
    pause's start (BR's pause GC TTL less the guard's margin), a breach after it."""
    from tidb_pitr.cr.api import ANNOTATION_MAINTENANCE_PAUSE
    from tidb_pitr.planning.pause import MAX_MAINTENANCE_PAUSE, MaintenancePause

    at = NOW - timedelta(hours=40)
    paused = _log("log", started=60, checkpoint=40)  # frozen at the pause: critical by its lag alone
    paused["metadata"]["annotations"] = {ANNOTATION_MAINTENANCE_PAUSE: MaintenancePause(
        until=at + timedelta(hours=30), at=at, run="r1", reason="vendor window").to_annotation()}
    trigger = RpoLagTrigger(kubernetes_conn_id="k8s", api_group="pingcap.com", namespace="tidb",
                            tidb_cluster="basic", cluster="tidb/basic", warn_seconds=600, critical_seconds=1800,
                            starting_grace_seconds=5)
    now = at + timedelta(hours=hours_later)
    figures = trigger.assess([paused], now)
    held = now < at + MAX_MAINTENANCE_PAUSE and now - at > timedelta(seconds=1800)  # lag past critical, still held
    expected = "maintenance" if held else "critical" if now - at > timedelta(seconds=1800) else figures["level"]
    assert figures["level"] == expected, (hours_later, figures)
    assert figures["maintenance_pause"]["until"] == "2026-05-31T19:00:00Z"  # at + 23 h, not the 30 claimed
    assert trigger.assess([_log("log", phase="Running")], now)["maintenance_pause"] is None  # resumed: none held
