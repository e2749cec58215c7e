"""A cluster whose backups a TiDB Operator v1 BackupSchedule makes (seed 002's shape, `managed_by:
backup_schedule`), run against the sandbox's schedule controller: the guard measures the RPO on the schedule's
log backup and reports its next GC and hazards, the window and a restore use the schedule's Backups, RPO alerts
name its log, and nothing this project runs deletes or creates a backup there. And, for every cluster: a log
backup is never started while another CR holds the cluster's log task."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from airflow.sdk import DAG
from kubernetes import client, config
from tidb_pitr.flows.rpo_alert import rpo_trigger
from tidb_pitr.operators.log_backup import TidbLogBackupOperator

from ..conftest import run_dag, s3_block, unique, wait_until
from .clusters import TSO_SECOND, Cluster
from .conftest import xcom
from .test_alerts import ALERT_NOTIFIER, asset_events  # noqa: F401 - the fixture, shared

SCHEDULE = "backup-schedule-s3"


def _crs(sandbox: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(config.new_client_from_config(config_file=str(sandbox.kubeconfig)))


def _schedule_body(cluster: Cluster) -> dict[str, Any]:
    """Seed 002's integrated schedule (snapshots and a log backup, `maxReservedTime: 3h`), on v1, in the bucket
    the configuration names."""
    def storage(prefix: str) -> dict[str, Any]:
        return {"s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket",
                       "prefix": f"{cluster.name}/{prefix}"}}
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": "BackupSchedule", "metadata": {"name": SCHEDULE},
            "spec": {"maxReservedTime": "3h", "schedule": "*/2 * * * *",
                     "backupTemplate": {"backupType": "full", "cleanPolicy": "Delete",
                                        "br": {"cluster": cluster.name, "sendCredToTikv": True},
                                        **storage("my-folder-snapshot")},
                     "logBackupTemplate": {"backupMode": "log", "br": {"cluster": cluster.name, "sendCredToTikv": True},
                                           **storage("my-folder-log")}}}


def _storage_keys(sandbox: Any, root: str) -> set[str]:
    env = sandbox.env
    s3 = boto3.client("s3", endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"], region_name="us-west-1",
                      aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                      aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="my-bucket", Prefix=f"{root}/")
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture(scope="module")
def scheduled(sandbox: Any, connections: dict[str, str], airflow_db: Any) -> Iterator[dict[str, Any]]:
    """The cluster, its schedule's log backup Running and one snapshot of the schedule Complete."""
    namespace, scratch, target = unique("sched"), unique("scratch"), unique("target")
    scratch_sql = Cluster.sql_connection(scratch, sandbox.create_cluster(namespace, scratch)["sql"])
    sandbox.create_cluster(namespace, target)
    cluster = Cluster(sandbox, connections, seed_days=0, namespace=namespace, source_sql=True,
                      managed_by="backup_schedule", backup_schedule=SCHEDULE, notifiers=[ALERT_NOTIFIER],
                      restore_targets=[target, {"name": scratch, "scratch": True, "sql_conn_id": scratch_sql}],
                      drill={"target": scratch, "margin": "2s"})
    crs = _crs(sandbox)
    crs.create_namespaced_custom_object("pingcap.com", "v1alpha1", cluster.namespace, "backupschedules",
                                        _schedule_body(cluster))
    log = cluster.wait_log(lambda v: v.name == f"log-{SCHEDULE}" and bool(v.checkpoint_ts), timeout=60)
    # As if the schedule's last run were four minutes ago: the cron's next time is due, the controller runs it.
    past = (datetime.now(UTC) - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    crs.patch_namespaced_custom_object("pingcap.com", "v1alpha1", cluster.namespace, "backupschedules", SCHEDULE,
                                       {"status": {"lastBackupTime": past}})
    snapshot = wait_until(lambda: next((v for v in cluster.snapshots() if v.phase == "Complete"), None), timeout=60)
    assert snapshot.name.startswith(f"{SCHEDULE}-") and log.prefix.startswith(f"{cluster.name}/my-folder-log/log-")
    # The log must reach past the snapshot, in the CR and in storage, for times after it to be restorable.
    cluster.wait_log(lambda v: v.name == log.name and (v.checkpoint_ts or 0) > (snapshot.commit_ts or 0)
                     + 4 * TSO_SECOND, timeout=60)
    sandbox.call("DELETE", "/audit")  # from here on, every API call is a DAG's (or the test's reads)
    yield {"cluster": cluster, "snapshot": snapshot, "log": log.name, "crs": crs, "target": target,
           "names_before": {v.name for v in cluster.backups()}, "keys_before": _storage_keys(sandbox, cluster.name)}
    cluster.close()
    for name in (scratch, target):
        sandbox.delete_cluster(namespace, name)


def test_check_reports_the_schedules_hazards_and_finds_its_log_backup(scheduled, capsys, tmp_path):
    from .test_check import _cli, _row

    # First in the module: the schedule, its log backup and its spec as the fixture made them (later tests change
    # all three: maxBackups, a stopped log backup, ...).
    cluster = scheduled["cluster"]
    code, answer = _cli(capsys, tmp_path, cluster.config, "--observe-seconds", "0")
    schedule = [r for r in answer["rows"] if r["name"] == "backup schedule"]
    # Its maxReservedTime (3h) is shorter than the cluster's retention (7 days): only about 3h stays restorable.
    assert [r["status"] for r in schedule] == ["WARNING"] and "shorter than the retention" in schedule[0]["value"]
    assert _row(answer, "log backup")["status"] == "OK" and _row(answer, "log backup storage")["status"] == "OK"
    # The admin's kubeconfig: nothing the DAGs need is missing, and it may do far more than include/rbac.yaml grants.
    assert not [r for r in answer["rows"] if r["name"].startswith("rbac ") and r["status"] == "FAILED"]
    assert "get secrets" in _row(answer, "rbac extra grants")["value"]
    drill = _row(answer, "drill gc")  # the source's tidb_gc_life_time against the drill's comparison read
    assert drill["status"] == "OK" and "the comparison reads" in drill["value"], drill
    assert code == answer["exit_code"]


def test_a_managed_cluster_gets_only_the_dags_that_create_and_delete_nothing(scheduled):
    assert sorted(scheduled["cluster"].dags) == ["check", "drill", "log_guard", "restore", "rpo_alert"]


def test_guard_window_and_restore_use_the_schedules_backups(sandbox, scheduled):
    cluster, snapshot = scheduled["cluster"], scheduled["snapshot"]

    guard = cluster.run("log_guard")
    assert str(guard.state) == "success"
    assert xcom(guard, "find_log_backup")["name"] == scheduled["log"]
    rpo = xcom(guard, "measure_rpo")
    assert rpo["log_backup"] == scheduled["log"] and rpo["level"] == "ok"
    report = xcom(guard, "schedule_report")
    assert report["gc"]["rule"] == "maxReservedTime" and report["gc"]["delete"] == []
    assert any("tidb-operator#6068" in h and "7 days" in h for h in report["hazards"]), report["hazards"]
    window = xcom(guard, "publish_window")
    assert int(window["earliest"]["ts"]) == snapshot.commit_ts and window["log_name"] == scheduled["log"], window
    status = xcom(guard, "publish_status")
    assert status["retention_plan"]["by"] == "backup_schedule" and status["rpo"]["log_backup"] == scheduled["log"]

    # A restore to a time between the schedule's snapshot and its log's checkpoint, rows compared with the source.
    target = scheduled["target"]
    target_ts = (int(window["earliest"]["ts"]) + int(window["latest"]["ts"])) // 2
    restore = cluster.run("restore", run_conf={"restore_tso": str(target_ts),
                                               "target_cluster": f"{cluster.namespace}/{target}"})
    assert str(restore.state) == "success"
    plan = xcom(restore, "plan")["plan"]
    base = next(v for v in cluster.snapshots() if v.name == plan["base"]["name"])  # the cron may have made one more
    assert base.label("tidb.pingcap.com/backup-schedule") == SCHEDULE and (base.commit_ts or 0) <= target_ts
    assert plan["base"]["backup_path"] == base.backup_path and plan["log"]["name"] == scheduled["log"]
    source = sandbox.rows(cluster.namespace, cluster.name, target_ts)
    restored = sandbox.rows(cluster.namespace, target)
    assert restored["count"] == source["count"] > 0 and restored["digest"] == source["digest"]



def test_rpo_alerts_follow_the_schedules_log(scheduled, webhook, asset_events):  # noqa: F811
    cluster = scheduled["cluster"]
    trigger = rpo_trigger(cluster.config)
    figures = trigger.assess(cluster.hook.list("backups", cluster.namespace))
    assert figures["log_backup"] == scheduled["log"] and figures["level"] == "ok"
    asset_events.append(trigger._payload("critical", {**figures, "lag_seconds": 2400.0}))
    assert str(cluster.run("rpo_alert").state) == "success"
    assert [c["json"]["event"] for c in webhook] == ["rpo_critical"]


def test_a_drill_passes_on_the_schedules_backups(scheduled):
    cluster = scheduled["cluster"]
    run = cluster.run("drill")
    assert str(run.state) == "success"
    record = xcom(run, "record")
    assert record["verdict"] == "passed" and record["tables_compared"] > 0, record
    # The schedule's cron (every 2 minutes) may have made a newer snapshot by now: the base is one of its own.
    assert record["base_snapshot"].startswith(f"{SCHEDULE}-") and record["base_snapshot"] in {
        v.name for v in cluster.snapshots() if v.label("tidb.pingcap.com/backup-schedule") == SCHEDULE}


def test_the_guard_fails_critical_on_the_schedules_log(sandbox, scheduled):
    cluster = scheduled["cluster"]
    strict = cluster.config.model_copy(update={"rpo": cluster.config.rpo.model_copy(
        update={"warn": timedelta(seconds=2), "critical": timedelta(seconds=4)})})
    cluster.reconfigure(strict)
    sandbox.set_faults(freeze_checkpoint=True)
    try:
        frozen = cluster.wait_log(lambda v: v.name == scheduled["log"], timeout=5).checkpoint_ts
        wait_until(lambda: (datetime.now(UTC).timestamp() - (frozen >> 18) / 1000) > 6, timeout=30)
        run = cluster.run("log_guard")
    finally:
        sandbox.set_faults(freeze_checkpoint=False)
    assert str(run.state) == "failed"
    assert xcom(run, "find_log_backup")["name"] == scheduled["log"]


def test_nothing_the_dags_ran_deleted_or_created_a_backup_or_a_key(sandbox, scheduled):
    """Every DAG of the cluster ran above (guard, restore, alert, guard again): the schedule's Backups and their
    data are all still there, and no DAG sent a create or delete of a Backup."""
    cluster = scheduled["cluster"]
    calls = [e for e in sandbox.audit() if e.get("namespace") == cluster.namespace and e["resource"] == "backups"]
    assert calls and not [e for e in calls if e["verb"] in ("delete", "deletecollection", "create")], calls
    assert scheduled["names_before"] <= {v.name for v in cluster.backups()}
    assert scheduled["keys_before"] <= _storage_keys(sandbox, cluster.name)


def test_max_backups_on_the_schedule_is_reported_and_its_lost_log_named(sandbox, scheduled):
    """#6320 in the spec is warned of; once the schedule's GC has deleted its log backup CR the guard says so."""
    cluster, crs = scheduled["cluster"], scheduled["crs"]
    crs.patch_namespaced_custom_object("pingcap.com", "v1alpha1", cluster.namespace, "backupschedules", SCHEDULE,
                                       {"spec": {"maxReservedTime": None, "maxBackups": 1}})
    wait_until(lambda: all(v.name != scheduled["log"] for v in cluster.logs()), timeout=60)
    run = cluster.run("log_guard")
    assert str(run.state) == "failed"
    report = xcom(run, "schedule_report")
    assert any("tidb-operator#6320" in h for h in report["hazards"]), report["hazards"]
    assert xcom(run, "find_log_backup") is None


def test_a_second_log_backup_is_refused_naming_the_other(sandbox, connections, airflow_db, fresh_cluster, capfd):
    ns, name = fresh_cluster()
    crs = _crs(sandbox)
    theirs = unique("dba-log")  # a DBA's own log backup, no label of this project
    crs.create_namespaced_custom_object("pingcap.com", "v1alpha1", ns, "backups", {
        "metadata": {"name": theirs}, "spec": {"backupMode": "log", "br": {"cluster": name},
                                               "s3": {**s3_block()["s3"], "prefix": f"{name}/dba-log"}}})
    dag = DAG(dag_id=unique("second-log"), schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC))
    with dag:
        TidbLogBackupOperator(task_id="start", action="start", backup_name=f"{name}-log-backup", cluster=name,
                              storage=s3_block(), prefix=f"{name}/log-backup", namespace=ns, retries=0,
                              kubernetes_conn_id=connections["kubernetes"], poll_interval=0.2)
    assert run_dag(dag) == "failed"
    printed = "".join(capfd.readouterr())  # the task's log, as dag.test() prints it
    assert f"refusing to start log backup {ns}/{name}-log-backup: log backup {ns}/{theirs}" in printed
    logs = crs.list_namespaced_custom_object("pingcap.com", "v1alpha1", ns, "backups")["items"]
    assert [o["metadata"]["name"] for o in logs] == [theirs]
