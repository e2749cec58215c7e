"""Airflow DAGs for TiDB point-in-time recovery: snapshot, log backup guard, retention, restore (and
compaction), per cluster in include/clusters.yaml (or $TIDB_PITR_CONFIG).

(The words "airflow" and "dag" in this file matter: Airflow's safe-mode parser skips files without them.)

This file only reads the config and builds DAGs: nothing here touches Kubernetes, storage or Variables.
A broken config fails the import with a message naming the cluster and the field.
"""

from airflow.sdk import get_parsing_context
from tidb_pitr.config import config_path, load_config
from tidb_pitr.factory import build_dags

# A task's process parses this file to run one DAG: the parsing context names it (None in the dag-processor).
for _dag in build_dags(load_config(config_path()), only_dag_id=get_parsing_context().dag_id):
    globals()[_dag.dag_id] = _dag
