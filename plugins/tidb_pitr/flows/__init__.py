"""The per-cluster DAGs, one module per flow (their shape only: tasks, params, docs); `tidb_pitr.factory`
assembles them from the config. What the tasks do lives in `flows/tasks/`, one module per flow.

The parse-time boundary: a DAG module imports operators, sensors and triggers at module level, and the task
bodies (`flows/tasks/`) and hooks only inside its task callables, so that parsing a DAG file, which every task
process does, loads no Kubernetes, storage or SQL client. tests/pitr/unit/test_import_layers.py holds this.
"""
