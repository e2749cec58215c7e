"""On-demand Lightning restore (TiDB Operator v1) of a Dumpling backup into an empty target cluster."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import DAG, Param, task

from ..config import ClusterConfig
from ..operators.logical import TidbLogicalRestoreOperator
from .common import cr_args, dag_kwargs
from .restore import _target_param
from .restore_steps import from_plan, proceed_task, publish_plan

DOC = """
### Logical restore (TiDB Lightning) of a Dumpling backup of `{ns}/{name}`

Trigger it from the UI: choose the empty **target cluster** (`restore_targets` in clusters.yaml) and, if not the
newest verified one, the **backup** (a Backup CR name made by `{backup_dag}`). The rows restored are the source's
as of the dump's snapshot TSO (Dumpling's `metadata`).

| task | what it does |
|---|---|
| `plan` | validates the form, picks the backup (default: the newest one `{backup_dag}` verified), checks the target exists, has no restore in progress and, over SQL (`sql_conn_id`), holds no user database, and builds the Restore CR (`to:` the target's TiDB service `<target>-tidb.<ns>.svc`, Secret `backup-<target>-tidb-secret`; `s3.path` the backup's archive). Every refusal happens here, before a CR exists, as one line that starts with the reason |
| `proceed` | stops here when `dry_run` is set |
| `restore` | creates the Restore CR in the target's namespace and waits (deferred) for Complete; a failure is reported as the operator's reason and message (passwords masked) |
| `report` | what was restored, from which backup, at which TSO, and how long it took |
"""


def build(cluster: ClusterConfig) -> DAG:
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, backup_dag=cluster.dag_id("logical_backup"))
    params = {
        "target_cluster": _target_param(cluster),
        "backup": Param(None, type=["null", "string"], title="Backup (optional)",
                        description="A Dumpling Backup CR name; empty = the newest verified one."),
        "dry_run": Param(False, type="boolean", title="Dry run: plan and check only, create nothing"),
    }
    with DAG(schedule=None, params=params, render_template_as_native_obj=True,
             **dag_kwargs(cluster, "logical_restore", doc)) as dag:

        @task(retries=0)
        def plan(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            from ..operators.labels import run_hash
            from .tasks.logical import plan_logical_restore

            return publish_plan(context, lambda: plan_logical_restore(cluster, dict(params or {}),
                                                                     run_hash=run_hash(context)))

        proceed = proceed_task()

        restore = TidbLogicalRestoreOperator(
            task_id="restore", body=from_plan("body"), pitr_cluster=cluster.name, cluster=from_plan("target_cluster"),
            retries=0, execution_timeout=None, **{**cr_args(cluster), "namespace": from_plan("target_namespace")})

        @task
        def report(planned: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
            line = (f"restored {planned['backup']} (snapshot TSO {planned['commit_ts']}) into "
                    f"{planned['target_namespace']}/{planned['target_cluster']} in {result.get('duration_seconds')} s")
            logging.getLogger(__name__).info(line)
            return {**result, "backup": planned["backup"], "summary": line}

        planned = plan()
        proceed(planned) >> restore
        report(planned, restore.output)
    return dag
