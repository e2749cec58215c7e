"""Snapshot every two days: preflight, Backup CR, verify the data in storage, wait for the log, publish."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, task

from ..config import ClusterConfig
from ..operators.backup import TidbSnapshotBackupOperator
from ..sensors.backup import TidbLogCheckpointSensor
from ..timetables import EveryNDaysTimetable
from .common import RUN_STAMP, cr_args, dag_kwargs

DOC = """
### Snapshot backup of `{ns}/{name}`, every two days at {anchor} ({tz})

Runs every second calendar day at the anchor's local time (a custom timetable: no month-end misfire of
`*/2` cron, no drift across DST; the gap is then 47 or 49 hours).

| task | what it does |
|---|---|
| `preflight` | the log backup must be Running with checkpoint lag under the critical RPO ({critical}); otherwise the snapshot could not be combined with the log for PITR |
| `snapshot` | creates Backup `snapshot-YYYYMMDDHHMMSS` (named from the run; a retry adopts it) at `{root}/snapshot-YYYYMMDDHHMMSS`, waits (deferred) for Complete |
| `verify` | checks the snapshot in storage: `backupmeta` present (BR writes it last) and data under the prefix |
| `wait_log_past_snapshot` | waits until the log checkpoint passes the snapshot's commitTs: only then is the snapshot a PITR base |
| `publish` | emits an Asset event `{asset}` with commitTs and path |
"""


def snapshot_asset(cluster: ClusterConfig) -> Asset:
    return Asset(f"tidb://{cluster.namespace}/{cluster.name}/snapshots", group="tidb-pitr")


def build(cluster: ClusterConfig) -> DAG:
    asset = snapshot_asset(cluster)
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, anchor=cluster.snapshot_anchor, tz=cluster.timezone,
                     critical=cluster.rpo.critical, root=cluster.storage.root, asset=asset.uri)
    timetable = EveryNDaysTimetable(days=2, anchor=cluster.snapshot_anchor, timezone=cluster.timezone)
    with DAG(schedule=timetable, **dag_kwargs(cluster, "snapshot", doc)) as dag:

        @task
        def preflight() -> dict[str, Any]:
            from ..checks import check_log_backup_healthy

            return check_log_backup_healthy(cluster)

        name = f"snapshot-{RUN_STAMP}"
        snapshot = TidbSnapshotBackupOperator(
            task_id="snapshot", backup_name=name, cluster=cluster.tidb_cluster, storage=cluster.storage.cr_block(),
            prefix=cluster.storage.snapshot_prefix(name), br=cluster.br_block(),
            service_account=cluster.service_account, table_filter=cluster.table_filter or None,
            execution_timeout=None, **cr_args(cluster))

        @task
        def verify(result: dict[str, Any]) -> dict[str, Any]:
            from ..checks import verify_snapshot_in_storage

            return verify_snapshot_in_storage(cluster, result)

        caught_up = TidbLogCheckpointSensor(
            task_id="wait_log_past_snapshot", cr_name="{{ ti.xcom_pull(task_ids='preflight')['log_backup'] }}",
            target_ts="{{ ti.xcom_pull(task_ids='snapshot')['commit_ts'] }}", poll_interval=30.0, **cr_args(cluster))

        @task(outlets=[asset])
        def publish(result: dict[str, Any], *, outlet_events: Any = None) -> dict[str, Any]:
            extra = {"commit_ts": str(result["commit_ts"]), "commit_time": result["commit_time"],
                     "backup_path": result["backup_path"], "name": result["name"]}
            if outlet_events is not None:
                outlet_events[asset].extra = extra
            return extra

        checked = verify(snapshot.output)
        preflight() >> snapshot
        checked >> caught_up >> publish(snapshot.output)
    return dag
