"""A maintenance pause of the log backup (planning/pause.py), the restore targets' states (planning/targets.py),
the log-control and snapshot notes (planning/notes.py) and a snapshot's slot (cr/names.py): pure, no cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.cr.api import ANNOTATION_MAINTENANCE_PAUSE
from tidb_pitr.cr.model import BackupView
from tidb_pitr.cr.names import snapshot_name, snapshot_slot
from tidb_pitr.planning.notes import HEADLINE, log_control_note, snapshot_note
from tidb_pitr.planning.pause import (
    MAX_MAINTENANCE_PAUSE,
    PAUSE_GC_TTL,
    LogControlRefused,
    MaintenancePause,
    maintenance_pause,
    plan_log_control,
)
from tidb_pitr.planning.targets import preselected, target_state
from tidb_pitr.tso import dt_to_tso

from .crs import backup_cr

NOW = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)
LOW, HIGH = 10, int(MAX_MAINTENANCE_PAUSE.total_seconds() // 60)


def log_view(phase: str = "Running", annotation: str | None = None) -> BackupView:
    body = backup_cr("demo1-log", mode="log", phase=phase, commit_ts=dt_to_tso(NOW - timedelta(days=3)),
                     checkpoint_ts=dt_to_tso(NOW - timedelta(seconds=5)))
    if annotation is not None:
        body["metadata"]["annotations"] = {ANNOTATION_MAINTENANCE_PAUSE: annotation}
    return BackupView.from_cr(body)


def plan(action: Any = "pause", minutes: Any = 60, confirm: Any = "", view: BackupView | None = None,
         reason: str = "upgrade TiKV") -> dict[str, Any]:
    return plan_log_control(action=action, pause_minutes=minutes, confirm=confirm, reason=reason, cluster="demo1",
                            view=log_view() if view is None else view, now=NOW, run="tidb_x/manual__1")


def test_the_longest_pause_stays_below_brs_pause_gc_ttl():
    assert MAX_MAINTENANCE_PAUSE < PAUSE_GC_TTL


@given(st.one_of(st.integers(-10_000, 10_000), st.floats(allow_nan=True), st.text(max_size=5), st.none(),
                 st.booleans()))
def test_a_pause_is_planned_only_for_whole_minutes_in_the_allowed_range(minutes):
    """Whatever `pause_minutes` holds: planned with its end `minutes` from now, or refused naming the field and the
    range, before anything changes."""
    allowed = isinstance(minutes, int) and not isinstance(minutes, bool) and LOW <= minutes <= HIGH
    if allowed:
        planned = plan(minutes=minutes)
        assert planned["pause"]["until"] == (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        assert ANNOTATION_MAINTENANCE_PAUSE in planned["annotations"]
    else:
        with pytest.raises(LogControlRefused, match=f"pause_minutes must be a whole number of minutes from {LOW} "
                                                     f"to {HIGH}"):
            plan(minutes=minutes)


def test_resume_and_stop_need_their_confirmation_typed_exactly():
    with pytest.raises(LogControlRefused, match="confirm must be exactly \"stop demo1's log backup\""):
        plan("stop", confirm="stop it")
    with pytest.raises(LogControlRefused, match="action must be one of pause, resume, stop; got 'truncate'"):
        plan("truncate")
    stopped = plan("stop", confirm="stop demo1's log backup")
    assert stopped["annotations"] == {ANNOTATION_MAINTENANCE_PAUSE: None}  # the record goes with the stop
    with pytest.raises(LogControlRefused, match="cannot resume log backup demo1-log: it is Running, not Paused"):
        plan("resume", confirm="resume demo1's log backup")


def test_a_pause_is_refused_on_a_task_already_paused_and_says_by_whom():
    held = MaintenancePause(until=NOW + timedelta(hours=1), at=NOW - timedelta(hours=1), run="r1", reason="x")
    with pytest.raises(LogControlRefused, match="already paused for maintenance until 2026-11-21T06:30:00Z by r1"):
        plan(view=log_view("Paused", held.to_annotation()))


@given(st.integers(0, 48 * 60), st.integers(-48 * 60, 48 * 60))
def test_a_recorded_pause_never_holds_past_the_bound_from_when_it_began(began_minutes_ago, lasts_minutes):
    """However the annotation was edited, the guard leaves a task paused no longer than the bound from its start."""
    at = NOW - timedelta(minutes=began_minutes_ago)
    text = MaintenancePause(until=at + timedelta(minutes=lasts_minutes), at=at, run="r", reason="").to_annotation()
    held = maintenance_pause(log_view("Paused", text))
    assert held is not None and held.until <= at + MAX_MAINTENANCE_PAUSE
    assert held.active(NOW) == (NOW < min(at + timedelta(minutes=lasts_minutes), at + MAX_MAINTENANCE_PAUSE))
    assert maintenance_pause(log_view("Running", text)) is None  # resumed by hand: nothing held
    assert maintenance_pause(log_view("Paused", "{not json")) is None  # unreadable: the guard resumes it


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["restoring", "holds", "empty", "unknown"])), max_size=6))
def test_the_form_preselects_only_an_empty_user_target(targets):
    listed = [{"value": f"ns/t{i}", "scratch": scratch, "state": "scratch" if scratch else state}
              for i, (scratch, state) in enumerate(targets)]
    chosen = preselected(listed)
    empties = [t["value"] for t in listed if t["state"] == "empty" and not t["scratch"]]
    assert chosen == (empties[0] if empties else None)


def test_a_targets_state_says_what_the_user_needs_first():
    assert target_state(scratch=True, restoring=["r"], user_objects=["a.b"])["state"] == "scratch"
    assert target_state(scratch=False, restoring=["r1"], user_objects=[])["detail"] == "being restored into: r1"
    held = target_state(scratch=False, restoring=[], user_objects=["shop.orders", "shop.users", "crm"])
    assert (held["state"], held["detail"], held["databases"]) == ("holds", "holds 2 databases", 2)
    assert target_state(scratch=False, restoring=[], user_objects=[])["state"] == "empty"
    assert target_state(scratch=False, restoring=[], user_objects=None)["state"] == "unknown"


def test_notes_say_what_was_done_first_and_the_snapshots_slot():
    note = log_control_note("pause", "demo1-log", until=NOW + timedelta(hours=2), reason="upgrade TiKV",
                            timezone="Asia/Shanghai")
    head = note.split("\n\n")[0]
    assert head == "Paused log backup demo1-log until 2026-11-21 07:30:00Z: upgrade TiKV" and len(head) <= HEADLINE
    assert "(15:30:00 Asia/Shanghai)" in note and "resumes it after" in note
    assert log_control_note("stop", "demo1-log").startswith("Stopped log backup demo1-log")
    name = snapshot_name("demo1", "20261121010000")
    assert snapshot_slot(name) == datetime(2026, 11, 21, 1, tzinfo=UTC)
    assert snapshot_slot(snapshot_name("demo1", "20261121010000", attempt=2)) == datetime(2026, 11, 21, 1, tzinfo=UTC)
    assert snapshot_slot("someone-elses-backup") is None
    text = snapshot_note(name, dt_to_tso(NOW), 3 << 30, "s3://b/demo1/snapshot-20261121010000", "UTC",
                         slot=snapshot_slot(name))
    assert "data as of 2026-11-21 05:30:00Z" in text.split("\n\n")[0]
    assert "its name is its slot, 2026-11-21 01:00:00Z" in text
