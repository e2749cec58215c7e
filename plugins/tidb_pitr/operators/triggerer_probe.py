"""TriggererProbeOperator: `check`'s question "is a triggerer running?", asked the only way a task can: by deferring
on a one-second timer and seeing whether it comes back.

Every wait of the DAGs defers to the triggerer; without one, each deferred task sits until its timeout. This probe
resumes within seconds when a triggerer runs, and otherwise times out after `wait_for` (the scheduler fails it), which
`check` reports as a FAILED row. With `[tidb_pitr] deferrable = False` the DAGs poll and it does not defer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

from .base import default_deferrable

TIMER = timedelta(seconds=1)


class TriggererProbeOperator(BaseOperator):
    def __init__(self, *, wait_for: timedelta = timedelta(minutes=5), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_for = wait_for

    def execute(self, context: Any) -> dict[str, Any]:
        if not default_deferrable():
            return {"deferrable": False, "resumed": False}
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        deferred_at = datetime.now(UTC)
        self.defer(trigger=DateTimeTrigger(moment=deferred_at + TIMER), method_name="execute_complete",
                   kwargs={"deferred_at": deferred_at.isoformat()}, timeout=self.wait_for)
        raise AssertionError("unreachable: defer raises")

    def execute_complete(self, context: Any, event: Any = None, deferred_at: str = "") -> dict[str, Any]:
        waited = (datetime.now(UTC) - datetime.fromisoformat(deferred_at)).total_seconds() if deferred_at else None
        return {"deferrable": True, "resumed": True, "waited_seconds": waited}
