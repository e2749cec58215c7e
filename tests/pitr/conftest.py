"""Airflow connections to the session's sandbox, the way a deployment configures them (AIRFLOW_CONN_*), and this
process's wall clock moved onto a manual-clock sandbox's time (`on_sandbox_time`)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

K8S_CONN = "sandbox_k8s"
S3_CONN = "sandbox_s3"
WASB_CONN = "sandbox_wasb"
MANUAL_K8S_CONN = "manual_sandbox_k8s"


def export_connections(sandbox: Any, prefix: str = "sandbox", *, wasb: bool = True) -> dict[str, str]:
    """Airflow connections (AIRFLOW_CONN_*) to `sandbox`'s Kubernetes API, S3 and (when asked) Azure Blob, named
    `<prefix>_k8s`, `<prefix>_s3`, `<prefix>_wasb`: {"kubernetes": ..., "s3": ..., "wasb": ...}."""
    env = sandbox.env
    conns = {"kubernetes": f"{prefix}_k8s", "s3": f"{prefix}_s3", **({"wasb": f"{prefix}_wasb"} if wasb else {})}
    os.environ[f"AIRFLOW_CONN_{conns['kubernetes'].upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(sandbox.kubeconfig)}})
    os.environ[f"AIRFLOW_CONN_{conns['s3'].upper()}"] = json.dumps(
        {"conn_type": "aws", "login": env["TIDB_SANDBOX_S3_ACCESS_KEY"], "password": env["TIDB_SANDBOX_S3_SECRET_KEY"],
         "extra": {"endpoint_url": env["TIDB_SANDBOX_S3_ENDPOINT"], "region_name": env["TIDB_SANDBOX_S3_REGION"]}})
    if wasb:
        os.environ[f"AIRFLOW_CONN_{conns['wasb'].upper()}"] = json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": env["TIDB_SANDBOX_AZURE_CONNECTION_STRING"]}})
    return conns


@pytest.fixture(scope="session")
def connections(sandbox: Any) -> dict[str, str]:
    return export_connections(sandbox)  # sandbox_k8s, sandbox_s3, sandbox_wasb: K8S_CONN, S3_CONN, WASB_CONN


@pytest.fixture
def on_sandbox_time(manual_sandbox: Any) -> Iterator[dict[str, str]]:
    """This process's wall clock (datetime.now, time.time; not the monotonic clock asyncio runs on) at the
    manual-clock sandbox's now, standing still there and moved with each `manual_sandbox.advance`: product code
    run in-process then compares its own now with the cluster's time, as it does beside a real cluster. Gives the
    Airflow connection to that sandbox's Kubernetes API."""
    os.environ[f"AIRFLOW_CONN_{MANUAL_K8S_CONN.upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(manual_sandbox.kubeconfig)}})

    def now(answer: dict[str, Any]) -> datetime:
        return datetime.fromtimestamp(answer["time"], UTC)

    advance = manual_sandbox.advance
    with time_machine.travel(now(manual_sandbox.clock()), tick=False) as traveller:
        def advance_and_follow(seconds: float) -> dict[str, Any]:
            answer = advance(seconds)
            traveller.move_to(now(answer), tick=False)
            return answer

        manual_sandbox.advance = advance_and_follow
        try:
            yield {"kubernetes": MANUAL_K8S_CONN}
        finally:
            del manual_sandbox.advance  # the class's method again


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(interval)


def s3_block() -> dict[str, Any]:
    return {"s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket"}}


def azblob_block() -> dict[str, Any]:
    return {"azblob": {"secretName": "azblob-secret", "container": "my-container"}}


@pytest.fixture
def fresh_cluster(sandbox: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """Make clusters of the test's own (each in its own namespace); all are deleted when the test ends."""
    made: list[tuple[str, str]] = []

    def make(api_group: str = "pingcap.com", seed_days: float = 0, storage: str = "s3",
             workload: dict[str, float] | None = None) -> tuple[str, str]:
        namespace, name = unique("pitr"), unique("tc")
        sandbox.create_cluster(namespace, name, api_group=api_group, seed_days=seed_days, storage=storage,
                               storage_root=name,
                               workload=workload or {"inserts_per_s": 20, "updates_per_s": 10, "deletes_per_s": 3})
        made.append((namespace, name))
        return namespace, name
    yield make
    for namespace, name in made:
        sandbox.delete_cluster(namespace, name)


def run_dag(dag: Any, **kwargs: Any) -> str:
    """`dag.test()` for a DAG defined in a test (not in a bundle): serialise it into the DB first,
    since Airflow 3.3's `dag.test()` only runs DAGs it finds serialized."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return str(dag.test(**kwargs).state)
