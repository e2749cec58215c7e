"""End-to-end: the real DAG file (dags/tidb_pitr_dags.py) over a config naming sandbox clusters.

Two clusters with 40 days of seeded history: one on TiDB Operator v1 with S3, one on v2 with Azure
Blob. The config is written to a temp file and named by TIDB_PITR_CONFIG before the DAG file is parsed.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import unique

SEED_DAYS = 40
# The RBAC test's clusters: every call it checks (retention's deletions, a compaction, a restore) happens on 12
# days with a 7-day retention as on 40 with 30, and compacting and truncating 30 days instead of 5 cost it most
# of its time (measured: 108 s in the suite, compaction and retention the longest runs).
RBAC_SEED_DAYS, RBAC_RETENTION = 12, "7d"


def _cluster_config(namespace: str, name: str, group: str, storage: str, conns: dict[str, str], *,
                    retention: str = "30d") -> dict[str, Any]:
    if storage == "s3":
        block = {"provider": "s3", "bucket": "my-bucket", "root": name, "region": "us-west-1",
                 "secret_name": "s3-secret", "conn_id": conns["s3"]}
    else:
        block = {"provider": "azblob", "bucket": "my-container", "root": name, "secret_name": "azblob-secret",
                 "conn_id": conns["wasb"]}
    # The sandbox's tracker polls every 0.6 s where TiDB Operator's polls every minute.
    waits = {"tracker_interval": "1s", "start_grace": "5s"}
    # TiDB Operator v2 has no CompactBackup controller: compaction is configured on v1 only.
    return {"name": name, "namespace": namespace, "api_group": group, "kubernetes_conn_id": conns["kubernetes"],
            "storage": block, "timezone": "UTC", "retention": retention, "compaction": group == "pingcap.com",
            "waits": waits}


@pytest.fixture(scope="session")
def e2e_clusters(sandbox: Any, connections: dict[str, str], airflow_db: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    clusters = {}
    # "rbac" and "rbac-poll" are used only by the RBAC test, so their history is still untouched then.
    for key, group, storage in (("v1s3", "pingcap.com", "s3"), ("v2az", "br.pingcap.com", "azblob"),
                                ("rbac", "pingcap.com", "s3"), ("rbac-poll", "pingcap.com", "s3")):
        namespace, name = unique("e2e"), unique("tc")
        rbac = key.startswith("rbac")
        sandbox.create_cluster(namespace, name, api_group=group, seed_days=RBAC_SEED_DAYS if rbac else SEED_DAYS,
                               storage=storage, storage_root=name,
                               workload={"inserts_per_s": 10, "updates_per_s": 5, "deletes_per_s": 1})
        config = _cluster_config(namespace, name, group, storage, connections,
                                 retention=RBAC_RETENTION if rbac else "30d")
        clusters[key] = {"namespace": namespace, "name": name, "group": group, "storage": storage, "config": config}
    # A fresh cluster without any backup, for the guard's "create a missing log backup" path.
    namespace, name = unique("e2e"), unique("tc")
    sandbox.create_cluster(namespace, name, api_group="pingcap.com", storage="s3", storage_root=name,
                           workload={"inserts_per_s": 10, "updates_per_s": 5, "deletes_per_s": 1})
    clusters["fresh"] = {"namespace": namespace, "name": name, "group": "pingcap.com", "storage": "s3",
                         "config": _cluster_config(namespace, name, "pingcap.com", "s3", connections)}
    path = tmp_path_factory.mktemp("config") / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": [c["config"] for c in clusters.values()]}))
    previous = os.environ.get("TIDB_PITR_CONFIG")
    os.environ["TIDB_PITR_CONFIG"] = str(path)
    try:
        yield clusters
    finally:
        if previous is None:
            os.environ.pop("TIDB_PITR_CONFIG", None)
        else:
            os.environ["TIDB_PITR_CONFIG"] = previous
        for cluster in clusters.values():
            sandbox.delete_cluster(cluster["namespace"], cluster["name"])


@pytest.fixture(autouse=True)
def _close_clusters() -> Iterator[None]:
    """Every `Cluster` the test (or a function-scoped fixture) opened is deleted from the sandbox when the test
    ends; those of module-scoped fixtures, set up before this one, are theirs to close."""
    from .clusters import Cluster

    before = list(Cluster.made)
    yield
    for cluster in [c for c in Cluster.made if not any(c is b for b in before)]:
        cluster.close()


def dag_id(cluster: dict[str, Any], kind: str) -> str:
    return f"tidb_{cluster['namespace']}_{cluster['name']}_{kind}"


def load_dag(dag_id_: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[3] / "dags"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id_)


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id,
                                                 key="return_value")).first()
        return XComModel.deserialize_value(row) if row is not None else None


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append({"path": self.path, "json": json.loads(body or b"null"), "at": time.time()})  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[list[dict[str, Any]]]:
    """A real HTTP endpoint and an Airflow http connection `drill_alerts` to it: what the notifier posted."""
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    os.environ["AIRFLOW_CONN_DRILL_ALERTS"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http"})
    try:
        yield server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        os.environ.pop("AIRFLOW_CONN_DRILL_ALERTS", None)


@contextmanager
def statsd_listener(*, influxdb_tags: bool = False) -> Iterator[socket.socket]:
    """A UDP StatsD listener, and Airflow's metrics sent to it as the task runner sets them up; with
    `influxdb_tags`, tags ride in the name (`[metrics] statsd_influxdb_enabled`), as the README advises."""
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    env = {"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
           "AIRFLOW__METRICS__STATSD_PORT": str(listener.getsockname()[1]),
           "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": str(influxdb_tags)}
    os.environ.update(env)
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
    try:
        yield listener
    finally:
        for name in env:
            os.environ.pop(name, None)
        stats.initialize(factory=NoStatsLogger, export_legacy_names=True)
        listener.close()


@pytest.fixture
def statsd() -> Iterator[socket.socket]:
    with statsd_listener() as listener:
        yield listener


@pytest.fixture
def tagged_statsd() -> Iterator[socket.socket]:
    with statsd_listener(influxdb_tags=True) as listener:
        yield listener


def datagrams(listener: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.extend(listener.recv(65535).decode().splitlines())
        except TimeoutError:
            return out
