"""On-demand restore to a point in time chosen in the trigger form."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import DAG, Param, task

from ..config import ClusterConfig
from ..operators.restore import TidbRestoreOperator
from ..sensors.backup import TidbLogCheckpointSensor
from ..sensors.storage import TidbStorageCheckpointSensor
from .common import cr_args, dag_kwargs, failed_upstream, run_key

DOC = """
### Restore `{ns}/{name}` to a point in time

Trigger it from the UI: pick **restore_time** with the date-time picker (minute precision, in your UI
timezone; it is sent as UTC), or paste an exact **restore_tso**. Name the empty **target_cluster** and
its **target_namespace**; the source cluster itself is refused.

| task | what it does |
|---|---|
| `plan` | validates every field, reads the recoverable window, picks the base snapshot (the newest Complete full-cluster one at or before the time, or `base_snapshot`), estimates the duration, checks the target exists and is not being restored into, waits for a running retention (up to {retention_wait}, then refuses), takes a lease that keeps retention from deleting the base, and logs the plan with the Restore CR body. Any refusal happens here, before a CR exists |
| `proceed` | stops here when `dry_run` is set |
| `wait_for_checkpoint` | when the time is recent, waits until the log checkpoint has passed it |
| `wait_for_storage_checkpoint` | and until the checkpoint in storage, which BR checks, has passed it too |
| `restore` | creates the `pitr` Restore CR (named after the run: a second run to the same time makes its own) and waits (deferred) for Complete |
| `report` | the restore point and how long it took; releases the lease, also when the restore failed |

BR refuses a target that is not empty (`ErrDatabasesAlreadyExisted`); that failure is reported as is.
"""


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, retention_wait=cluster.waits.retention_wait)
    params = {
        "restore_time": Param(None, type=["null", "string"], format="date-time", title="Restore to",
                              description="Date and time to restore to (with its timezone). Or use restore_tso."),
        "restore_tso": Param(None, type=["null", "string"], pattern="^[0-9]*$", title="Restore to TSO",
                             description="An exact TiDB TSO instead of restore_time."),
        "target_cluster": Param(type="string", minLength=1, title="Target cluster",
                                description="The empty TidbCluster / Cluster to restore into (not the source)."),
        "target_namespace": Param(cluster.namespace, type="string", minLength=1, title="Target namespace"),
        "base_snapshot": Param(None, type=["null", "string"], title="Base snapshot (optional)",
                               description="Override the base snapshot (a Backup CR name)."),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Validate and plan only."),
    }
    with DAG(schedule=None, params=params, render_template_as_native_obj=True,
             **dag_kwargs(cluster, "restore", doc)) as dag:

        @task(retries=0)
        def plan(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            from ..operators.labels import run_hash
            from ..restore_run import plan_restore_for

            return plan_restore_for(cluster, dict(params or {}), run=run_key(context), run_hash=run_hash(context))

        @task.short_circuit
        def proceed(planned: dict[str, Any]) -> bool:
            return not planned["dry_run"]

        planned = plan()
        args = {**cr_args(cluster), "namespace": "{{ ti.xcom_pull(task_ids='plan')['target_namespace'] }}"}
        wait = TidbLogCheckpointSensor(
            task_id="wait_for_checkpoint", cr_name="{{ ti.xcom_pull(task_ids='plan')['log_backup'] }}",
            target_ts="{{ ti.xcom_pull(task_ids='plan')['target_ts'] }}", poll_interval=15.0,
            **{**cr_args(cluster)})

        storage_caught_up = TidbStorageCheckpointSensor(
            task_id="wait_for_storage_checkpoint", storage=cluster.storage.hook_kwargs(),
            log_prefix="{{ ti.xcom_pull(task_ids='plan')['log_prefix'] }}",
            target_ts="{{ ti.xcom_pull(task_ids='plan')['target_ts'] }}",
            timeout=cluster.rpo.critical.total_seconds())

        restore = TidbRestoreOperator(task_id="restore", body="{{ ti.xcom_pull(task_ids='plan')['body'] }}",
                                      pitr_cluster=cluster.name, retries=0, **args)

        @task(trigger_rule="all_done", retries=0)
        def report(planned: dict[str, Any], **context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from ..operators.labels import run_hash
            from ..restore_run import release_restore

            release_restore(cluster, run_hash(context))
            failed = failed_upstream(context)
            if failed:
                raise AirflowFailException(f"the restore did not complete: {', '.join(failed)} failed (see their "
                                           "logs)")
            restored = context["ti"].xcom_pull(task_ids="restore")
            if not restored:
                return {"dry_run": True, "plan": planned["plan"]}
            summary = {"restore_point": planned["target_time"], "restore_ts": str(planned["target_ts"]),
                       "target": f"{planned['target_namespace']}/{planned['target_cluster']}",
                       "base_snapshot": planned["plan"]["base"]["name"], "restore": restored["name"],
                       "duration_seconds": restored["duration_seconds"],
                       "estimated_seconds": planned["plan"]["estimated_seconds"]}
            logging.getLogger(__name__).info(
                "Restored %s/%s to %s (TSO %s) into %s in %s s", cluster.namespace, cluster.name,
                summary["restore_point"], summary["restore_ts"], summary["target"], summary["duration_seconds"])
            return summary

        proceed(planned) >> wait >> storage_caught_up >> restore
        restore >> report(planned)
    return dag
