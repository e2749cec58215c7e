"""What a running task uses from Airflow around its work, shared by the task bodies, operators and flows.

`context` (the DAG run's key, its failed tasks), `notes` (the run note listener and writer), `metrics` (the
gauges' names), `notifiers` (the cluster's configured Airflow notifiers).
"""
