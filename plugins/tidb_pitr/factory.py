"""Build every DAG for every configured cluster. Pure construction: no network, no Variables."""

from __future__ import annotations

from airflow.sdk import DAG

from .config import ClusterConfig, ProjectConfig
from .flows import compaction, drill, guard, logical_backup, logical_restore, restore, retention, rpo_alert, snapshot


def dags_for_cluster(cluster: ClusterConfig) -> list[DAG]:
    dags = [guard.build(cluster), restore.build(cluster), rpo_alert.build(cluster)]
    if not cluster.schedule_managed:  # else a BackupSchedule takes and deletes the backups: nothing to do here
        dags += [snapshot.build(cluster), retention.build(cluster)]
    if cluster.compaction:
        dags.append(compaction.build(cluster))
    if cluster.drill:
        dags.append(drill.build(cluster))
    if cluster.logical_backup:
        dags += [logical_backup.build(cluster), logical_restore.build(cluster)]
    return dags


def build_dags(config: ProjectConfig) -> list[DAG]:
    return [dag for cluster in config.clusters for dag in dags_for_cluster(cluster)]
