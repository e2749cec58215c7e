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


STAMP = "20261201000000"


def _snapshot_op(cluster: str, task_id: str = "snapshot", **common: Any) -> TidbSnapshotBackupOperator:
    """A snapshot of `cluster` made as the snapshot DAG makes it: `<cluster>-snapshot-<stamp>` at
    `<cluster>/snapshot-<stamp>` (the cluster's name doubles as its configured name and storage root)."""
    return TidbSnapshotBackupOperator(task_id=task_id, pitr_cluster=cluster, stamp=STAMP, cluster=cluster,
                                      storage=s3_block(), root=cluster, **common)


@pytest.mark.parametrize("deferrable", [True, False])
def test_snapshot_operator_returns_commit_ts(airflow_db, connections, fresh_cluster, deferrable):
    ns, cluster = fresh_cluster()
    with _dag("snap") as dag:
        snap = _snapshot_op(cluster, namespace=ns, deferrable=deferrable, poll_interval=0.2,
                            kubernetes_conn_id=connections["kubernetes"])
        _collect("snap")(snap.output)
    assert _run(dag) == "success"
    result = RESULTS["snap"]
    assert result["name"] == f"{cluster}-snapshot-{STAMP}" and result["commit_ts"] > 0 and result["backup_size"] > 0
    # backupPath as the backup manager writes it: the cluster's root, then the snapshot's own folder
    assert result["backup_path"] == f"s3://my-bucket/{cluster}/snapshot-{STAMP}"


def test_failed_backup_fails_the_task_with_the_operators_message(
    sandbox, airflow_db, connections, fresh_cluster, caplog
):
    ns, cluster = fresh_cluster()
    sandbox.set_faults(fail_next_backup="injected: disk quota exceeded")
    with _dag("snapfail") as dag:
        _snapshot_op(cluster, namespace=ns, kubernetes_conn_id=connections["kubernetes"], retries=0)
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
    target = unique("target")
    sandbox.create_cluster(ns, target)
    common = {"namespace": ns, "kubernetes_conn_id": connections["kubernetes"], "poll_interval": 0.2}
    with _dag("restore") as dag:
        snap = _snapshot_op(cluster, **common)
        restore = TidbRestoreOperator(
            task_id="restore",
            body={
                "metadata": {"name": unique("restore")},
                "spec": {"br": {"cluster": target},
                         "s3": {**s3_block()["s3"], "prefix": f"{cluster}/snapshot-{STAMP}"}},
            },
            pitr_cluster=cluster,
            **common,
        )
        snap >> restore
        _collect("snap-r")(snap.output)
        _collect("restore")(restore.output)
    assert _run(dag) == "success"
    commit_ts = RESULTS["snap-r"]["commit_ts"]
    assert sandbox.rows(ns, target)["digest"] == sandbox.rows(ns, cluster, commit_ts)["digest"]
    assert RESULTS["restore"]["duration_seconds"] is not None


def _s3(sandbox: Any) -> Any:
    import boto3

    env = sandbox.env
    return boto3.client("s3", endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"], region_name="us-west-1",
                        aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                        aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"])


def _delete_op(task_id: str, cluster: str, connections: dict[str, str], **kwargs: Any) -> TidbDeleteSnapshotOperator:
    return TidbDeleteSnapshotOperator(task_id=task_id, cluster_name=cluster, storage=s3_block(), root=cluster,
                                      storage_provider="s3", storage_conn_id=connections["s3"], bucket="my-bucket",
                                      **kwargs)


def test_delete_snapshot_cr_and_orphan_prefix(sandbox, airflow_db, connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    s3 = _s3(sandbox)
    orphan = f"{cluster}/snapshot-20200101000000"
    for i in range(5):
        s3.put_object(Bucket="my-bucket", Key=f"{orphan}/1/{i}.sst", Body=b"x" * 10)
    common = {"namespace": ns, "kubernetes_conn_id": connections["kubernetes"], "poll_interval": 0.2}
    with _dag("delete") as dag:
        snap = _snapshot_op(cluster, **common)
        delete = _delete_op("delete", cluster, connections, backup_name=f"{cluster}-snapshot-{STAMP}", **common)
        orphaned = _delete_op("orphan", cluster, connections, backup_name="gone-already", prefix=orphan, **common)
        snap >> delete >> orphaned
        _collect("orphan")(orphaned.output)
    assert _run(dag) == "success"
    keys = s3.list_objects_v2(Bucket="my-bucket", Prefix=f"{cluster}/").get("KeyCount", 0)
    assert keys == 0
    assert RESULTS["orphan"]["objects_deleted"] == 5


@pytest.mark.parametrize("case", ["no-labels", "other-cluster", "other-bucket", "prefix-backups", "log-prefix"])
def test_delete_refuses_what_this_project_did_not_make(sandbox, airflow_db, connections, fresh_cluster, case):
    """The review's finding: a DBA's Retain backup with prefix `backups` led to delete_prefix("backups")."""
    from tidb_pitr.hooks.kubernetes import TidbOperatorHook

    ns, cluster = fresh_cluster()
    s3 = _s3(sandbox)
    for key in (f"{cluster}/log-backup/backupmeta", "backups/1.sst", f"{cluster}/snapshot-{STAMP}/backupmeta"):
        s3.put_object(Bucket="my-bucket", Key=key, Body=b"keep me")
    labels = {"app.kubernetes.io/managed-by": "tidb-pitr-airflow", "tidb-pitr-airflow/cluster": cluster}
    prefix, bucket = f"{cluster}/snapshot-{STAMP}", "my-bucket"
    if case == "no-labels":
        labels = {}
    elif case == "other-cluster":
        labels["tidb-pitr-airflow/cluster"] = "someone-else"
    elif case == "other-bucket":
        bucket = "dba-bucket"
    elif case == "prefix-backups":
        prefix = "backups"
    else:
        prefix = f"{cluster}/log-backup"
    name = unique("dba-backup")
    hook = TidbOperatorHook(connections["kubernetes"])
    hook.api.create_namespaced_custom_object("pingcap.com", "v1alpha1", ns, "backups", {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": {"name": name, "labels": labels},
        "spec": {"backupType": "full", "cleanPolicy": "Retain", "br": {"cluster": cluster},
                 "s3": {**s3_block()["s3"], "bucket": bucket, "prefix": prefix}}})
    common = {"namespace": ns, "kubernetes_conn_id": connections["kubernetes"], "poll_interval": 0.2, "retries": 0}
    with _dag("refuse") as dag:
        _delete_op("delete", cluster, connections, backup_name=name, prefix=prefix, **common)
    assert _run(dag) == "failed"
    assert hook.get("backups", name, ns) is not None, "the CR is still there"
    for key in (f"{cluster}/log-backup/backupmeta", "backups/1.sst", f"{cluster}/snapshot-{STAMP}/backupmeta"):
        assert s3.get_object(Bucket="my-bucket", Key=key)["Body"].read() == b"keep me", key


def test_orphan_deletion_outside_the_snapshot_folders_is_refused(sandbox, airflow_db, connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    s3 = _s3(sandbox)
    s3.put_object(Bucket="my-bucket", Key=f"{cluster}/log-backup/backupmeta", Body=b"keep me")
    common = {"namespace": ns, "kubernetes_conn_id": connections["kubernetes"], "retries": 0}
    with _dag("orphan-refused") as dag:
        _delete_op("orphan", cluster, connections, backup_name=None, prefix=f"{cluster}/log-backup", **common)
    assert _run(dag) == "failed"
    assert s3.get_object(Bucket="my-bucket", Key=f"{cluster}/log-backup/backupmeta")["Body"].read() == b"keep me"
