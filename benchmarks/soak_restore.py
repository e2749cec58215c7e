"""The project's reliability figure: N restore drills at random times across the whole window, each verified
against the source at T through SQL, while snapshots and retention runs (truncations, deletions) happen in
between. Every drill must pass.

On the sandbox, through `dag.test()` of the real DAGs (drill, snapshot, retention): a v1 cluster with
`--seed-days` of history and a live workload, retention of 1 day (so each retention run truncates the log and
deletes snapshots), the source's GC life time longer than the history (so every T can be compared), and a
scratch cluster that each drill restores into, compares and empties. Prints each drill, then passes,
failures (with their T), not-verified counts and the RTO distribution; the last line is one JSON object.

    .venv/bin/python benchmarks/soak_restore.py [--drills 50] [--seed-days 6] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins")]  # the sandbox is installed (pip install -e sandbox)
HOME = Path(tempfile.mkdtemp(prefix="soak-airflow-"))
os.environ.update({"AIRFLOW_HOME": str(HOME), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
                   "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                   "AIRFLOW__TIDB_PITR__MIN_DEFERRAL_SECONDS": "0"})

from tidb_sandbox.client import sql_params, start_sandbox, stop_sandbox  # noqa: E402

NAMESPACE, SOURCE, SCRATCH = "soak", "soak1", "soak1-scratch"
WORKLOAD = {"inserts_per_s": 10, "updates_per_s": 5, "deletes_per_s": 1}


def _mysql_conn(conn_id: str, url: str) -> str:
    params = sql_params(url)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "mysql", "host": params["host"], "port": params["port"], "login": params["user"],
         "password": params["password"]})
    return conn_id


def _connections(sandbox: Any) -> None:
    env = sandbox.env
    os.environ["AIRFLOW_CONN_SOAK_K8S"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(sandbox.kubeconfig)}})
    os.environ["AIRFLOW_CONN_SOAK_S3"] = json.dumps(
        {"conn_type": "aws", "login": env["TIDB_SANDBOX_S3_ACCESS_KEY"], "password": env["TIDB_SANDBOX_S3_SECRET_KEY"],
         "extra": {"endpoint_url": env["TIDB_SANDBOX_S3_ENDPOINT"], "region_name": env["TIDB_SANDBOX_S3_REGION"]}})


def _config(seed_days: float) -> Any:
    from tidb_pitr.config import ClusterConfig

    return ClusterConfig.model_validate({
        "name": SOURCE, "namespace": NAMESPACE, "api_group": "pingcap.com", "kubernetes_conn_id": "soak_k8s",
        "retention": "1d", "sql_conn_id": "soak_source_sql",
        "storage": {"provider": "s3", "bucket": "my-bucket", "root": SOURCE, "region": "us-west-1",
                    "secret_name": "s3-secret", "conn_id": "soak_s3"},
        "waits": {"tracker_interval": "1s", "start_grace": "5s", "retention_wait": "3s"},
        "restore_targets": [{"name": SCRATCH, "scratch": True, "sql_conn_id": "soak_scratch_sql"}],
        "drill": {"target": SCRATCH, "mode": "random"},
    })


def _run(dag: Any, **kwargs: Any) -> Any:
    """`dag.test()` of a DAG serialised first (Airflow 3.3 runs only DAGs it finds serialised); the run."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)


def _xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id,
                                                 key="return_value")).first()
        return XComModel.deserialize_value(row) if row is not None else None


def soak(drills: int, seed_days: float, every: int) -> dict[str, Any]:
    from tidb_pitr.factory import dags_for_cluster

    workdir = Path(tempfile.mkdtemp(prefix="soak-sandbox-"))
    # The source keeps all of its history readable (GC life time longer than it), so every T can be compared.
    gc_seconds = (seed_days + 1) * 86400
    sandbox = start_sandbox(workdir, settings={"gc_life_time": gc_seconds})
    try:
        source = sandbox.create_cluster(NAMESPACE, SOURCE, seed_days=seed_days, storage="s3", storage_root=SOURCE,
                                        workload=WORKLOAD)
        scratch = sandbox.create_cluster(NAMESPACE, SCRATCH)
        _connections(sandbox)
        _mysql_conn("soak_source_sql", source["sql"])
        _mysql_conn("soak_scratch_sql", scratch["sql"])
        dags = {d.dag_id.rsplit("_", 1)[-1]: d for d in dags_for_cluster(_config(seed_days))}
        results: list[dict[str, Any]] = []
        maintenance: dict[str, list[dict[str, Any]]] = {"snapshot": [], "retention": []}
        for index in range(drills):
            if index and index % every == 0:  # a snapshot and a retention run between drills
                for kind in ("snapshot", "retention"):
                    run = _run(dags[kind])
                    done = {"state": str(run.state)}
                    if kind == "retention":
                        plan = _xcom(run, "plan") or {}
                        done.update(deleted=len(plan.get("deletions") or []),
                                    truncated_until=plan.get("truncate_until"))
                    maintenance[kind].append(done)
                    print(f"[soak] {kind}: {done}", flush=True)
            started = time.monotonic()
            run = _run(dags["drill"])
            record = _xcom(run, "record") or {"verdict": "failed", "summary": "no record"}
            results.append({"state": str(run.state), "verdict": record.get("verdict"),
                            "restore_ts": record.get("restore_ts"), "restore_time": record.get("restore_time"),
                            "rto_seconds": record.get("rto_seconds"), "tables": record.get("tables_compared"),
                            "log_replay_seconds": _replay(record), "wall_seconds": time.monotonic() - started,
                            "summary": record.get("summary")})
            print(f"[soak] drill {index + 1}/{drills}: {record.get('summary')}", flush=True)
    finally:
        stop_sandbox(sandbox.process)
    return _figures(results, maintenance, seed_days, gc_seconds)


def _replay(record: dict[str, Any]) -> float | None:
    from datetime import datetime

    span = record.get("log_range") or {}
    if not span.get("from") or not span.get("to"):
        return None
    return (datetime.fromisoformat(span["to"]) - datetime.fromisoformat(span["from"])).total_seconds()


def _figures(results: list[dict[str, Any]], maintenance: dict[str, list[dict[str, Any]]], seed_days: float,
             gc_seconds: float) -> dict[str, Any]:
    rtos = sorted(r["rto_seconds"] for r in results if r["rto_seconds"] is not None)
    failures = [{"restore_ts": r["restore_ts"], "restore_time": r["restore_time"], "summary": r["summary"]}
                for r in results if r["verdict"] == "failed" or r["state"] != "success"]
    replay = [r["log_replay_seconds"] for r in results if r["log_replay_seconds"] is not None]

    def quantile(q: float) -> float | None:
        return round(rtos[min(int(q * len(rtos)), len(rtos) - 1)], 2) if rtos else None

    return {
        "benchmark": "soak_restore", "drills": len(results),
        "passed": sum(r["verdict"] == "passed" and r["state"] == "success" for r in results),
        "failed": len(failures), "not_verified": sum(r["verdict"] == "not verified" for r in results),
        "failures": failures,
        "tables_compared": sum(r["tables"] or 0 for r in results),
        "rto_seconds": {"min": rtos[0] if rtos else None, "median": round(statistics.median(rtos), 2) if rtos else None,
                        "p90": quantile(0.9), "max": rtos[-1] if rtos else None},
        "log_replay_hours": {"min": round(min(replay) / 3600, 2) if replay else None,
                             "max": round(max(replay) / 3600, 2) if replay else None},
        "snapshot_runs": [m["state"] for m in maintenance["snapshot"]], "retention_runs": maintenance["retention"],
        "snapshots_deleted": sum(m.get("deleted", 0) for m in maintenance["retention"]),
        "truncations": sum(bool(m.get("truncated_until")) for m in maintenance["retention"]),
        "seed_days": seed_days, "gc_life_time": str(timedelta(seconds=gc_seconds)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drills", type=int, default=50)
    parser.add_argument("--seed-days", type=float, default=6)
    parser.add_argument("--every", type=int, default=10, help="a snapshot and a retention run every N drills")
    args = parser.parse_args()
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=600)
    figures = soak(args.drills, args.seed_days, args.every)
    print(json.dumps(figures, sort_keys=True), flush=True)
    return 0 if figures["failed"] == 0 and figures["passed"] == figures["drills"] else 1


if __name__ == "__main__":
    sys.exit(main())
