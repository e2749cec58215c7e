"""`check`, daily and on demand: every assumption the cluster's DAGs make, verified read-only, one row each; the run
note lists the failed rows first, the gauge `tidb_pitr.check_failed` counts them, and the notifiers hear of each
row that newly FAILED."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.timetables.trigger import CronTriggerTimetable

from ..config import ClusterConfig
from ..operators.triggerer_probe import TriggererProbeOperator
from .common import dag_kwargs

DOC = """
### Check of `{ns}/{name}`: every assumption the DAGs make, daily

Read-only, except one probe object written, read back and deleted under `{root}/.tidb-pitr-check/`. Each check is
a row (name, OK / WARNING / FAILED, the measured value, what to do), the failed first in the run note:

| check | what it measures |
|---|---|
| Kubernetes | the connection; the CRDs of `{group}` served with the fields the DAGs use; one SelfSubjectAccessReview per verb and resource (missing: FAILED naming the DAG; more than include/rbac.yaml grants: WARNING); the cluster object Ready, its TiDB version |
| log backup | exactly one live for the cluster, writing under the root; its checkpoints in the CR and in storage both move while watched (`observe_seconds`), their lag against the RPO |
| storage | the root lists; the probe object writes, reads back and deletes; the Secret the CRs name holds the keys TiDB Operator reads (read when Airflow may `get secrets`, else judged by the operator's answer to the newest Backup naming it) |
| SQL | each `sql_conn_id` answers, and its account's `SHOW GRANTS` holds SELECT ON *.* (DROP too for the drill's scratch target); PD's clock (TIDB_CURRENT_TSO()) against the worker's: WARNING over 5 s, FAILED over 1 min |
| Airflow | the task `triggerer` defers on a timer of `observe_seconds` (the checkpoints' watch, spent in the triggerer, not a worker slot; slept by `check` when the DAGs poll): FAILED when it does not come back within `triggerer_wait_seconds` (5 min) after it (no triggerer) |

The same rows from a shell: `python -m tidb_pitr check --cluster {ns}/{name} [--json]` (exit code 2 on FAILED).
"""
HOUR_AFTER_ANCHOR = 4  # after the snapshot (anchor) and retention (anchor + 2 h) of the same day
TRIGGERER_WAIT = timedelta(minutes=5)  # a triggerer picks up a new trigger within seconds


def build(cluster: ClusterConfig) -> DAG:
    from ..planning.check import observe_for

    doc = DOC.format(ns=cluster.namespace, name=cluster.name, root=cluster.storage.root, group=cluster.api_group)
    hour, minute = (int(x) for x in cluster.snapshot_anchor.split(":"))
    schedule = CronTriggerTimetable(f"{minute} {(hour + HOUR_AFTER_ANCHOR) % 24} * * *", timezone=cluster.timezone)
    observe = observe_for(cluster.waits.tracker_interval.total_seconds(),
                          cluster.waits.log_flush_interval.total_seconds())
    params = {"observe_seconds": Param(
        observe, type="number", minimum=0, title="Watch the log checkpoints (seconds)",
        description="How long the log backup's checkpoints must move in: the tracker interval twice plus TiKV's "
                    "flush interval (waits.log_flush_interval) by default."),
              "triggerer_wait_seconds": Param(
        TRIGGERER_WAIT.total_seconds(), type="number", minimum=1, title="Wait for a triggerer (seconds)",
        description="How long after its timer the probe may stay deferred before the check says no triggerer "
                    "runs.")}
    kwargs = dag_kwargs(cluster, "check", doc)
    kwargs["default_args"] = {**kwargs["default_args"], "retries": 0}  # a check that fails is the answer
    with DAG(schedule=schedule, params=params, **kwargs) as dag:
        @task
        def log_before() -> dict[str, Any]:
            """The log checkpoints at the watch's start; `check` reads them again after the probe's timer."""
            from .tasks.check import read_log

            return read_log(cluster).to_dict()

        # The watch of the checkpoints is the probe's timer: spent deferred in the triggerer, not in a worker slot.
        probe = TriggererProbeOperator(task_id="triggerer", timer_seconds="{{ params.observe_seconds }}",
                                       wait_seconds="{{ params.triggerer_wait_seconds }}")

        @task(trigger_rule="all_done")  # after the probe, whether it came back or timed out
        def check(params: dict[str, Any] | None = None, **context: Any) -> list[dict[str, str]]:
            from airflow.sdk.exceptions import AirflowFailException

            from ..planning.check import triggerer_row
            from .tasks.check import LogReading, publish_check, run_checks

            observe = float((params or {}).get("observe_seconds") or 0)
            before = context["ti"].xcom_pull(task_ids="log_before")
            # No reading before (its task failed): the log rows say why; the watch is not made up by a sleep here.
            rows = run_checks(cluster, observe_seconds=observe if before else 0.0,
                              log_before=LogReading.from_dict(before) if before else None,
                              probe_tag=context["dag_run"].run_after.strftime("%Y%m%d%H%M%S"))
            answer = context["ti"].xcom_pull(task_ids="triggerer")
            wait = float((params or {}).get("triggerer_wait_seconds") or TRIGGERER_WAIT.total_seconds())
            rows.append(triggerer_row(answer, wait))
            failed = publish_check(cluster, context, rows)
            if failed:
                raise AirflowFailException(f"{len(failed)} check(s) FAILED: {', '.join(failed)} (see the run note)")
            return [r.to_dict() for r in rows]

        log_before() >> probe >> check()
    return dag
