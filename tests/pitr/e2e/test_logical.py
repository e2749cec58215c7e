"""Logical backups (Dumpling) and their restore (TiDB Lightning), TiDB Operator v1, through `dag.test()` on the
sandbox: the seed 004 Backup CR, the dump checked in storage, retention that touches only its own backups, a
restore whose rows equal the source at the dump's TSO, the operator's message for a wrong password."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
from tidb_pitr.config import ClusterConfig, ConfigError, load_config
from tidb_pitr.cr.logical import ANNOTATION_VERIFIED_TS
from tidb_pitr.hooks.sql import table_checksums
from tidb_pitr.planning.drill import compare

from ..conftest import wait_until
from .clusters import Cluster
from .conftest import xcom

# Every test here runs DAGs: the session's Airflow metadata DB.
pytestmark = pytest.mark.usefixtures("airflow_db")

TABLES = ("shop.orders", "shop.customers", "crm.accounts", "crm.events")


def _note(run: Any) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note or ""


def _s3(sandbox: Any) -> Any:
    env = sandbox.env
    return boto3.client("s3", endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"], region_name="us-west-1",
                        aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                        aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"])


def _keys(sandbox: Any, prefix: str) -> set[str]:
    pages = _s3(sandbox).get_paginator("list_objects_v2").paginate(Bucket="my-bucket", Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _logical(cluster: Cluster) -> list[Any]:
    return sorted((v for v in cluster.backups() if (v.raw.get("spec") or {}).get("from")),
                  key=lambda v: (v.created, v.name))


def _conn(conn_id: str) -> dict[str, Any]:
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])
    return {"host": conn["host"], "port": conn["port"], "user": conn["login"], "password": conn["password"]}


def _sums(conn_id: str, snapshot_ts: int | None = None) -> dict[str, tuple[Any, ...]]:
    """`ADMIN CHECKSUM TABLE` and `COUNT(*)` of the workload's tables over SQL, as of `snapshot_ts`
    (`tidb_snapshot`) when given."""
    with pymysql.connect(**_conn(conn_id)) as db, db.cursor() as cursor:
        if snapshot_ts is not None:
            cursor.execute(f"SET @@tidb_snapshot = '{snapshot_ts}'")
        out = {}
        for table in TABLES:
            cursor.execute(f"ADMIN CHECKSUM TABLE {table}")
            checksum = cursor.fetchone()[2:]
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            out[table] = (*checksum, cursor.fetchone()[0])
        return out


@pytest.fixture(scope="module")
def logical(sandbox: Any, connections: dict[str, str]) -> Iterator[Cluster]:
    cluster = Cluster(sandbox, connections, seed_days=0, source_sql=True,
                      logical_backup={"keep": {"count": 2}, "anchor": "03:30"})
    target = cluster.target(sql=True)
    raw = cluster.config.model_dump(mode="json")
    raw["restore_targets"] = [{"name": target, "sql_conn_id": Cluster.sql_conn(target)}]
    cluster.reconfigure(ClusterConfig.model_validate(raw))
    cluster.logical_target = target  # type: ignore[attr-defined]
    yield cluster
    cluster.close()


def test_backups_are_verified_retention_keeps_count_and_never_foreign_ones(logical: Cluster, sandbox: Any):
    cluster = logical
    root = f"{cluster.name}/logical"
    # Someone else's Dumpling backup and archives in the same folder, and a folder of theirs beside it.
    foreign = [f"{root}/backup-2020-01-01T00:00:00Z.tgz", f"{root}/theirs/backup-2020-01-02T00:00:00Z.tgz"]
    for key in foreign:
        _s3(sandbox).put_object(Bucket="my-bucket", Key=key, Body=b"not ours")
    cluster.hook.create_or_adopt("backups", {
        "metadata": {"name": "dba-dump", "namespace": cluster.namespace},
        "spec": {"from": {"host": f"{cluster.name}-tidb", "port": 4000, "user": "root",
                          "secretName": f"backup-{cluster.name}-tidb-secret"},
                 "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket",
                        "prefix": root}, "storageSize": "1Gi"}}, cluster.namespace, {})

    # Dumpling names an archive after the second its Job started: let theirs finish first, so ours never share
    # its archive here (the planner's unit tests cover a shared one: then only our CR goes).
    dba = wait_until(lambda: next((v for v in _logical(cluster) if v.name == "dba-dump" and v.phase == "Complete"),
                                  None), 120)
    dumped_at = datetime.fromisoformat(dba.backup_path.rsplit("backup-", 1)[1].removesuffix(".tgz"))
    wait_until(lambda: datetime.now(UTC) >= dumped_at + timedelta(seconds=1.2), 10)
    runs = [cluster.run("logical_backup", retries=0) for _ in range(3)]
    assert [str(r.state) for r in runs] == ["success"] * 3, [_note(r) for r in runs]
    verified = xcom(runs[-1], "verify")
    backup = xcom(runs[-1], "backup")
    assert verified["metadata_ts"] == backup["commit_ts"] and not verified["problems"]
    assert {"shop.orders", "shop.customers", "crm.accounts"} <= set(verified["tables"])

    ours = [v for v in _logical(cluster) if v.name != "dba-dump"]
    assert [v.name for v in ours] == [xcom(r, "backup")["name"] for r in runs[1:]]  # keep.count: 2
    assert all(v.annotations[ANNOTATION_VERIFIED_TS] == str(v.commit_ts) for v in ours)
    # Seed 004's CR body, as the operator reads it.
    spec = ours[-1].raw["spec"]
    assert spec["from"] == {"host": f"{cluster.name}-tidb.{cluster.namespace}.svc", "port": 4000, "user": "root",
                            "secretName": f"backup-{cluster.name}-tidb-secret"}
    assert spec["s3"] == {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1",
                          "bucket": "my-bucket", "prefix": root}
    assert spec["dumpling"] == {"options": ["--threads=16", "--rows=10000"]} and spec["storageSize"] == "10Gi"

    keys = _keys(sandbox, root + "/")
    first = xcom(runs[0], "backup")["backup_path"].removeprefix("s3://my-bucket/")
    assert first not in keys  # the oldest of ours went, archive and CR
    assert {v.backup_path.removeprefix("s3://my-bucket/") for v in ours} <= keys
    dba = next(v for v in _logical(cluster) if v.name == "dba-dump")  # the foreign CR and its archive stay
    assert dba.phase == "Complete" and dba.backup_path.removeprefix("s3://my-bucket/") in keys
    assert set(foreign) <= keys
    assert "dba-dump" in xcom(runs[-1], "retention")["foreign"]


def test_lightning_restore_gives_the_source_rows_at_the_dump_tso(logical: Cluster, sandbox: Any):
    cluster = logical
    target = cluster.logical_target  # type: ignore[attr-defined]
    ours = [v for v in _logical(cluster) if v.name != "dba-dump"]
    newest = ours[-1]
    dry = cluster.run("logical_restore", run_conf={"target_cluster": f"{cluster.namespace}/{target}",
                                                   "backup": ours[0].name, "dry_run": True})
    assert str(dry.state) == "success" and xcom(dry, "plan")["backup"] == ours[0].name
    assert _note(dry).startswith(f"Dry run: Lightning restore of {ours[0].name} (snapshot TSO {ours[0].commit_ts}")
    assert not cluster.restores()
    refused = cluster.run("logical_restore", run_conf={"target_cluster": f"{cluster.namespace}/{target}",
                                                       "backup": "no-such-backup"})
    assert str(refused.state) == "failed"
    assert _note(refused).split("\n\n")[0] == f"Refused: backup {cluster.namespace}/no-such-backup not found"
    # Every field given: dag.test() keeps an earlier run's conf in the DAG's params.
    run = cluster.run("logical_restore", run_conf={"target_cluster": f"{cluster.namespace}/{target}",
                                                   "backup": None, "dry_run": False})
    assert str(run.state) == "success", _note(run)
    planned = xcom(run, "plan")
    assert planned["backup"] == newest.name and planned["body"]["spec"]["s3"]["path"] == newest.backup_path
    restored = _sums(Cluster.sql_conn(target))
    assert sum(r[-1] for r in restored.values()) > 0
    source_sums = _sums(cluster.config.sql_conn_id, snapshot_ts=int(planned["commit_ts"]))
    # Lightning's tidb backend creates the tables in the target, which gives them the target's own table IDs, and
    # ADMIN CHECKSUM folds the ID into every key: its crc64 cannot be compared, its counts can (sandbox FIDELITY).
    assert {t: s[1:] for t, s in restored.items()} == {t: s[1:] for t, s in source_sums.items()}
    # The content is compared as the drill does, by a row fingerprint that has no table ID in it.
    comparison = compare(table_checksums(cluster.config.sql_conn_id, ["*.*"], at_ts=int(planned["commit_ts"])),
                         table_checksums(Cluster.sql_conn(target), ["*.*"]))
    assert comparison.passed and comparison.compared == len(source_sums), comparison.to_dict()
    # And row by row, through the sandbox's own view of both clusters.
    source = sandbox.rows(cluster.namespace, cluster.name, as_of=int(planned["commit_ts"]))["rows"]
    copied = sandbox.rows(cluster.namespace, target)["rows"]
    assert {k: v for k, v in copied.items() if k.count("/") == 2} == {
        k: v for k, v in source.items() if k.count("/") == 2}

    again = cluster.run("logical_restore", run_conf={"target_cluster": f"{cluster.namespace}/{target}",
                                                     "backup": None, "dry_run": False})
    assert str(again.state) == "failed"
    assert _note(again).startswith(f"Refused: target_cluster {cluster.namespace}/{target} is not empty")


def test_a_logical_restore_into_a_target_holding_tables_of_the_dump_is_refused(logical: Cluster, sandbox: Any):
    """Lightning's tidb backend has no empty-table check (sandbox FIDELITY): only the plan keeps a dump from
    merging into a target's tables, so it refuses such a target, and a target it cannot check over SQL."""
    from tidb_pitr.flows.tasks.logical import plan_logical_restore
    from tidb_pitr.flows.tasks.restore import RestoreRefused

    cluster = logical
    target = cluster.logical_target  # type: ignore[attr-defined]
    with pymysql.connect(**_conn(Cluster.sql_conn(target))) as db, db.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS shop")  # the target keeps crm's two tables of the dump
    before = sandbox.rows(cluster.namespace, target)["digest"]
    restores = [r.name for r in cluster.restores()]
    params = {"target_cluster": f"{cluster.namespace}/{target}"}
    with pytest.raises(RestoreRefused, match=(
            rf"^target_cluster {cluster.namespace}/{target} is not empty: it holds crm.accounts, crm.events; "
            "Lightning's tidb backend has no empty-table check")):
        plan_logical_restore(cluster.config, params, run_hash="merge")
    raw = cluster.config.model_dump(mode="json")
    raw["restore_targets"] = [{"name": target}]
    unchecked = ClusterConfig.model_validate(raw)
    with pytest.raises(RestoreRefused, match=(
            rf"^target_cluster {cluster.namespace}/{target} has no sql_conn_id in clusters.yaml \(restore_targets\)"
            ": a logical restore needs it .* Lightning's tidb backend has no empty-table check")):
        plan_logical_restore(unchecked, params, run_hash="unchecked")
    assert [r.name for r in cluster.restores()] == restores
    assert sandbox.rows(cluster.namespace, target)["digest"] == before


def test_ceph_style_endpoint(sandbox: Any, connections: dict[str, str]):
    endpoint = sandbox.env["TIDB_SANDBOX_S3_ENDPOINT"]
    cluster = Cluster(sandbox, connections, seed_days=0)
    storage = {"provider": "s3", "s3_provider": "ceph", "endpoint": endpoint, "bucket": "my-bucket",
               "root": f"{cluster.name}/ceph-dumps", "secret_name": "s3-secret", "conn_id": connections["s3"]}
    raw = cluster.config.model_dump(mode="json")
    raw["logical_backup"] = {"keep": {"age": "7d"}, "storage": storage, "options": ["--rows=5"]}
    cluster.reconfigure(ClusterConfig.model_validate(raw))
    # The workload has written more than 5 orders: enough for a second file.
    wait_until(lambda: sum(k.startswith("shop/orders/") for k in sandbox.rows(cluster.namespace, cluster.name)[
        "rows"]) > 6, timeout=60)
    run = cluster.run("logical_backup", retries=0)
    assert str(run.state) == "success", _note(run)
    view = _logical(cluster)[-1]
    assert view.raw["spec"]["s3"] == {"provider": "ceph", "secretName": "s3-secret", "endpoint": endpoint,
                                      "bucket": "my-bucket", "prefix": f"{cluster.name}/ceph-dumps"}
    data = _s3(sandbox).get_object(Bucket="my-bucket", Key=view.backup_path.removeprefix("s3://my-bucket/"))
    with tarfile.open(fileobj=io.BytesIO(data["Body"].read()), mode="r:gz") as tar:
        names = [Path(m.name).name for m in tar.getmembers() if m.isfile()]
    assert "shop.orders.000000001.sql" in names, names  # --rows=5: a new file every 5 rows
    assert xcom(run, "verify")["metadata_ts"] == str(view.commit_ts)


def test_wrong_tidb_password_fails_with_the_operators_message(sandbox: Any, connections: dict[str, str]):
    from kubernetes import client
    from kubernetes import config as kube_config

    cluster = Cluster(sandbox, connections, seed_days=0, logical_backup={"tidb_secret": "wrong-tidb-secret"})
    core = client.CoreV1Api(kube_config.new_client_from_config(config_file=str(sandbox.kubeconfig)))
    core.create_namespaced_secret(cluster.namespace, {"metadata": {"name": "wrong-tidb-secret"}, "data": {
        "password": base64.b64encode(b"not-the-password").decode()}})
    run = cluster.run("logical_backup", retries=1)  # the retry adopts the Failed CR, never makes a second one
    assert str(run.state) == "failed"
    assert len(_logical(cluster)) == 1
    note = _note(run)
    assert note.startswith(f"Failed: Backup {cluster.namespace}/{cluster.name}-logical-"), note
    assert "Failed: ConnectTidbFailed: timed out waiting for the condition" in note
    assert "Secret wrong-tidb-secret" in note and "not-the-password" not in note


def test_v2_cluster_refuses_logical_backup_with_the_reason(tmp_path: Path):
    path = tmp_path / "clusters.yaml"
    path.write_text(json.dumps({"clusters": [{
        "name": "demo1", "namespace": "test1", "api_group": "br.pingcap.com",
        "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "conn_id": "s3"},
        "logical_backup": {"keep": {"count": 3}}}]}))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == (f'{path}: cluster "demo1": logical_backup: applies to api_group \'pingcap.com\' '
                                  "(TiDB Operator v1) only: TiDB Operator v2 has no Dumpling backups or Lightning "
                                  "restores (its Backup and Restore require .spec.br)")


def test_the_dag_file_adds_both_dags_for_a_configured_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "clusters.yaml"
    path.write_text(json.dumps({"clusters": [{
        "name": "demo1", "namespace": "test1", "api_group": "pingcap.com",
        "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "conn_id": "s3"},
        "logical_backup": {"keep": {"count": 3}, "anchor": "04:15"}}]}))
    monkeypatch.setenv("TIDB_PITR_CONFIG", str(path))
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[3] / "dags"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    backup, restore = bag.get_dag("tidb_test1_demo1_logical_backup"), bag.get_dag("tidb_test1_demo1_logical_restore")
    assert [t.task_id for t in backup.topological_sort()] == ["backup", "verify", "retention"]
    assert backup.timetable.summary == "15 4 * * *"
    assert set(restore.params) == {"target_cluster", "backup", "dry_run"}
