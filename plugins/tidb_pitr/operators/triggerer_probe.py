"""TriggererProbeOperator: `check`'s question "is a triggerer running?", asked the only way a task can: by deferring
on a timer and seeing whether it comes back. The timer is also the check's watch of the log checkpoints
(`observe_seconds`), so that wait is spent in the triggerer, not in a worker slot.

Every wait of the DAGs defers to the triggerer; without one, each deferred task sits until its timeout. This probe
resumes right after its timer when a triggerer runs, and otherwise times out `wait_seconds` after the timer (the
scheduler fails it), which `check` reports as a FAILED row. With `[tidb_pitr] deferrable = False` the DAGs poll and
it does not defer (the check then sleeps the watch itself).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

from .base import default_deferrable

MIN_TIMER = timedelta(seconds=1)


class TriggererProbeOperator(BaseOperator):
    template_fields = ("timer_seconds", "wait_seconds")  # e.g. "{{ params.observe_seconds }}"

    def __init__(self, *, wait_seconds: float | str = 300.0, timer_seconds: float | str = 1.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_seconds = wait_seconds
        self.timer_seconds = timer_seconds

    def _seconds(self, field: str) -> timedelta:
        value = getattr(self, field)
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            raise ValueError(f"{field} must be a number of seconds, got {value!r}") from None

    def _timer(self) -> timedelta:
        return max(self._seconds("timer_seconds"), MIN_TIMER)

    def execute(self, context: Any) -> dict[str, Any]:
        if not default_deferrable():
            return {"deferrable": False, "resumed": False}
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        timer = self._timer()
        deferred_at = datetime.now(UTC)
        self.defer(trigger=DateTimeTrigger(moment=deferred_at + timer), method_name="execute_complete",
                   kwargs={"deferred_at": deferred_at.isoformat(), "timer_seconds": timer.total_seconds()},
                   timeout=timer + max(self._seconds("wait_seconds"), MIN_TIMER))
        raise AssertionError("unreachable: defer raises")

    def execute_complete(self, context: Any, event: Any = None, deferred_at: str = "",
                         timer_seconds: float = 0.0) -> dict[str, Any]:
        now = datetime.now(UTC)
        waited = (now - datetime.fromisoformat(deferred_at)).total_seconds() if deferred_at else None
        # The event is the timer's moment (DateTimeTrigger): how long after it the task resumed is the triggerer's
        # own delay. From the event, since `airflow dags test` hands back the event without the defer's kwargs.
        moment = datetime.fromisoformat(event) if isinstance(event, str) else event
        late = max(0.0, (now - moment).total_seconds()) if isinstance(moment, datetime) else None
        return {"deferrable": True, "resumed": True, "waited_seconds": waited, "late_seconds": late}
