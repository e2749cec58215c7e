"""The running task's DAG run as the task bodies and flows name it: its key, and the tasks that failed in it.

Below both `flows/` (DAG shape) and `flows/tasks/` (task bodies), so a body never imports a DAG module.
"""

from __future__ import annotations

from typing import Any


def run_key(context: Any) -> str:
    """`<dag_id>/<run_id>` of the running task's DAG run (what leases and failure records name)."""
    dag_run = context["dag_run"]
    return f"{dag_run.dag_id}/{dag_run.run_id}"


def failed_upstream(context: Any, *, only_failed: bool = False) -> list[str]:
    """Tasks of this DAG run that failed (or could not run because one did), for a closing task; with
    `only_failed`, those that failed themselves (what a note names first)."""
    ti, dag_run = context["ti"], context["dag_run"]
    states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(dag_run.run_id, {})
    counted = ("failed",) if only_failed else ("failed", "upstream_failed")
    return sorted(task for task, state in states.items() if state in counted and task != ti.task_id)
