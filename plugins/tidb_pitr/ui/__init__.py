"""The TiDB PITR page in the Airflow UI: a FastAPI app behind Airflow's auth, and the React bundle it serves."""
