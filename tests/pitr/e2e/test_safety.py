"""Safety on a strict sandbox, through the DAGs (`dag.test()`), where a user would meet each case.

Every cluster here is its own (seeded with 12 days and a 7-day retention where history matters), so one
test's faults and CRs never reach another's. The DAGs are built by the factory from a ClusterConfig, as
the DAG file builds them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from tidb_pitr.tso import dt_to_tso

from ...sandbox.component.test_operator_backup import storage_checkpoint
from ..conftest import export_connections, unique, wait_until
from .clusters import TSO_SECOND, Cluster
from .conftest import xcom


def _s3(sandbox: Any) -> Any:
    env = sandbox.env
    return boto3.client("s3", endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"], region_name="us-west-1",
                        aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                        aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"])


def _keys(sandbox: Any, bucket: str, prefix: str) -> set[str]:
    pages = _s3(sandbox).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


@pytest.fixture
def clean_faults(sandbox: Any) -> Iterator[None]:
    try:
        yield
    finally:
        sandbox.clear_faults()
        sandbox.set_config(tracker_interval=0.6, storage_checkpoint_lag=0.3)


def _foreign_backup(sandbox: Any, cluster: Cluster, name: str, *, bucket: str, prefix: str, days_ago: float) -> None:
    """A DBA's own full backup of the cluster, made by hand: no labels of ours, cleanPolicy Retain."""
    ts = dt_to_tso(datetime.now(UTC) - timedelta(days=days_ago))
    cluster.hook.api.create_namespaced_custom_object("pingcap.com", "v1alpha1", cluster.namespace, "backups", {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": {"name": name},
        "spec": {"backupType": "full", "cleanPolicy": "Retain", "commitTs": str(ts), "br": {"cluster": cluster.name},
                 "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": bucket,
                        "prefix": prefix}}})
    wait_until(lambda: next((v for v in cluster.snapshots() if v.name == name and v.phase == "Complete"), None))


# -- 1. ownership -------------------------------------------------------------------------------------------
def test_retention_keeps_a_dbas_backups_and_deletes_only_its_own(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections)
    s3 = _s3(sandbox)
    s3.create_bucket(Bucket="dba-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-1"})
    # The review's case (another bucket, prefix `backups`), and a foreign CR in the same bucket.
    _foreign_backup(sandbox, cluster, "dba-full", bucket="dba-bucket", prefix="backups", days_ago=10)
    _foreign_backup(sandbox, cluster, "dba-here", bucket="my-bucket", prefix=f"dba/{cluster.name}", days_ago=9)
    foreign_data = _keys(sandbox, "dba-bucket", "backups/") | _keys(sandbox, "my-bucket", "dba/")
    log_data = _keys(sandbox, "my-bucket", f"{cluster.name}/log-backup/")
    before = {v.name for v in cluster.snapshots()}

    run = cluster.run("retention")
    assert str(run.state) == "success"
    plan = xcom(run, "plan")
    planned = {d["backup_name"] for d in plan["planned_deletions"] if d["backup_name"]}
    assert planned and all(name.startswith(f"{cluster.name}-snapshot-") for name in planned)
    kept = {i["name"]: i["reason"] for i in plan["plan"]["ignored"]}
    assert kept["dba-full"].startswith("not managed here: kept") and kept["dba-here"].startswith("not managed here")
    after = {v.name for v in cluster.snapshots()}
    assert before - after == planned and {"dba-full", "dba-here"} <= after
    assert foreign_data <= _keys(sandbox, "dba-bucket", "backups/") | _keys(sandbox, "my-bucket", "dba/")
    assert log_data - _keys(sandbox, "my-bucket", f"{cluster.name}/log-backup/") <= {
        k for k in log_data if "/v1/" in k}, "only log data before the truncate point may go"


# -- 2. the live log backup, by its state -------------------------------------------------------------------
def test_a_stopped_log_backup_is_followed_by_a_new_one_and_both_stay_restorable(
        sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=3)
    old = cluster.live_log()
    cluster.patch_log({"logSubcommand": "log-stop"}, old.name)
    cluster.wait_log(lambda v: v.name == old.name and v.phase == "Stopped")
    refused = cluster.run("log_guard")
    assert str(refused.state) == "failed", "a Stopped log backup is never papered over"

    run = cluster.run("log_guard", run_conf={"start_new_log_backup": True})
    assert str(run.state) == "success"
    found = xcom(run, "find_log_backup")
    assert found == {"name": f"{old.name}-2", "prefix": f"{cluster.name}/log-backup-2", "new": True}
    assert str(cluster.run("snapshot").state) == "success", "the snapshot's preflight finds the new log"
    new = cluster.wait_log(lambda v: v.name == found["name"] and (v.checkpoint_ts or 0) > 0)
    window = cluster.window()
    assert len(window.gaps) == 1, window.describe()  # between the old checkpoint and the first new snapshot
    newest = max((s for s in window.segments if s.bases), key=lambda s: s.end_ts)
    assert newest.log.name == new.name
    for target_ts in (window.earliest_ts + TSO_SECOND, (newest.start_ts + newest.end_ts) // 2):
        target = cluster.target()
        run = cluster.run("restore", run_conf={"restore_tso": str(target_ts), "target_cluster": target,
                                               "target_namespace": cluster.namespace})
        assert str(run.state) == "success"
        source, restored = sandbox.rows(cluster.namespace, cluster.name, target_ts), sandbox.rows(
            cluster.namespace, target)
        assert (restored["count"], restored["digest"]) == (source["count"], source["digest"])
    assert new.prefix == f"{cluster.name}/log-backup-2"


@pytest.fixture
def short_pause_sandbox(tmp_path: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    """A sandbox of its own whose pause safe points last 1 s and whose GC keeps 1 s of history. Not the
    session's: a GC safe point never moves back, so every later test's older reads would be refused."""
    from tidb_sandbox.client import running_sandbox

    with running_sandbox(tmp_path / "sandbox", settings={"gc_life_time": 1, "log_pause_gc_ttl": 1}) as own:
        yield own, export_connections(own, "short_pause", wasb=False)


def test_a_log_backup_paused_past_its_gc_ttl_is_replaced_and_the_gap_is_refused(short_pause_sandbox, airflow_db):
    from airflow.sdk.exceptions import AirflowFailException
    from tidb_pitr.flows.tasks.guard import find_log_backup
    from tidb_pitr.flows.tasks.restore import RestoreRefused, plan_restore_for
    from tidb_pitr.planning.timeline import gap_causes

    own, connections = short_pause_sandbox
    cluster = Cluster(own, connections, seed_days=1)
    old = cluster.live_log()
    cluster.patch_log({"logSubcommand": "log-pause"}, old.name)
    cluster.wait_log(lambda v: v.name == old.name and v.phase == "Paused")
    own.let_pass(2.5)  # past the pause safe point (1 s), and the GC (1 s of history) passes the checkpoint

    # The guard asks for the resume once; BR refuses it, and that is final.
    assert str(cluster.run("log_guard").state) == "failed"
    dead = cluster.wait_log(lambda v: v.name == old.name and "log-resume" in v.sub_statuses
                            and v.sub_statuses["log-resume"].phase == "Failed")
    assert dead.phase == "Paused" and "ErrBackupGCSafepointExceeded" in dead.sub_statuses["log-resume"].message
    with pytest.raises(AirflowFailException) as refused:
        find_log_backup(cluster.config)
    assert "pause GC TTL" in str(refused.value) and "start_new_log_backup=true" in str(refused.value)
    assert f"starts {old.name}-2" in str(refused.value), str(refused.value)
    assert str(cluster.run("log_guard").state) == "failed"
    again = cluster.logs()[0]
    assert again.sub_statuses["log-resume"].since == dead.sub_statuses["log-resume"].since, "never asked again"

    run = cluster.run("log_guard", run_conf={"start_new_log_backup": True})
    assert str(run.state) == "success"
    assert xcom(run, "find_log_backup")["replaces"] == old.name
    assert {v.name: v.phase for v in cluster.logs()}[old.name] == "Stopped"
    assert str(cluster.run("snapshot").state) == "success"
    window = cluster.window()
    [(gap_from, gap_to)] = window.gaps
    assert gap_from == old.checkpoint_ts or gap_from == dead.checkpoint_ts, window.describe()
    assert "paused past BR's pause GC TTL" in gap_causes(window)[0].cause
    target = cluster.target()
    with pytest.raises(RestoreRefused) as inside:
        plan_restore_for(cluster.config, {"restore_tso": str((gap_from + gap_to) // 2), "target_cluster": target,
                                          "target_namespace": cluster.namespace})
    assert "gap" in str(inside.value), str(inside.value)
    assert [r for r in cluster.restores() if r.cluster == target] == []


# -- 3. error-pause recovery ----------------------------------------------------------------------------------
def test_after_an_error_pause_is_fixed_the_guard_sees_a_running_task(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1)
    live = cluster.live_log()
    sandbox.set_faults(log_error_pause="injected: disk full", log_error_pause_target=f"{cluster.namespace}/{live.name}")
    cluster.wait_log(lambda v: v.error_paused)
    assert str(cluster.run("log_guard").state) == "failed", "an error pause is reported, not papered over"
    cluster.patch_log({"logSubcommand": "log-pause"})
    cluster.wait_log(lambda v: v.phase == "Paused")
    sandbox.let_pass(4)  # the operator's kernel-state cache expires; the pause stays
    cluster.wait_log(lambda v: v.phase == "Paused")
    cluster.patch_log({"logSubcommand": "log-start"})
    resumed_at = dt_to_tso(datetime.now(UTC))
    # The tracker polls again now that the phase is Running: the checkpoint catches up.
    running = cluster.wait_log(lambda v: v.phase == "Running" and (v.checkpoint_ts or 0) > resumed_at)
    assert running.sub_statuses["log-start"].phase == "RetryFailed", "TiDB Operator never resets it"
    run = cluster.run("log_guard")
    assert str(run.state) == "success"
    assert xcom(run, "measure_rpo")["level"] in ("ok", "warn")


def _note(run: Any) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note or ""


# -- 4. hopeless waits fail fast ------------------------------------------------------------------------------
def test_a_missing_secret_fails_the_snapshot_fast_with_the_operators_message(
        sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1, storage={"secret_name": "no-such-secret"})
    run = cluster.run("snapshot", retries=0)
    assert str(run.state) == "failed"
    [snapshot] = [v for v in cluster.snapshots() if v.label("tidb-pitr-airflow/cluster") == cluster.name
                  and v.phase == "RetryFailed"]
    assert snapshot.reason == "GetS3SecretFailed"
    headline = _note(run).split("\n\n")[0]  # what failed first, and what it means for retention
    assert headline == "Snapshot failed: snapshot failed; retention holds", headline


def test_a_log_job_whose_pod_died_is_reported_stuck(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=0)
    sandbox.set_faults(crash_log_job=f"{cluster.namespace}/{cluster.config.log_backup_name}")
    run = cluster.run("log_guard")
    assert str(run.state) == "failed"
    [log] = cluster.logs()
    assert log.sub_statuses["log-start"].phase == "Running" and not log.commit_ts  # as the operator leaves it


# -- 5. retries that can succeed ------------------------------------------------------------------------------
def test_a_snapshot_retry_after_a_failed_cr_makes_a_new_attempt(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1)
    sandbox.set_faults(fail_next_backup="injected: TiKV store 3 is down")
    run = cluster.run("snapshot", retries=1)
    assert str(run.state) == "success"
    made = xcom(run, "snapshot")
    assert made["name"].endswith("-a2")
    mine = [v for v in cluster.snapshots() if v.annotations.get("tidb-pitr-airflow/run-id", "").endswith(run.run_id)]
    assert sorted(v.phase for v in mine) == ["Complete", "Failed"], "the failed CR stays, for the record"
    assert len({v.prefix for v in mine}) == 2, "each attempt writes a folder of its own"
    # The run's note: when its data was taken (commitTs, UTC here), its size, and where it is.
    headline, details = _note(run).split("\n\n")
    assert re.fullmatch(rf"Snapshot {made['name']} Complete: \d+(\.\d)? [KMGT]?B, data as of "
                        r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\dZ", headline), headline
    assert f" at {made['backup_path']}" in details and f"(its commitTs {made['commit_ts']})" in details


def test_a_restore_to_the_same_time_runs_again_after_a_failure(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1)
    window = cluster.window()
    conf = {"restore_tso": str((window.earliest_ts + window.latest_ts) // 2), "target_namespace": cluster.namespace}
    target = cluster.target()
    sandbox.set_faults(fail_next_restore="injected: TiKV is down")
    assert str(cluster.run("restore", run_conf={**conf, "target_cluster": target}).state) == "failed"
    assert str(cluster.run("restore", run_conf={**conf, "target_cluster": target}).state) == "success"
    assert sorted(r.phase for r in cluster.restores() if r.cluster == target) == ["Complete", "Failed"]


# -- 6. pod identity on every CR ------------------------------------------------------------------------------
def test_the_service_account_reaches_every_cr_the_dags_make(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1, compaction=True, service_account="tidb-backup-manager")
    runs = [cluster.run("snapshot"), cluster.run("compaction")]
    window = cluster.window()
    runs.append(cluster.run("restore", run_conf={
        "restore_tso": str(window.latest_ts - TSO_SECOND), "target_cluster": cluster.target(),
        "target_namespace": cluster.namespace}))
    assert [str(run.state) for run in runs] == ["success"] * 3
    made_by = {f"{run.dag_id}/{run.run_id}" for run in runs}
    made = {plural: [o for o in cluster.hook.list(plural, cluster.namespace)
                     if (o["metadata"].get("annotations") or {}).get("tidb-pitr-airflow/run-id") in made_by]
            for plural in ("backups", "compactbackups", "restores")}
    assert [len(objs) for objs in made.values()] == [1, 1, 1], made
    assert [o["spec"].get("serviceAccount") for objs in made.values() for o in objs] == ["tidb-backup-manager"] * 3


# -- 7. retention and restore exclude each other --------------------------------------------------------------
def test_retention_keeps_the_base_of_a_restore_in_progress(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections)
    dry = xcom(cluster.run("retention", run_conf={"dry_run": True}), "plan")
    doomed = [d for d in dry["planned_deletions"] if d["backup_name"]][0]
    oldest = next(v for v in cluster.snapshots() if v.name == doomed["backup_name"])
    sandbox.set_faults(hang_restores=True)
    target = cluster.target()
    cluster.hook.create_or_adopt("restores", {
        "metadata": {"name": unique("by-hand")},
        "spec": {"restoreMode": "pitr", "br": {"cluster": target}, "pitrRestoredTs": str(oldest.commit_ts + 1),
                 "pitrFullBackupStorageProvider": oldest.storage, **cluster.live_log().storage}},
        cluster.namespace, {})
    wait_until(lambda: any(r.phase == "Running" for r in cluster.restores()))
    run = cluster.run("retention")
    assert str(run.state) == "success"
    plan = xcom(run, "plan")
    assert oldest.name not in {d["backup_name"] for d in plan["deletions"]}
    assert any("restore in progress" in r and oldest.name in r for r in plan["plan"]["reasons"])
    assert oldest.name in {v.name for v in cluster.snapshots()}
    truncated = cluster.live_log().truncated_until
    assert truncated is None or truncated <= (oldest.commit_ts or 0)


def test_a_restore_waits_for_a_running_retention_then_refuses(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1)
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    lease = json.dumps({"run": "tidb_x_retention/manual__now", "until": until})
    cluster.hook.merge_patch("backups", cluster.live_log().name, cluster.namespace,
                             {"metadata": {"annotations": {"tidb-pitr-airflow/retention-lease": lease}}})
    window = cluster.window()
    run = cluster.run("restore", run_conf={"restore_tso": str(window.latest_ts - TSO_SECOND),
                                           "target_cluster": cluster.target(), "target_namespace": cluster.namespace})
    assert str(run.state) == "failed"
    assert not cluster.restores(), "refused before any Restore CR"


# -- 8. no false RPO CRITICAL right after a start -------------------------------------------------------------
def test_a_log_backup_just_started_is_starting_not_critical(sandbox, connections, airflow_db, clean_faults):
    sandbox.set_config(tracker_interval=30)  # the operator's tracker has not polled yet
    cluster = Cluster(sandbox, connections, seed_days=0, waits={"tracker_interval": "30s"})
    run = cluster.run("log_guard")
    assert str(run.state) == "success"
    assert xcom(run, "measure_rpo")["level"] == "starting"
    assert cluster.logs()[0].checkpoint_ts is None
    # The snapshot's preflight too: a snapshot may be taken; it waits for the checkpoint afterwards.
    from tidb_pitr.flows.tasks.snapshot import check_log_backup_healthy

    assert check_log_backup_healthy(cluster.config)["lag_seconds"] is None


# -- 9. bases are full-cluster snapshots only -----------------------------------------------------------------
def test_a_filtered_backup_is_never_a_restore_base(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=3)
    cluster.hook.api.create_namespaced_custom_object("pingcap.com", "v1alpha1", cluster.namespace, "backups", {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": {"name": "dba-filtered"},
        "spec": {"backupType": "full", "tableFilter": ["shop.*"], "br": {"cluster": cluster.name},
                 "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket",
                        "prefix": f"{cluster.name}/dba-filtered"}}})
    filtered = wait_until(lambda: next((v for v in cluster.snapshots() if v.name == "dba-filtered"
                                        and v.phase == "Complete"), None))
    wait_until(lambda: (cluster.live_log().checkpoint_ts or 0) > (filtered.commit_ts or 0) + TSO_SECOND)
    target_ts = (filtered.commit_ts or 0) + TSO_SECOND // 2
    # BR checks the restore point against the global checkpoint in storage, which trails the CR's.
    wait_until(lambda: storage_checkpoint(sandbox, "s3", cluster.live_log().prefix or "") > target_ts)
    target = cluster.target()
    run = cluster.run("restore", run_conf={"restore_tso": str(target_ts), "target_cluster": target,
                                           "target_namespace": cluster.namespace})
    assert str(run.state) == "success"
    assert xcom(run, "plan")["plan"]["base"]["name"] != "dba-filtered"
    source, restored = sandbox.rows(cluster.namespace, cluster.name, target_ts), sandbox.rows(cluster.namespace, target)
    assert restored["digest"] == source["digest"]


# -- 10. a failed truncate does not block retention -----------------------------------------------------------
def test_a_failed_truncate_still_deletes_and_the_next_run_truncates(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections)
    before = {v.name for v in cluster.snapshots()}
    sandbox.set_faults(fail_next_truncate="injected: truncate failed")
    first = cluster.run("retention", retries=0)
    assert str(first.state) == "failed", "the run says the truncate failed"
    planned = {d["backup_name"] for d in xcom(first, "plan")["deletions"] if d["backup_name"]}
    assert planned and not planned & {v.name for v in cluster.snapshots()}, "the deletions ran anyway"
    assert planned <= before
    second = cluster.run("retention", retries=0)
    assert str(second.state) == "success"
    done = cluster.live_log()
    until = int(xcom(first, "plan")["truncate_until"])
    assert done.truncated_until in (until, until - 1), "a new value (the failed one is never rerun)"


# -- 11. the base is checked in storage -----------------------------------------------------------------------
def test_retention_refuses_when_the_base_backupmeta_is_gone(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections)
    base = xcom(cluster.run("retention", run_conf={"dry_run": True}), "plan")["plan"]["base"]
    _s3(sandbox).delete_object(Bucket="my-bucket", Key=f"{base['prefix']}/backupmeta")
    before = {v.name for v in cluster.snapshots()}
    run = cluster.run("retention", retries=0)
    assert str(run.state) == "failed"
    assert {v.name for v in cluster.snapshots()} == before, "nothing was deleted"
    assert cluster.live_log().truncated_until is None


# -- 13. any failed snapshot run holds retention ---------------------------------------------------------------
def test_a_snapshot_run_failed_at_preflight_holds_retention_until_one_succeeds(
        sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections)
    cluster.patch_log({"logSubcommand": "log-pause"})
    cluster.wait_log(lambda v: v.phase == "Paused")
    assert str(cluster.run("snapshot", retries=0).state) == "failed"  # preflight: the log is paused
    assert "tidb-pitr-airflow/snapshot-failed" in cluster.live_log().annotations
    cluster.patch_log({"logSubcommand": "log-start"})
    resumed_at = dt_to_tso(datetime.now(UTC))
    cluster.wait_log(lambda v: v.phase == "Running" and (v.checkpoint_ts or 0) > resumed_at)
    before = {v.name for v in cluster.snapshots()}
    assert str(cluster.run("retention", retries=0).state) == "failed", "retention holds"
    assert {v.name for v in cluster.snapshots()} == before and cluster.live_log().truncated_until is None
    assert str(cluster.run("snapshot", retries=0).state) == "success"
    assert "tidb-pitr-airflow/snapshot-failed" not in cluster.live_log().annotations
    assert str(cluster.run("retention", retries=0).state) == "success"


# -- 14. transient API errors never fail a run ----------------------------------------------------------------
def test_a_whole_cycle_under_api_errors_makes_one_cr_per_run(sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=10)
    window = cluster.window()
    target = cluster.target()
    sandbox.set_faults(api_error_rate=0.2)
    runs = [cluster.run("log_guard"), cluster.run("snapshot"), cluster.run("retention"),
            cluster.run("restore", run_conf={"restore_tso": str((window.earliest_ts + window.latest_ts) // 2),
                                             "target_cluster": target, "target_namespace": cluster.namespace})]
    sandbox.set_faults(api_error_rate=0.0)
    assert [str(r.state) for r in runs] == ["success"] * 4
    made = [o["metadata"] for plural in ("backups", "restores") for o in cluster.hook.list(plural, cluster.namespace)]
    for run in runs:
        of_run = [m["name"] for m in made if (m.get("annotations") or {}).get("tidb-pitr-airflow/run-id", "").endswith(
            run.run_id)]
        assert len(of_run) <= 1, f"{run.dag_id} made {of_run}"
    assert sandbox.rows(cluster.namespace, target)["count"] > 0


# -- 15. names never collide ----------------------------------------------------------------------------------
def test_two_clusters_in_one_namespace_with_the_same_anchor(sandbox, connections, airflow_db, clean_faults):
    first = Cluster(sandbox, connections, seed_days=1)
    second = Cluster(sandbox, connections, seed_days=1, namespace=first.namespace)
    made = [xcom(c.run("snapshot"), "snapshot") for c in (first, second)]
    assert made[0]["name"] != made[1]["name"] and made[0]["prefix"] != made[1]["prefix"]
    assert made[0]["name"].startswith(first.name) and made[1]["name"].startswith(second.name)
    assert first.config.log_backup_name != second.config.log_backup_name
    for cluster in (first, second):
        for view in cluster.snapshots():
            assert view.labels["app.kubernetes.io/managed-by"] == "tidb-pitr-airflow"
            assert view.labels["tidb-pitr-airflow/cluster"] == cluster.name
            assert view.labels["tidb-pitr-airflow/flow"] == "snapshot"
