"""Log backup guard, every 10 minutes: exactly one log backup task running, RPO measured, window published."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task

from ..config import ClusterConfig
from ..operators.log_backup import TidbLogBackupOperator
from .common import cr_args, dag_kwargs

DOC = """
### Log backup guard of `{ns}/{name}`, every 10 minutes

| task | what it does |
|---|---|
| `find_log_backup` | finds the cluster's log backup CR (whatever created it), or names the one to create: `{log}` |
| `ensure_log_backup` | creates it when there is none (storage `{root}/log-backup`), resumes a paused one, and fails loudly on Stopped, Failed or an error pause, saying what to do; never papers over them |
| `measure_rpo` | checkpoint lag against the RPO: over {warn} logs a warning, over {critical} fails the run (alert on it) |
| `publish_window` | computes the recoverable window from the live CRs and returns it (XCom) |

Stopped is terminal for a log backup CR: to start again, create a new CR with a new name and prefix
(set `log_backup_name`-compatible names in the config) and take a new snapshot after it.
"""


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, log=cluster.log_backup_name, root=cluster.storage.root,
                     warn=cluster.rpo.warn, critical=cluster.rpo.critical)
    with DAG(schedule=timedelta(minutes=10), **dag_kwargs(cluster, "log_guard", doc)) as dag:

        @task
        def find_log_backup() -> str:
            from ..checks import log_backup_name

            return log_backup_name(cluster)

        ensure = TidbLogBackupOperator(
            task_id="ensure_log_backup", action="start", backup_name="{{ ti.xcom_pull(task_ids='find_log_backup') }}",
            cluster=cluster.tidb_cluster, storage=cluster.storage.cr_block(), prefix=cluster.storage.log_prefix,
            br=cluster.br_block(), service_account=cluster.service_account, legacy_log_stop=cluster.legacy_log_stop,
            retries=0, wait_timeout=timedelta(minutes=30), **cr_args(cluster))

        @task(retries=0)
        def measure_rpo() -> dict[str, Any]:
            from ..checks import measure_rpo as measure

            return measure(cluster)

        @task(trigger_rule="all_done")
        def publish_window() -> dict[str, Any]:
            from ..checks import current_window

            return current_window(cluster)

        # Both are leaves, so a critical RPO fails the run even though the window is always published.
        find_log_backup() >> ensure >> [measure_rpo(), publish_window()]
    return dag
