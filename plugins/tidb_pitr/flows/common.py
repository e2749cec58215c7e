"""What every per-cluster DAG shares: defaults, tags, the operator arguments for the cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import ClusterConfig

START = datetime(2026, 1, 1, tzinfo=UTC)
# The DAG run's own name for what it makes: its run_after (the timetable's slot, or the trigger time of a
# manual run); stable across retries. Not logical_date: that is the start of the data interval.
RUN_STAMP = "{{ dag_run.run_after.strftime('%Y%m%d%H%M%S') }}"


# Who goes first when task slots run short (a burst of snapshots over many clusters, a worker lost): what
# watches the RPO, then what a user waits on, then the scheduled backups, then drills. Absolute weights:
# Airflow's default "downstream" rule ranks a task by the tasks after it, which put a snapshot's first task
# (five after it) before the guard's and left 100 guards queued behind 100 snapshots (bench_scale.py).
PRIORITY = {"rpo_alert": 40, "log_guard": 30, "restore": 20, "logical_restore": 20, "log_control": 20, "drill": 1}
PRIORITY_DEFAULT = 10  # snapshot, retention, compaction, logical_backup


def default_args(cluster: ClusterConfig, kind: str) -> dict[str, Any]:
    return {"owner": ",".join(cluster.owners), "retries": 2, "retry_delay": timedelta(minutes=2),
            "retry_exponential_backoff": True, "priority_weight": PRIORITY.get(kind, PRIORITY_DEFAULT),
            "weight_rule": "absolute"}


def tags(cluster: ClusterConfig, kind: str) -> list[str]:
    return ["tidb", "pitr", kind, f"cluster:{cluster.namespace}/{cluster.name}", cluster.api_group, *cluster.tags]


def cr_args(cluster: ClusterConfig) -> dict[str, Any]:
    """Arguments every tidb_pitr operator and sensor takes, for this cluster."""
    return {"namespace": cluster.namespace, "kubernetes_conn_id": cluster.kubernetes_conn_id,
            "api_group": cluster.api_group, **wait_args(cluster)}


def dag_kwargs(cluster: ClusterConfig, kind: str, doc: str) -> dict[str, Any]:
    return {"dag_id": cluster.dag_id(kind), "start_date": START, "catchup": False, "tags": tags(cluster, kind),
            "default_args": default_args(cluster, kind), "doc_md": doc, "max_active_runs": 1,
            "description": f"{kind} for TiDB cluster {cluster.namespace}/{cluster.name} ({cluster.api_group})"}


def wait_args(cluster: ClusterConfig) -> dict[str, Any]:
    """The bounds past which a wait on a CR is hopeless, for this cluster."""
    return {"retry_failed_grace": cluster.waits.retry_failed_grace, "stuck_after": cluster.waits.log_job_stuck_after}


def republish_status(cluster: ClusterConfig) -> Any:
    """`publish_status`: what the TiDB PITR page shows, published again at the end of a DAG that changed it (the
    guard's own task, run here too), so the page is right within seconds instead of at the guard's next run.

    A teardown: it runs however the run went, and Airflow leaves teardowns out of the run's state, so a restore that
    failed stays failed and a status that could not be read fails nothing. It writes no run note."""
    from airflow.sdk import task

    @task(task_id="publish_status", retries=0)
    def publish_status() -> dict[str, Any]:
        from .tasks.guard_status import cluster_status

        return cluster_status(cluster)

    return publish_status().as_teardown()
