"""One sandbox cluster of its own per test, its configuration and its DAGs, run through `dag.test()`."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from tidb_pitr.config import ClusterConfig
from tidb_pitr.cr.model import BackupView, RestoreView
from tidb_pitr.factory import dags_for_cluster
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.planning import recoverable_window
from tidb_sandbox.client import sql_params

from ..conftest import run_dag, unique, wait_until

SEED_DAYS = 12
WORKLOAD = {"inserts_per_s": 10, "updates_per_s": 5, "deletes_per_s": 1}
TSO_SECOND = 1000 << 18


class Cluster:
    """One sandbox cluster, its configuration and its DAGs. `close()` deletes it and the targets made for it;
    the e2e conftest's `_close_clusters` fixture closes every Cluster a test made when the test ends."""

    made: list[Cluster] = []  # opened and not yet closed, oldest first

    def __init__(self, sandbox: Any, connections: dict[str, str], *, seed_days: float = SEED_DAYS,
                 namespace: str | None = None, group: str = "pingcap.com", source_sql: bool = False,
                 **config: Any) -> None:
        self.sandbox = sandbox
        self.namespace, self.name = namespace or unique("safe"), unique("tc")
        self.group = group
        described = sandbox.create_cluster(self.namespace, self.name, api_group=group, seed_days=seed_days,
                                           storage="s3", storage_root=self.name, workload=WORKLOAD)
        self.targets: list[str] = []
        Cluster.made.append(self)
        base: dict[str, Any] = {
            "name": self.name, "namespace": self.namespace, "api_group": group,
            "kubernetes_conn_id": connections["kubernetes"], "retention": "7d", "compaction": False,
            "storage": {"provider": "s3", "bucket": "my-bucket", "root": self.name, "region": "us-west-1",
                        "secret_name": "s3-secret", "conn_id": connections["s3"]},
            "waits": {"tracker_interval": "1s", "start_grace": "5s", "retry_failed_grace": "4s",
                      "log_job_stuck_after": "8s", "retention_wait": "3s"},
        }
        if source_sql:  # the source's own TiDB over SQL (`sql_conn_id`), as drills and `verify` read it
            base["sql_conn_id"] = self.sql_connection(self.name, described["sql"])
        for key, value in config.items():
            base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
        self.reconfigure(ClusterConfig.model_validate(base))
        self.hook = TidbOperatorHook(connections["kubernetes"], api_group=group)

    def reconfigure(self, config: ClusterConfig) -> None:
        """Use `config` (of this same cluster) and rebuild the DAGs from it, as a new parse would."""
        self.config = config
        prefix = self.config.dag_id("")
        self.dags = {dag.dag_id.removeprefix(prefix): dag for dag in dags_for_cluster(self.config)}

    def run(self, kind: str, *, retries: int | None = None, **kwargs: Any) -> Any:
        """Run one DAG; `retries` overrides every task's (with no delay) so a test never waits minutes."""
        dag = self.dags[kind]
        if retries is not None:
            for task in dag.tasks:
                task.retries, task.retry_delay = retries, timedelta(0)
        run_dag(dag, **kwargs)
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            found = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id).order_by(DagRun.id.desc()).first()
            session.expunge(found)
            return found

    def backups(self) -> list[BackupView]:
        return [BackupView.from_cr(o) for o in self.hook.list("backups", self.namespace)]

    def snapshots(self) -> list[BackupView]:
        return sorted((v for v in self.backups() if v.mode == "snapshot" and v.cluster == self.name),
                      key=lambda v: (v.commit_ts or 0, v.name))

    def logs(self) -> list[BackupView]:
        return sorted((v for v in self.backups() if v.mode == "log" and v.cluster == self.name),
                      key=lambda v: (v.commit_ts or 0, v.name))

    def live_log(self) -> BackupView:
        return next(v for v in self.logs() if v.phase in ("Running", "Paused", "RetryFailed"))

    def patch_log(self, spec: dict[str, Any], name: str | None = None) -> None:
        self.hook.merge_patch("backups", name or self.live_log().name, self.namespace, {"spec": spec})

    def wait_log(self, predicate: Any, timeout: float = 30.0) -> BackupView:
        return wait_until(lambda: next((v for v in self.logs() if predicate(v)), None), timeout=timeout)

    def restores(self) -> list[RestoreView]:
        return [RestoreView.from_cr(o) for o in self.hook.list("restores", self.namespace)]

    def target(self, *, sql: bool = False) -> str:
        """A new empty cluster to restore into; with `sql`, an Airflow mysql connection to it (`sql_conn(name)`)."""
        name = unique("target")
        described = self.sandbox.create_cluster(self.namespace, name, api_group=self.group)
        self.targets.append(name)
        if sql:
            self.sql_connection(name, described["sql"])
        return name

    def close(self) -> None:
        """Delete the cluster and its targets from the sandbox (their storage objects stay)."""
        for name in [*self.targets, self.name]:
            self.sandbox.delete_cluster(self.namespace, name)
        if self in Cluster.made:
            Cluster.made.remove(self)

    @staticmethod
    def sql_conn(name: str) -> str:
        return f"sql_{name.replace('-', '_')}"

    @staticmethod
    def sql_connection(name: str, url: str) -> str:
        """`AIRFLOW_CONN_<ID>` for the TiDB at `url`, as a deployment defines a mysql connection."""
        params = sql_params(url)
        conn_id = Cluster.sql_conn(name)
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
            {"conn_type": "mysql", "host": params["host"], "port": params["port"], "login": params["user"],
             "password": params["password"]})
        return conn_id

    def window(self) -> Any:
        return recoverable_window(self.snapshots(), self.logs())
