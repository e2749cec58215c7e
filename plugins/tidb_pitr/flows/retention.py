"""Daily retention: plan from live CRs and storage, log the plan, truncate the log, delete expired snapshots,
then check that the recoverable window still covers the policy."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.timetables.trigger import CronTriggerTimetable

from ..config import ClusterConfig
from ..operators.delete import TidbDeleteSnapshotOperator
from ..operators.truncate import TidbLogTruncateOperator
from .common import cr_args, dag_kwargs

DOC = """
### Retention of `{ns}/{name}`: keep {retention} restorable, daily

How it decides (TiDB Operator's `maxReservedTime` rule, with stricter guards):

1. the policy start E = checkpoint (or now) minus {retention}; every time in [E, checkpoint] must stay restorable;
2. the base is the newest **Complete** snapshot at or before E inside the log range; it and every newer
   snapshot stay, older Complete snapshots go; at least two Complete snapshots always remain;
3. the log is truncated to the base's commitTs, never past the checkpoint, never at or before the log's start;
4. the plan is refused when its result would no longer cover [E, checkpoint]; nothing runs after a failed
   snapshot run (fix the snapshot first).

| task | what it does |
|---|---|
| `plan` | reads the CRs and the storage, computes and logs the plan (set `dry_run` to stop here) |
| `truncate_log` | sets `logTruncateUntil` and waits for `log-truncate` Complete with exactly that value |
| `delete_snapshot` | one per expired snapshot: deletes its Backup CR (cleanPolicy Delete removes the data), or its storage prefix when the CR is gone |
| `verify_window` | recomputes the window from the live CRs and fails if it no longer covers the policy |
"""


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, retention=cluster.retention)
    hour, minute = (int(x) for x in cluster.snapshot_anchor.split(":"))
    # Daily, two hours after the snapshot anchor, in the cluster's zone: after a same-day snapshot has finished.
    schedule = CronTriggerTimetable(f"{minute} {(hour + 2) % 24} * * *", timezone=cluster.timezone)
    params = {"dry_run": Param(False, type="boolean", description="Plan and log only; change nothing.")}
    with DAG(schedule=schedule, params=params, **dag_kwargs(cluster, "retention", doc)) as dag:

        @task
        def plan(params: dict[str, Any] | None = None) -> dict[str, Any]:
            from ..retention_run import plan_for

            return plan_for(cluster, dry_run=bool((params or {}).get("dry_run")))

        planned = plan()
        truncate = TidbLogTruncateOperator(
            task_id="truncate_log", backup_name="{{ ti.xcom_pull(task_ids='plan')['log_backup'] }}",
            until_ts="{{ ti.xcom_pull(task_ids='plan')['truncate_until'] or '' }}", **cr_args(cluster))

        @task
        def expired(planned: dict[str, Any]) -> list[dict[str, Any]]:
            return planned["deletions"]

        storage = cluster.storage.hook_kwargs()
        delete = TidbDeleteSnapshotOperator.partial(
            task_id="delete_snapshot", storage_provider=storage["provider"], storage_conn_id=storage["conn_id"],
            bucket=storage["bucket"], trigger_rule="none_failed", **cr_args(cluster),
        ).expand_kwargs(expired(planned))

        @task(trigger_rule="none_failed")
        def verify_window() -> dict[str, Any]:
            from ..retention_run import verify_window_covers_policy

            return verify_window_covers_policy(cluster)

        planned >> truncate >> delete >> verify_window()
    return dag
