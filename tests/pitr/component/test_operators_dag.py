"""Operators and sensors run through `dag.test()` on SQLite against the sandbox, deferrable and not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG, task
from tidb_pitr.operators.backup import TidbSnapshotBackupOperator
from tidb_pitr.operators.delete import TidbDeleteSnapshotOperator
from tidb_pitr.operators.log_backup import TidbLogBackupOperator
from tidb_pitr.operators.restore import TidbRestoreOperator
from tidb_pitr.operators.truncate import TidbLogTruncateOperator
from tidb_pitr.sensors.backup import TidbLogCheckpointSensor

from ..conftest import azblob_block, run_dag, s3_block, unique

RESULTS: dict[str, Any] = {}


def _run(dag: DAG) -> str:
    return run_dag(dag)


def _collect(key: str):
    @task(task_id=f"collect_{key}")
    def collect(value: Any) -> None:
        RESULTS[key] = value

    return collect


def _dag(name: str) -> DAG:
    return DAG(dag_id=unique(name), schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False)


@pytest.mark.parametrize("deferrable", [True, False])
def test_snapshot_operator_returns_commit_ts(airflow_db, connections, fresh_cluster, deferrable):
    ns, cluster = fresh_cluster()
    name = unique("snapshot")
    with _dag("snap") as dag:
        snap = TidbSnapshotBackupOperator(
            task_id="snapshot",
            backup_name=name,
            cluster=cluster,
            namespace=ns,
            storage=s3_block(),
            prefix=f"{cluster}/{name}",
            deferrable=deferrable,
            poll_interval=0.2,
            kubernetes_conn_id=connections["kubernetes"],
        )
        _collect("snap")(snap.output)
    assert _run(dag) == "success"
    result = RESULTS["snap"]
    assert result["name"] == name and result["commit_ts"] > 0 and result["backup_size"] > 0
    assert result["backup_path"] == f"s3://my-bucket/{cluster}/{name}/"


def test_failed_backup_fails_the_task_with_the_operators_message(
    sandbox, airflow_db, connections, fresh_cluster, caplog
):
    ns, cluster = fresh_cluster()
    sandbox.set_faults(fail_next_backup="injected: disk quota exceeded")
    with _dag("snapfail") as dag:
        TidbSnapshotBackupOperator(
            task_id="snapshot",
            backup_name=unique("snapshot"),
            cluster=cluster,
            namespace=ns,
            storage=s3_block(),
            prefix=f"{cluster}/x",
            kubernetes_conn_id=connections["kubernetes"],
        )
    assert _run(dag) == "failed"


def test_log_backup_lifecycle_and_checkpoint_sensor_v2_azure(airflow_db, connections, fresh_cluster):
    ns, cluster = fresh_cluster(api_group="br.pingcap.com", storage="azblob")
    common = {
        "namespace": ns,
        "backup_name": f"{cluster}-log",
        "api_group": "br.pingcap.com",
        "kubernetes_conn_id": connections["kubernetes"],
        "poll_interval": 0.2,
    }
    with _dag("log") as dag:
        start = TidbLogBackupOperator(
            task_id="start",
            action="start",
            cluster=cluster,
            storage=azblob_block(),
            prefix=f"{cluster}/log-backup",
            **common,
        )
        start_again = TidbLogBackupOperator(
            task_id="start_again",
            action="start",
            cluster=cluster,
            storage=azblob_block(),
            prefix=f"{cluster}/log-backup",
            **common,
        )
        caught_up = TidbLogCheckpointSensor(
            task_id="caught_up",
            cr_name=f"{cluster}-log",
            namespace=ns,
            api_group="br.pingcap.com",
            max_lag=timedelta(seconds=30),
            kubernetes_conn_id=connections["kubernetes"],
            poll_interval=0.2,
        )
        pause = TidbLogBackupOperator(task_id="pause", action="pause", **common)
        pause_again = TidbLogBackupOperator(task_id="pause_again", action="pause", **common)
        resume = TidbLogBackupOperator(task_id="resume", action="resume", **common)
        stop = TidbLogBackupOperator(task_id="stop", action="stop", **common)
        start >> start_again >> caught_up >> pause >> pause_again >> resume >> stop
        _collect("stopped")(stop.output)
        _collect("lag")(caught_up.output)
    assert _run(dag) == "success"
    assert RESULTS["stopped"]["phase"] == "Stopped"
    assert RESULTS["lag"]["lag_seconds"] <= 30


@pytest.mark.parametrize("group", ["pingcap.com", "br.pingcap.com"])
def test_truncate_operator_confirms(sandbox, airflow_db, connections, fresh_cluster, group):
    ns, cluster = fresh_cluster(api_group=group)
    log_name = f"{cluster}-log"
    common = {
        "namespace": ns,
        "api_group": group,
        "kubernetes_conn_id": connections["kubernetes"],
        "poll_interval": 0.2,
    }
    with _dag("trunc") as dag:
        start = TidbLogBackupOperator(
            task_id="start",
            action="start",
            backup_name=log_name,
            cluster=cluster,
            storage=s3_block(),
            prefix=f"{cluster}/log-backup",
            **common,
        )
        moved = TidbLogCheckpointSensor(
            task_id="moved",
            cr_name=log_name,
            target_ts="{{ (ti.xcom_pull(task_ids='start')['commit_ts'] + (2000 * 2**18)) }}",
            **common,
        )
        truncate = TidbLogTruncateOperator(
            task_id="truncate",
            backup_name=log_name,
            until_ts="{{ ti.xcom_pull(task_ids='start')['commit_ts'] + (1000 * 2**18) }}",
            **common,
        )
        start >> moved >> truncate
        _collect(f"trunc-{group}")(truncate.output)
    assert _run(dag) == "success"
    assert RESULTS[f"trunc-{group}"]["truncated_until"].isdigit()


def test_truncate_of_a_missing_cr_names_it(airflow_db, connections, fresh_cluster):
    ns, _ = fresh_cluster()
    with _dag("trunc-missing") as dag:
        TidbLogTruncateOperator(
            task_id="truncate",
            backup_name="no-such-log",
            until_ts=123,
            namespace=ns,
            kubernetes_conn_id=connections["kubernetes"],
        )
    assert _run(dag) == "failed"


def test_restore_operator_rows_equal_source(sandbox, airflow_db, connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    name = unique("snapshot")
    target = unique("target")
    sandbox.create_cluster(ns, target)
    common = {"namespace": ns, "kubernetes_conn_id": connections["kubernetes"], "poll_interval": 0.2}
    with _dag("restore") as dag:
        snap = TidbSnapshotBackupOperator(
            task_id="snapshot",
            backup_name=name,
            cluster=cluster,
            storage=s3_block(),
            prefix=f"{cluster}/{name}",
            **common,
        )
        restore = TidbRestoreOperator(
            task_id="restore",
            body={
                "metadata": {"name": unique("restore")},
                "spec": {"br": {"cluster": target}, "s3": {**s3_block()["s3"], "prefix": f"{cluster}/{name}"}},
            },
            **common,
        )
        snap >> restore
        _collect("snap-r")(snap.output)
        _collect("restore")(restore.output)
    assert _run(dag) == "success"
    commit_ts = RESULTS["snap-r"]["commit_ts"]
    assert sandbox.rows(ns, target)["digest"] == sandbox.rows(ns, cluster, commit_ts)["digest"]
    assert RESULTS["restore"]["duration_seconds"] is not None


def test_delete_snapshot_cr_and_orphan_prefix(sandbox, airflow_db, connections, fresh_cluster):
    import boto3

    ns, cluster = fresh_cluster()
    env = sandbox.env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"],
        region_name="us-west-1",
        aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
        aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"],
    )
    orphan = f"{cluster}/snapshot-20200101000000"
    for i in range(5):
        s3.put_object(Bucket="my-bucket", Key=f"{orphan}/1/{i}.sst", Body=b"x" * 10)
    name = unique("snapshot")
    common = {"namespace": ns, "kubernetes_conn_id": connections["kubernetes"], "poll_interval": 0.2}
    with _dag("delete") as dag:
        snap = TidbSnapshotBackupOperator(
            task_id="snapshot",
            backup_name=name,
            cluster=cluster,
            storage=s3_block(),
            prefix=f"{cluster}/{name}",
            **common,
        )
        delete = TidbDeleteSnapshotOperator(task_id="delete", backup_name=name, **common)
        orphaned = TidbDeleteSnapshotOperator(
            task_id="orphan",
            backup_name="gone-already",
            prefix=orphan,
            storage_provider="s3",
            storage_conn_id=connections["s3"],
            bucket="my-bucket",
            **common,
        )
        snap >> delete >> orphaned
        _collect("orphan")(orphaned.output)
    assert _run(dag) == "success"
    keys = s3.list_objects_v2(Bucket="my-bucket", Prefix=f"{cluster}/").get("KeyCount", 0)
    assert keys == 0
    assert RESULTS["orphan"]["objects_deleted"] == 5
