"""Log compaction (optional): a CompactBackup over the log since the last one, never past the checkpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowSkipException

from ..config import ClusterConfig
from ..cr.bodies import storage_with_prefix
from ..operators.compact import TidbCompactBackupOperator
from .common import RUN_STAMP, cr_args, dag_kwargs

DOC = """
### Log compaction of `{ns}/{name}` (TiDB >= v8.5.5 / v9), daily

| task | what it does |
|---|---|
| `plan_compaction` | from the end of the last Complete CompactBackup (or the log start) to the current checkpoint, never past it; skipped when under an hour of new log |
| `compact` | creates the CompactBackup with TSO bounds (not the schedule's zone-less dates) and waits for Complete |
"""
MIN_SPAN = timedelta(hours=1)


def plan_window(cluster: ClusterConfig) -> dict[str, Any]:
    from ..cr.api import COMPACT_BACKUPS, COMPONENT_COMPACT, LABEL_COMPONENT, LABEL_PITR_CLUSTER
    from ..cr.inventory import load_inventory
    from ..cr.model import CompactView, State
    from ..hooks.kubernetes import hook_for

    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    current = inventory.current_log()
    if current is None or not current.checkpoint_ts or not current.commit_ts:
        raise AirflowSkipException("no running log backup to compact")
    selector = f"{LABEL_PITR_CLUSTER}={cluster.name},{LABEL_COMPONENT}={COMPONENT_COMPACT}"
    done = [CompactView.from_cr(o) for o in hook.list(COMPACT_BACKUPS, cluster.namespace, label_selector=selector)]
    # Only compactions over this log's storage count (a new log after a Stopped one starts from its own start).
    ends = [v.status_end_ts or v.end_ts or 0 for v in done if v.state == State.COMPLETE and v.storage == current.storage]
    start = max([current.log_min_ts or current.commit_ts, *ends])
    end = current.checkpoint_ts
    if (end >> 18) - (start >> 18) < MIN_SPAN.total_seconds() * 1000:
        raise AirflowSkipException(f"less than {MIN_SPAN} of new log since {start}; nothing to compact")
    return {"start_ts": start, "end_ts": end, "log_prefix": current.prefix}


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name)
    with DAG(schedule=timedelta(days=1), **dag_kwargs(cluster, "compaction", doc)) as dag:

        @task
        def plan_compaction() -> dict[str, Any]:
            return plan_window(cluster)

        planned = plan_compaction()
        compact = TidbCompactBackupOperator(
            task_id="compact", stamp=RUN_STAMP, cluster=cluster.tidb_cluster,
            log_storage=storage_with_prefix(cluster.storage.cr_block(),
                                            "{{ ti.xcom_pull(task_ids='plan_compaction')['log_prefix'] }}"),
            start_ts="{{ ti.xcom_pull(task_ids='plan_compaction')['start_ts'] }}",
            end_ts="{{ ti.xcom_pull(task_ids='plan_compaction')['end_ts'] }}", pitr_cluster=cluster.name,
            service_account=cluster.service_account, **cr_args(cluster))
        planned >> compact
    return dag
