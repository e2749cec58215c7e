"""Build every DAG for every configured cluster. Pure construction: no network, no Variables."""

from __future__ import annotations

from airflow.sdk import DAG

from .config import ClusterConfig, ProjectConfig
from .flows import (
    check,
    compaction,
    drill,
    guard,
    log_control,
    logical_backup,
    logical_restore,
    restore,
    retention,
    rpo_alert,
    snapshot,
)


def dags_for_cluster(cluster: ClusterConfig) -> list[DAG]:
    dags = [guard.build(cluster), restore.build(cluster), rpo_alert.build(cluster), check.build(cluster)]
    if not cluster.schedule_managed:  # else a BackupSchedule takes and deletes the backups: nothing to do here
        # and the schedule runs the log backup: pausing it is the schedule's own business
        dags += [snapshot.build(cluster), retention.build(cluster), log_control.build(cluster)]
    if cluster.compaction:
        dags.append(compaction.build(cluster))
    if cluster.drill:
        dags.append(drill.build(cluster))
    if cluster.logical_backup:
        dags += [logical_backup.build(cluster), logical_restore.build(cluster)]
    return dags


def build_dags(config: ProjectConfig, only_dag_id: str | None = None) -> list[DAG]:
    """Every cluster's DAGs; with `only_dag_id` (a task's process: Airflow's parsing context names the DAG it
    runs), only those of the clusters whose DAG ids it could be, so a task does not build 500 DAGs to run one.
    At 100 clusters on a busy 2-core machine a task's parse of every DAG exceeded [core] dagbag_import_timeout
    and no task started (benchmarks/bench_scale.py). An id no cluster's prefix matches builds everything."""
    clusters = config.clusters
    if only_dag_id:
        # Ids are tidb_<namespace>_<name>_<kind>: the prefix picks the cluster (a superset if ever ambiguous).
        matching = [c for c in clusters if only_dag_id.startswith(c.dag_id(""))]
        clusters = matching or clusters
    return [dag for cluster in clusters for dag in dags_for_cluster(cluster)]
