"""Log control, on demand: pause the log backup for maintenance (bounded below BR's pause GC TTL), resume it or
stop it, from the trigger form or the TiDB PITR page."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from ..config import ClusterConfig
from ..operators.log_backup import TidbLogBackupOperator
from ..planning.pause import CONTROL_ACTIONS, MAX_MAINTENANCE_PAUSE, MIN_MAINTENANCE_PAUSE, PAUSE_GC_TTL, confirmation
from ..runtime.context import failed_upstream, run_key
from ..units import format_duration
from .common import cr_args, dag_kwargs, republish_status

DOC = """
### Log backup control of `{ns}/{name}`: pause for maintenance, resume, stop

| task | what it does |
|---|---|
| `plan` | checks every field before anything changes: `action`; for a pause, `pause_minutes` from {low} to {high} and a log backup that is Running; for a resume or a stop, `confirm` typed exactly (`{resume}` / `{stop}`). A refusal names the field and what is allowed, and is the run's note |
| `pause` / `resume` / `stop` | the one asked for: sets `logSubcommand` on the live log Backup CR and waits for the phase. A pause writes, in the same patch, the annotation `tidb-pitr-airflow/maintenance-pause` (until when, this run, the reason) |
| `record` | the run's note: what was done (paused until when, and why), or which step failed and what it left |
| `publish_status` | what the TiDB PITR page shows, published again so the page says "paused until" within seconds |

**Why bounded.** `br log pause` holds the GC at the checkpoint for BR's pause GC TTL ({ttl}; TiDB Operator
passes no `--gc-ttl`). A task paused longer may never resume (BR refuses once the GC passed its checkpoint) and only
a new log backup, with a gap, goes on. The longest pause here is {high}, leaving the guard time to resume it.

**The guard** (`{guard}`) leaves a maintenance pause alone until it ends and then resumes it; while it lasts the
checkpoint lag grows (a warning, not a critical failure) and nothing written is restorable. A log backup paused
any other way is resumed by the guard at its next run, as before. **Stop** is final for a log backup: afterwards
the guard fails until it is triggered with `start_new_log_backup`, and times up to the new log's first snapshot are
not restorable.
"""


def _params(cluster: ClusterConfig) -> dict[str, Param]:
    low, high = (int(d.total_seconds() // 60) for d in (MIN_MAINTENANCE_PAUSE, MAX_MAINTENANCE_PAUSE))
    return {
        "action": Param("pause", type="string", enum=list(CONTROL_ACTIONS), title="Action",
                        description="pause for maintenance (bounded), resume, or stop (final)."),
        "pause_minutes": Param(60, type="integer", minimum=low, maximum=high, title="Pause for (minutes)",
                               description=f"A pause's length, {low} to {high} minutes: below BR's pause GC TTL "
                                           f"({format_duration(PAUSE_GC_TTL)}). The guard resumes it afterwards."),
        "reason": Param("", type="string", maxLength=300, title="Reason",
                        description="Why (the run's note and the page show it)."),
        "confirm": Param("", type="string", title="Confirm a resume or a stop",
                         description=f"Type '{confirmation('resume', cluster.name)}' or "
                                     f"'{confirmation('stop', cluster.name)}'; a pause needs none."),
    }


def build(cluster: ClusterConfig) -> DAG:
    low, high = (format_duration(d) for d in (MIN_MAINTENANCE_PAUSE, MAX_MAINTENANCE_PAUSE))
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, low=low, high=high, ttl=format_duration(PAUSE_GC_TTL),
                     resume=confirmation("resume", cluster.name), stop=confirmation("stop", cluster.name),
                     guard=cluster.dag_id("log_guard"))
    with DAG(schedule=None, params=_params(cluster), render_template_as_native_obj=True,
             **dag_kwargs(cluster, "log_control", doc)) as dag:

        @task(retries=0)
        def plan(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from ..planning.notes import with_details
            from ..runtime.notes import publish_note
            from .tasks.log_control import plan_control

            try:
                return plan_control(cluster, dict(params or {}), run_key(context))
            except AirflowFailException as refused:
                reason = str(refused).removeprefix("log control refused, nothing changed: ")
                publish_note(context, with_details(f"Refused: {reason}", f"Refused, nothing changed: {reason}"))
                raise

        @task.branch
        def choose(planned: dict[str, Any]) -> str:
            return planned["action"]

        planned = plan()
        controls = [TidbLogBackupOperator(
            task_id=action, action=action, backup_name="{{ ti.xcom_pull(task_ids='plan')['log_backup'] }}",
            annotations="{{ ti.xcom_pull(task_ids='plan')['annotations'] }}", retries=0,
            legacy_log_stop=cluster.legacy_log_stop, **cr_args(cluster)) for action in CONTROL_ACTIONS]

        @task(trigger_rule="all_done", retries=0)
        def record(**context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from ..runtime.notes import publish_note
            from .tasks.log_control import control_note

            planned = context["ti"].xcom_pull(task_ids="plan")
            if not planned:  # refused at plan, whose note says why
                raise AirflowFailException("refused at plan: nothing changed (see the run's note)")
            failed = failed_upstream(context, only_failed=True)
            result = None if failed else context["ti"].xcom_pull(task_ids=planned["action"])
            publish_note(context, control_note(cluster, planned, result, failed))
            if failed:
                raise AirflowFailException(f"log {planned['action']} of {planned['log_backup']} failed: "
                                           f"{', '.join(failed)} (see its log)")
            return {**planned, "result": result}

        choose(planned) >> controls
        recorded = record()
        controls >> recorded
        [planned, recorded] >> republish_status(cluster)
    return dag
