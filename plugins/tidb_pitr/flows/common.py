"""What every per-cluster DAG shares: defaults, tags, the operator arguments for the cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import ClusterConfig

START = datetime(2026, 1, 1, tzinfo=UTC)
# The DAG run's own name for what it makes: its run_after (the timetable's slot, or the trigger time of a
# manual run); stable across retries. Not logical_date: that is the start of the data interval.
RUN_STAMP = "{{ dag_run.run_after.strftime('%Y%m%d%H%M%S') }}"


def default_args(cluster: ClusterConfig) -> dict[str, Any]:
    return {"owner": ",".join(cluster.owners), "retries": 2, "retry_delay": timedelta(minutes=2),
            "retry_exponential_backoff": True}


def tags(cluster: ClusterConfig, kind: str) -> list[str]:
    return ["tidb", "pitr", kind, f"cluster:{cluster.namespace}/{cluster.name}", cluster.api_group, *cluster.tags]


def cr_args(cluster: ClusterConfig) -> dict[str, Any]:
    """Arguments every tidb_pitr operator and sensor takes, for this cluster."""
    return {"namespace": cluster.namespace, "kubernetes_conn_id": cluster.kubernetes_conn_id,
            "api_group": cluster.api_group}


def dag_kwargs(cluster: ClusterConfig, kind: str, doc: str) -> dict[str, Any]:
    return {"dag_id": cluster.dag_id(kind), "start_date": START, "catchup": False, "tags": tags(cluster, kind),
            "default_args": default_args(cluster), "doc_md": doc, "max_active_runs": 1,
            "description": f"{kind} for TiDB cluster {cluster.namespace}/{cluster.name} ({cluster.api_group})"}
