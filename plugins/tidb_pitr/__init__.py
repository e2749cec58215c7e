"""tidb_pitr: Airflow hooks, triggers, operators and sensors for TiDB point-in-time recovery on Kubernetes.

Importable by the dag-processor, the workers and the triggerer (the `plugins/` folder is on their
`sys.path`), and installable with pip from the repository root.
"""

__version__ = "0.1.0"
