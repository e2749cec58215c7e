"""Pausing the log backup for maintenance through the log-control DAG (`dag.test()`): bounded below BR's pause GC
TTL, refused before anything changes when a field is wrong, left paused by the guard until it ends, then resumed.

The pause's end is the product's own clock (time_machine moves it, never a sleep): the guard compares its now with
the end recorded on the CR, as it would beside a real cluster hours later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from tidb_pitr.cr.api import ANNOTATION_MAINTENANCE_PAUSE

from .clusters import Cluster
from .conftest import xcom

# The guard's RPO levels stay quiet while the product's clock is moved past the pause: the lag is measured from it.
QUIET_RPO = {"warn": "2h", "critical": "3h"}


def _note(run: Any) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note or ""


def test_a_maintenance_pause_is_left_alone_by_the_guard_until_it_ends_then_resumed(sandbox, connections, airflow_db):
    cluster = Cluster(sandbox, connections, seed_days=1, rpo=QUIET_RPO)
    log_name = cluster.live_log().name

    paused = cluster.run("log_control", run_conf={"action": "pause", "pause_minutes": 30, "reason": "upgrade TiKV"})
    assert str(paused.state) == "success"
    assert _note(paused).startswith(f"Paused log backup {log_name} until ") and ": upgrade TiKV" in _note(paused)
    view = cluster.live_log()
    assert view.phase == "Paused" and ANNOTATION_MAINTENANCE_PAUSE in view.annotations
    shown = xcom(paused, "publish_status")["rpo"]["maintenance_pause"]  # what the page reads, published at once
    assert shown["active"] is True and shown["reason"] == "upgrade TiKV" and shown["run"].endswith(paused.run_id)

    held = cluster.run("log_guard")
    assert str(held.state) == "success"
    assert cluster.live_log().phase == "Paused"  # not "repaired"

    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=31), tick=True):
        resumed = cluster.run("log_guard")
    assert str(resumed.state) == "success"
    assert cluster.live_log().phase == "Running" and cluster.live_log().name == log_name


def test_a_wrong_field_is_refused_naming_it_before_anything_changes(sandbox, connections, airflow_db):
    from airflow.exceptions import ParamValidationError

    cluster = Cluster(sandbox, connections, seed_days=1)
    before = cluster.live_log()
    with pytest.raises(ParamValidationError, match="pause_minutes"):  # the form's own check: above the maximum
        cluster.run("log_control", run_conf={"action": "pause", "pause_minutes": 24 * 60})
    stop = cluster.run("log_control", run_conf={"action": "stop", "pause_minutes": 60, "confirm": "yes"})
    assert str(stop.state) == "failed"
    assert _note(stop).startswith(f"Refused: confirm must be exactly \"stop {cluster.name}'s log backup\"")
    after = cluster.live_log()
    assert (after.phase, after.log_subcommand, after.annotations) == (before.phase, before.log_subcommand,
                                                                      before.annotations)
