"""The check's triggerer probe: it defers for the checkpoints' watch (`observe_seconds`), so that wait holds no
worker slot, and times out `wait_seconds` after it (no triggerer: the check's FAILED row); polling DAGs skip it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import TaskDeferred
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.operators.triggerer_probe import TriggererProbeOperator
from tidb_pitr.planning.check import FAILED, OK, triggerer_row

WAIT_FOR = timedelta(minutes=5)


@given(observe=st.floats(min_value=1, max_value=3600))
def test_the_probe_defers_for_the_watch_and_times_out_after_it(observe: float) -> None:
    probe = TriggererProbeOperator(task_id="triggerer", wait_seconds=str(WAIT_FOR.total_seconds()),
                                   timer_seconds=str(observe))
    start = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        probe.execute({})
    moment = deferred.value.trigger.moment
    assert start + timedelta(seconds=observe) <= moment <= datetime.now(UTC) + timedelta(seconds=observe)
    assert deferred.value.timeout == timedelta(seconds=observe) + WAIT_FOR


def test_a_resumed_probe_says_how_late_its_triggerer_was_and_a_lost_one_fails() -> None:
    probe = TriggererProbeOperator(task_id="triggerer", timer_seconds="0")  # a zero watch still defers 1 s
    with pytest.raises(TaskDeferred) as deferred:
        probe.execute({})
    kwargs = deferred.value.kwargs
    assert kwargs["timer_seconds"] == 1.0
    # The triggerer fired 2.5 s after the timer's moment (the event DateTimeTrigger yields).
    answer = probe.execute_complete({}, datetime.now(UTC) - timedelta(seconds=2.5), **kwargs)
    assert answer["resumed"] and 2.4 < answer["late_seconds"] < 3.0
    row = triggerer_row(answer, WAIT_FOR.total_seconds())
    assert row.status == OK and "after its timer" in row.value
    lost = triggerer_row(None, WAIT_FOR.total_seconds())
    assert lost.status == FAILED and "5m" in lost.value and "airflow triggerer" in lost.action


def test_polling_dags_do_not_defer_and_the_row_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__TIDB_PITR__DEFERRABLE", "False")
    answer = TriggererProbeOperator(task_id="triggerer", timer_seconds="30").execute({})
    row = triggerer_row(answer, WAIT_FOR.total_seconds())
    assert row.status == OK and "deferrable = False" in row.value


@pytest.mark.parametrize("field", ["timer_seconds", "wait_seconds"])
def test_a_time_that_is_not_a_number_is_refused_naming_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a number"):
        TriggererProbeOperator(task_id="triggerer", **{field: "soon"}).execute({})
