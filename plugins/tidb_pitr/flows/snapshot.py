"""Snapshot every two days: preflight, Backup CR, verify the data in storage, wait for the log, publish."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, task

from ..config import ClusterConfig
from ..operators.backup import TidbSnapshotBackupOperator
from ..runtime.context import failed_upstream, run_key
from ..sensors.backup import TidbLogCheckpointSensor
from ..timetables import EveryNDaysTimetable
from .common import RUN_STAMP, cr_args, dag_kwargs, republish_status

DOC = """
### Snapshot backup of `{ns}/{name}`, every two days at {anchor} ({tz})

Runs every second calendar day at the anchor's local time (a custom timetable: no month-end misfire of
`*/2` cron, no drift across DST; the gap is then 47 or 49 hours).

| task | what it does |
|---|---|
| `preflight` | the live log backup must be Running with checkpoint lag under the critical RPO ({critical}) (or just started); otherwise the snapshot could not be combined with the log for PITR |
| `snapshot` | creates Backup `{name}-snapshot-YYYYMMDDHHMMSS` (named from the run; a retry adopts it) at `{root}/snapshot-YYYYMMDDHHMMSS`, waits (deferred) for Complete. After a Failed one, a retry makes attempt `-a2` in a folder of its own and keeps the failed CR |
| `verify` | checks the snapshot in storage: `backupmeta` present (BR writes it last) and data under the prefix |
| `wait_log_past_snapshot` | waits until the log checkpoint passes the snapshot's commitTs: only then is the snapshot a PITR base |
| `publish` | emits an Asset event `{asset}` with commitTs and path, and lifts an earlier failed run's hold on retention |
| `record_failure` | when anything failed: records it on the log backup CR (annotation `tidb-pitr-airflow/snapshot-failed`), so that retention deletes and truncates nothing until a later run succeeds |
| `publish_status` | what the TiDB PITR page shows, published again so the new snapshot is on the page within seconds |

**One snapshot, one date that matters.** A snapshot is *taken* at its **commitTs**: the data in it is the
cluster's as of that time, which the page, the note and the restore plan show. Its **name**
(`{name}-snapshot-YYYYMMDDHHMMSS`) is its **slot**: the run's `run_after` in UTC, the time the timetable
scheduled it (or a manual run was triggered), so that a retry finds the CR it made; the page shows it as the
slot. Airflow's *logical date* of the run is the start of its data interval, the slot two days before: it names
nothing here.
"""


def snapshot_asset(cluster: ClusterConfig) -> Asset:
    return Asset(f"tidb://{cluster.namespace}/{cluster.name}/snapshots", group="tidb-pitr")


def _log_backups(cluster: ClusterConfig) -> tuple[Any, list[Any]]:
    from ..cr.inventory import load_inventory
    from ..hooks.kubernetes import hook_for

    hook = hook_for(cluster)
    return hook, [v for v in load_inventory(hook, cluster).logs if not v.deleting]


def build(cluster: ClusterConfig) -> DAG:
    asset = snapshot_asset(cluster)
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, anchor=cluster.snapshot_anchor, tz=cluster.timezone,
                     critical=cluster.rpo.critical, root=cluster.storage.root, asset=asset.uri)
    timetable = EveryNDaysTimetable(days=2, anchor=cluster.snapshot_anchor, timezone=cluster.timezone)
    with DAG(schedule=timetable, **dag_kwargs(cluster, "snapshot", doc)) as dag:

        @task
        def preflight() -> dict[str, Any]:
            from .tasks.snapshot import check_log_backup_healthy

            return check_log_backup_healthy(cluster)

        snapshot = TidbSnapshotBackupOperator(
            task_id="snapshot", pitr_cluster=cluster.name, stamp=RUN_STAMP, cluster=cluster.tidb_cluster,
            storage=cluster.storage.cr_block(), root=cluster.storage.root, br=cluster.br_block(),
            service_account=cluster.service_account, execution_timeout=None, **cr_args(cluster))

        @task
        def verify(result: dict[str, Any]) -> dict[str, Any]:
            from .tasks.snapshot import verify_snapshot_in_storage

            return verify_snapshot_in_storage(cluster, result)

        caught_up = TidbLogCheckpointSensor(
            task_id="wait_log_past_snapshot", cr_name="{{ ti.xcom_pull(task_ids='preflight')['log_backup'] }}",
            target_ts="{{ ti.xcom_pull(task_ids='snapshot')['commit_ts'] }}", poll_interval=30.0, **cr_args(cluster))

        @task(outlets=[asset])
        def publish(result: dict[str, Any], *, outlet_events: Any = None, **context: Any) -> dict[str, Any]:
            from ..cr.leases import clear_snapshot_failure
            from ..planning.notes import snapshot_note
            from ..runtime.notes import publish_note

            extra = {"commit_ts": str(result["commit_ts"]), "commit_time": result["commit_time"],
                     "backup_path": result["backup_path"], "name": result["name"]}
            if outlet_events is not None:
                outlet_events[asset].extra = extra
            started = context["dag_run"].start_date
            hook, logs = _log_backups(cluster)
            for view in logs:
                clear_snapshot_failure(hook, view, started)
            from ..cr.names import snapshot_slot

            publish_note(context, snapshot_note(result["name"], int(result["commit_ts"]), result.get("backup_size"),
                                                result["backup_path"], cluster.timezone,
                                                slot=snapshot_slot(result["name"])))
            return extra

        @task(trigger_rule="one_failed", retries=0)
        def record_failure(**context: Any) -> None:
            from airflow.sdk.exceptions import AirflowFailException

            from ..cr.leases import record_snapshot_failure
            from ..planning.notes import with_details
            from ..runtime.notes import publish_note

            failed = failed_upstream(context)
            reason = f"task(s) {', '.join(failed) or '?'} failed"
            hook, logs = _log_backups(cluster)
            live = [v for v in logs if v.commit_ts and not v.state.terminal] or logs[-1:]
            for view in live:
                record_snapshot_failure(hook, view, run_key(context), reason)
            broke = failed_upstream(context, only_failed=True)  # what failed itself, not what it stopped
            publish_note(context, with_details(f"Snapshot failed: {', '.join(broke) or '?'} failed; retention holds",
                                               f"Snapshot failed: {reason} (see their logs); retention deletes and "
                                               "truncates nothing until a later snapshot run succeeds"))
            raise AirflowFailException(f"snapshot run failed ({reason}); retention of {cluster.namespace}/"
                                       f"{cluster.name} holds until a later snapshot run succeeds")

        first = preflight()
        checked = verify(snapshot.output)
        published = publish(snapshot.output)
        first >> snapshot
        checked >> caught_up >> published
        failure = record_failure()
        [first, snapshot, checked, caught_up, published] >> failure
        [published, failure] >> republish_status(cluster)
    return dag
