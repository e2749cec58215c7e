"""Daily retention: plan from live CRs and storage, log the plan, truncate the log, delete expired snapshots,
then check that the recoverable window still covers the policy."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.timetables.trigger import CronTriggerTimetable

from ..config import ClusterConfig
from ..operators.delete import TidbDeleteSnapshotOperator
from ..operators.truncate import TidbLogTruncateOperator
from ..runtime.context import failed_upstream, run_key
from ..units import format_duration
from .common import cr_args, dag_kwargs, republish_status

DOC = """
### Retention of `{ns}/{name}`: keep {retention} restorable, daily

How it decides (TiDB Operator's `maxReservedTime` rule, with stricter guards):

1. the policy start E = checkpoint (or now) minus {retention}; every time in [E, checkpoint] must stay restorable;
2. only snapshots managed here count: made by this project for this cluster (labels
   `app.kubernetes.io/managed-by: tidb-pitr-airflow`, `tidb-pitr-airflow/cluster: {name}`) and stored at
   `{root}/snapshot-<14 digits>` of the configured storage; anything else is *not managed here: kept*;
3. the base is the newest managed **Complete** full-cluster snapshot at or before E inside the log range; it
   and every newer snapshot stay, older ones go; at least two always remain; the base of a restore in
   progress stays too;
4. the log is truncated to the base's commitTs, never past the checkpoint, a kept snapshot or a restore in
   progress; a truncate that failed before is asked again with one TSO less (the operator never reruns a value);
5. nothing happens while a failed snapshot run is on record, and nothing older than the base goes unless
   the base is really in storage (its `backupmeta`, and the log not truncated past it).

| task | what it does |
|---|---|
| `plan` | takes the retention lease (restores wait for it), reads the CRs, the restores in progress and the storage, computes and logs the plan (set `dry_run` to stop here) |
| `truncate_log` | sets `logTruncateUntil` and waits for `log-truncate` Complete with exactly that value |
| `delete_snapshot` | one per expired snapshot: re-checks it is managed here, deletes its Backup CR (cleanPolicy Delete removes the data), or its storage prefix when the CR is gone; runs even when the truncate failed |
| `finish` | releases the lease, fails the run if an action failed, else checks the window still covers the policy |
| `publish_status` | what the TiDB PITR page shows (the new earliest time, the next plan), published again at once |
"""


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, retention=format_duration(cluster.retention),
                     root=cluster.storage.root)
    hour, minute = (int(x) for x in cluster.snapshot_anchor.split(":"))
    # Daily, two hours after the snapshot anchor, in the cluster's zone: after a same-day snapshot has finished.
    schedule = CronTriggerTimetable(f"{minute} {(hour + 2) % 24} * * *", timezone=cluster.timezone)
    params = {"dry_run": Param(False, type="boolean", title="Dry run: plan only, change nothing",
                               description="Plan and log what would be truncated and deleted; change nothing.")}
    with DAG(schedule=schedule, params=params, **dag_kwargs(cluster, "retention", doc)) as dag:

        @task(retries=0)
        def plan(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from ..planning.notes import dry_run_note, with_details
            from ..runtime.notes import publish_note
            from .tasks.retention import plan_for

            try:
                planned = plan_for(cluster, dry_run=bool((params or {}).get("dry_run")), run=run_key(context))
            except AirflowFailException as refused:  # held after a failed snapshot, or a plan that is refused
                publish_note(context, with_details(f"Retention did nothing: {refused}", str(refused)))
                raise
            if planned["dry_run"]:
                publish_note(context, dry_run_note(planned["summary"]))
            return planned

        planned = plan()
        truncate = TidbLogTruncateOperator(
            task_id="truncate_log", backup_name="{{ ti.xcom_pull(task_ids='plan')['log_backup'] or '' }}",
            until_ts="{{ ti.xcom_pull(task_ids='plan')['truncate_until'] or '' }}", **cr_args(cluster))

        @task
        def expired(planned: dict[str, Any]) -> list[dict[str, Any]]:
            return planned["deletions"]

        storage = cluster.storage.hook_kwargs()
        delete = TidbDeleteSnapshotOperator.partial(
            task_id="delete_snapshot", cluster_name=cluster.name, storage=cluster.storage.cr_block(),
            root=cluster.storage.root, storage_provider=storage["provider"], storage_conn_id=storage["conn_id"],
            bucket=storage["bucket"], map_index_template="{{ task.backup_name or task.prefix }}", **cr_args(cluster),
        ).expand_kwargs(expired(planned))

        @task(trigger_rule="all_done", retries=0)
        def finish(**context: Any) -> dict[str, Any]:
            from .tasks.retention import finish as close

            return close(cluster, run=run_key(context), failed_tasks=failed_upstream(context),
                         planned=context["ti"].xcom_pull(task_ids="plan"), context=context)

        # Deleting snapshots older than the verified base is safe whatever the truncate did: not after it.
        planned >> truncate
        [truncate, delete] >> (done := finish())
        done >> republish_status(cluster)  # the window and the next plan as they are now, on the page in seconds
    return dag
