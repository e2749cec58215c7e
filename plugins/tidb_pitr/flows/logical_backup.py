"""Dumpling logical backup (TiDB Operator v1) on a schedule: the Backup CR, the dump checked in storage, retention."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

from ..config import ClusterConfig
from ..cr.logical import backup_spec
from ..operators.logical import TidbLogicalBackupOperator
from .common import RUN_STAMP, cr_args, dag_kwargs

DOC = """
### Logical (Dumpling) backup of `{ns}/{name}`, {schedule} ({tz})

TiDB Operator v1 runs Dumpling for a `Backup` CR with `from:` and no `br:`; the dump is archived as
`s3://{bucket}/{root}/backup-<RFC3339>.tgz`. These backups are for exports and logical restores with TiDB
Lightning (`{restore}`); they are not PITR bases.

| task | what it does |
|---|---|
| `backup` | creates Backup `{name}-logical-YYYYMMDDHHMMSS` (named from the run; a retry adopts it, never a second CR) with `from: {{host: {host}, port: {port}, user: {user}, secretName: {secret}}}`, `s3:` (prefix `{root}`), `dumpling.options` {options}, and waits (deferred) for Complete. A wrong password fails as the operator does: `ConnectTidbFailed` after its 30 minutes of retries |
| `verify` | reads the archive as a stream: Dumpling's `metadata` with `Pos:` equal to the CR's commitTs, a `<db>-schema-create.sql` per database, a `<db>.<table>-schema.sql` per table, the data files; records the TSO on the CR (annotation `tidb-pitr-airflow/logical-verified-ts`) |
| `retention` | keeps {keep}, and always the newest verified one; deletes the others made here (their archive, then their CR). Backups and archives it did not make are never touched |
"""


def schedule_of(cluster: ClusterConfig) -> str:
    lb = cluster.logical_backup
    assert lb is not None
    if lb.schedule:
        return lb.schedule
    hour, minute = (int(p) for p in lb.anchor.split(":"))
    return f"{minute} {hour} * * *"


def _keep_text(cluster: ClusterConfig) -> str:
    keep = cluster.logical_backup.keep  # type: ignore[union-attr]
    parts = ([f"the newest {keep.count}"] if keep.count else []) + ([f"any younger than {keep.age}"] if keep.age
                                                                    else [])
    return " and ".join(parts)


def build(cluster: ClusterConfig) -> DAG:
    spec = backup_spec(cluster)
    schedule = schedule_of(cluster)
    access = spec["access"]
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, schedule=f"cron `{schedule}`", tz=cluster.timezone,
                     bucket=spec["storage"]["s3"]["bucket"], root=spec["prefix"], host=access["host"],
                     port=access["port"], user=access["user"], secret=access["secretName"],
                     options=" ".join(spec["options"]), keep=_keep_text(cluster),
                     restore=cluster.dag_id("logical_restore"))
    timetable = CronTriggerTimetable(schedule, timezone=cluster.timezone)
    with DAG(schedule=timetable, **dag_kwargs(cluster, "logical_backup", doc)) as dag:
        backup = TidbLogicalBackupOperator(
            task_id="backup", pitr_cluster=cluster.name, tidb_cluster=cluster.tidb_cluster, stamp=RUN_STAMP,
            spec=spec, execution_timeout=None, **cr_args(cluster))

        @task(retries=1)
        def verify(result: dict[str, Any]) -> dict[str, Any]:
            from .tasks.logical import verify_dump

            return verify_dump(cluster, result)

        @task
        def retention() -> dict[str, Any]:
            from .tasks.logical import apply_logical_retention

            return apply_logical_retention(cluster)

        verify(backup.output) >> retention()
    return dag
