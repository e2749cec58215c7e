"""Log backup guard, every 10 minutes: exactly one log backup task running, RPO measured, window published."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from ..config import ClusterConfig
from ..operators.log_backup import TidbLogBackupOperator
from .common import cr_args, dag_kwargs

DOC = """
### Log backup guard of `{ns}/{name}`, every 10 minutes

| task | what it does |
|---|---|
| `find_log_backup` | finds the cluster's live log backup by its state (Running or Paused, whatever created it), or one being started; fails when there are two (TiDB runs one task per cluster); names the one to create when there is none: `{log}` |
| `ensure_log_backup` | creates it when there is none (storage `{root}/log-backup`), resumes a paused one (one paused for maintenance by the log-control DAG only once its time is up), and fails loudly on Failed or an error pause, saying what to do; never papers over them |
| `measure_rpo` | checkpoint lag against the RPO: over {warn} logs a warning, over {critical} fails the run (alert on it). Right after a start there is no checkpoint for up to a tracker interval ({tracker}): that is *starting*, for {grace} more |
| `publish_window` | computes the recoverable window from the live CRs and returns it (XCom) |
| `publish_status` | what the TiDB PITR page shows (XCom): the window with the cause of each gap, the timeline (log coverage, every snapshot, the truncation point), the checkpoint lag and its level, the last snapshot, the next retention plan as a dry run. Runs whatever failed before it |

**Stopped** is terminal for a log backup CR. The guard then fails, saying so; trigger it with
`start_new_log_backup` on to start `<name>-<n>` at `{root}/log-backup-<n>`, and take a snapshot after
it: the old log stays restorable up to its checkpoint, times between it and the first snapshot of the new
one are not.

A log backup **paused for maintenance** (the log-control DAG `{control}`, at most 23 h) is left paused until the end
recorded on its CR (annotation `tidb-pitr-airflow/maintenance-pause`), its lag a warning rather than an RPO failure;
the first guard run after that resumes it.

A log backup **paused longer than BR's pause GC TTL** (24 h) cannot be resumed once the GC has passed its
checkpoint: BR refuses the resume for good. The guard then fails, quoting BR, and never asks for that resume
again; `start_new_log_backup` stops the dead task and starts `<name>-<n>` in its place, with the same gap.
"""


SCHEDULE_DOC = """
### Log backup guard of `{ns}/{name}`, every 10 minutes (backups by BackupSchedule `{schedule}`)

TiDB Operator's BackupSchedule `{schedule}` takes this cluster's snapshots, runs its log backup and deletes
old backups. This guard never creates, resumes or stops a log backup; it watches the schedule's.

| task | what it does |
|---|---|
| `find_log_backup` | the schedule's log backup (its `status.logBackup`), live; fails naming it when it is gone (`maxBackups`, tidb-operator#6320), stopped or failed, or when another log backup runs for the cluster |
| `measure_rpo` | checkpoint lag of that log backup against the RPO: over {warn} logs a warning, over {critical} fails the run |
| `schedule_report` | what the schedule's GC deletes and truncates next (its `maxReservedTime` / `maxBackups` rule), and warnings for the spec's known hazards (tidb-operator#6320, #6068) and for a next GC that deletes the last Complete base because the newest expired snapshot is Failed |
| `publish_window` | the recoverable window over the schedule's snapshots and log (XCom) |
| `publish_status` | what the TiDB PITR page shows; its retention plan is the schedule's next GC |
"""


def _rpo_window_status(cluster: ClusterConfig) -> tuple[Any, Any, Any]:
    """`measure_rpo`, `publish_window`, `publish_status`: the guard's last tasks, whoever runs the log backup.
    The last two run whatever failed before them, so the page and the window are always published."""

    @task(task_id="measure_rpo", retries=0)
    def measure_rpo() -> dict[str, Any]:
        from .tasks.guard import measure_rpo as measure

        return measure(cluster)

    @task(task_id="publish_window", trigger_rule="all_done")
    def publish_window() -> dict[str, Any]:
        from .tasks.guard import current_window

        return current_window(cluster)

    @task(task_id="publish_status", trigger_rule="all_done")
    def publish_status(**context: Any) -> dict[str, Any]:
        from ..runtime.notes import publish_note
        from .tasks.guard_status import cluster_status, status_note

        status = cluster_status(cluster)
        publish_note(context, status_note(cluster, status))
        return status

    return measure_rpo(), publish_window(), publish_status()


def _build_for_schedule(cluster: ClusterConfig) -> DAG:
    doc = SCHEDULE_DOC.format(ns=cluster.namespace, name=cluster.name, schedule=cluster.backup_schedule,
                              warn=cluster.rpo.warn, critical=cluster.rpo.critical)
    with DAG(schedule=timedelta(minutes=10), **dag_kwargs(cluster, "log_guard", doc)) as dag:

        @task
        def find_log_backup() -> dict[str, Any]:
            from .tasks.guard_schedule import find_schedule_log

            return find_schedule_log(cluster)

        @task(trigger_rule="all_done")
        def schedule_report() -> dict[str, Any]:
            from .tasks.guard_schedule import schedule_report as report

            return report(cluster)

        measure_rpo, publish_window, publish_status = _rpo_window_status(cluster)
        find_log_backup() >> [measure_rpo, schedule_report(), publish_window, publish_status]
    return dag


def build(cluster: ClusterConfig) -> DAG:
    if cluster.schedule_managed:
        return _build_for_schedule(cluster)
    waits = cluster.waits
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, log=cluster.log_backup_name, root=cluster.storage.root,
                     control=cluster.dag_id("log_control"),
                     warn=cluster.rpo.warn, critical=cluster.rpo.critical, tracker=waits.tracker_interval,
                     grace=waits.start_grace)
    params = {"start_new_log_backup": Param(
        False, type="boolean", title="Start a new log backup",
        description="When the log backup is Stopped, or paused past its GC TTL so that BR refuses to resume it: "
                    "start a new one at a new prefix (take a snapshot after it).")}
    with DAG(schedule=timedelta(minutes=10), params=params, **dag_kwargs(cluster, "log_guard", doc)) as dag:

        @task
        def find_log_backup(params: dict[str, Any] | None = None) -> dict[str, Any]:
            from .tasks.guard import find_log_backup as find

            return find(cluster, start_new=bool((params or {}).get("start_new_log_backup")))

        found = find_log_backup()
        ensure = TidbLogBackupOperator(
            task_id="ensure_log_backup", action="start",
            backup_name="{{ ti.xcom_pull(task_ids='find_log_backup')['name'] }}",
            prefix="{{ ti.xcom_pull(task_ids='find_log_backup')['prefix'] }}",
            replaces="{{ ti.xcom_pull(task_ids='find_log_backup').get('replaces', '') }}",
            cluster=cluster.tidb_cluster, storage=cluster.storage.cr_block(), pitr_cluster=cluster.name,
            br=cluster.br_block(), service_account=cluster.service_account, legacy_log_stop=cluster.legacy_log_stop,
            retries=0, wait_timeout=timedelta(minutes=30), **cr_args(cluster))

        # All leaves, so a critical RPO fails the run even though the window and the status are always published.
        found >> ensure >> list(_rpo_window_status(cluster))
    return dag
