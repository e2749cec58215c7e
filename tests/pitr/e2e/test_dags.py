"""The DAGs end to end through `dag.test()` against the sandbox: v1 on S3 and v2 on Azure Blob."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tidb_pitr.cr.model import BackupView
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.planning import recoverable_window
from tidb_pitr.tso import dt_to_tso, tso_to_dt

from .conftest import dag_id, load_dag, xcom

ROOT = Path(__file__).resolve().parents[3]


def _views(connections: dict[str, str], cluster: dict[str, Any]) -> tuple[list[BackupView], list[BackupView]]:
    hook = TidbOperatorHook(connections["kubernetes"], api_group=cluster["group"])
    views = [BackupView.from_cr(o) for o in hook.list("backups", cluster["namespace"])]
    mine = [v for v in views if v.cluster == cluster["name"]]
    return [v for v in mine if v.mode == "snapshot"], [v for v in mine if v.mode == "log"]


def test_dag_folder_imports_cleanly(e2e_clusters):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    for cluster in e2e_clusters.values():
        kinds = ["snapshot", "log_guard", "retention", "restore", "rpo_alert", "check"]
        assert dag_id(cluster, "compaction") in bag.dag_ids if cluster["group"] == "pingcap.com" else (
            dag_id(cluster, "compaction") not in bag.dag_ids)
        for kind in kinds:
            assert dag_id(cluster, kind) in bag.dag_ids
    snapshot = bag.get_dag(dag_id(e2e_clusters["v1s3"], "snapshot"))
    assert snapshot.max_active_runs == 1 and "tidb" in snapshot.tags and snapshot.doc_md


@pytest.mark.parametrize("key", ["v1s3", "v2az"])
def test_snapshot_dag_completes_and_verifies_in_storage(e2e_clusters, connections, key):
    cluster = e2e_clusters[key]
    run = load_dag(dag_id(cluster, "snapshot")).test()
    assert str(run.state) == "success"
    made = xcom(run, "snapshot")
    stamp = made["name"].removeprefix(f"{cluster['name']}-snapshot-")
    assert len(stamp) == 14 and stamp.isdigit() and made["commit_ts"] > 0
    assert made["prefix"] == f"{cluster['name']}/snapshot-{stamp}"
    verified = xcom(run, "verify")
    assert verified["objects"] >= 2 and verified["total_bytes"] > 0
    published = xcom(run, "publish")
    assert published["commit_ts"] == str(made["commit_ts"])


def test_guard_starts_a_missing_log_backup_then_resumes_a_paused_one(e2e_clusters, connections):
    cluster = e2e_clusters["fresh"]
    guard = load_dag(dag_id(cluster, "log_guard"))
    assert _views(connections, cluster)[1] == []
    run = guard.test()
    assert str(run.state) == "success"
    logs = _views(connections, cluster)[1]
    assert [v.name for v in logs] == [f"{cluster['name']}-log-backup"] and logs[0].phase == "Running"
    hook = TidbOperatorHook(connections["kubernetes"])
    hook.merge_patch("backups", logs[0].name, cluster["namespace"], {"spec": {"logSubcommand": "log-pause"}})
    from ..conftest import wait_until

    wait_until(lambda: _views(connections, cluster)[1][0].phase == "Paused")
    run = guard.test()
    assert str(run.state) == "success"
    assert _views(connections, cluster)[1][0].phase == "Running"
    # Until the operator's tracker polls after the resume there may be no checkpoint yet: "starting", not an alert.
    rpo = xcom(run, "measure_rpo")
    assert rpo["level"] in ("ok", "warn") or (rpo["level"] == "starting" and rpo["lag_seconds"] is None)


@pytest.mark.parametrize("key", ["v1s3", "v2az"])
def test_retention_then_restore_at_the_edge_of_the_policy(sandbox, e2e_clusters, connections, key):
    cluster = e2e_clusters[key]
    snapshots_before, _ = _views(connections, cluster)
    run = load_dag(dag_id(cluster, "retention")).test()
    assert str(run.state) == "success"
    plan = xcom(run, "plan")
    planned = {d["backup_name"] for d in plan["planned_deletions"] if d["backup_name"]}
    assert planned, "40 days of history under a 30-day policy must expire something"
    snapshots_after, logs_after = _views(connections, cluster)
    gone = {v.name for v in snapshots_before} - {v.name for v in snapshots_after}
    assert gone == planned, "exactly the planned snapshots were deleted"
    log = logs_after[0]
    assert str(log.truncated_until) == plan["planned_truncate_until"], "the log was truncated to the plan's point"

    # Every time in the last 30 days stays restorable: per the CRs ...
    window = recoverable_window(snapshots_after, logs_after)
    policy_start = dt_to_tso(min(datetime.now(UTC), tso_to_dt(log.checkpoint_ts)) - timedelta(days=30))
    assert window.covers(policy_start, log.checkpoint_ts)
    # ... and for real: restore to a time just after the policy start, from what is left in storage.
    target_ts = policy_start + (random.Random(key).randint(1, 3600) * 1000 << 18)
    _restore_and_compare(sandbox, connections, cluster, target_ts)


def _restore_and_compare(sandbox: Any, connections: dict[str, str], cluster: dict[str, Any], target_ts: int) -> None:
    target = f"{cluster['name']}-r{random.randint(0, 10**6)}"
    sandbox.create_cluster(cluster["namespace"], target, api_group=cluster["group"])
    run = load_dag(dag_id(cluster, "restore")).test(run_conf={
        "restore_tso": str(target_ts), "target_cluster": target, "target_namespace": cluster["namespace"]})
    assert str(run.state) == "success"
    report = xcom(run, "report")
    assert report["restore_ts"] == str(target_ts)
    source = sandbox.rows(cluster["namespace"], cluster["name"], target_ts)
    restored = sandbox.rows(cluster["namespace"], target)
    assert restored["count"] == source["count"] and restored["digest"] == source["digest"]


@pytest.mark.parametrize("key", ["v1s3", "v2az"])
def test_restore_to_a_random_time_in_the_window(sandbox, e2e_clusters, connections, key):
    cluster = e2e_clusters[key]
    snapshots, logs = _views(connections, cluster)
    window = recoverable_window(snapshots, logs)
    target_ts = random.Random(key + "T").randint(window.earliest_ts, window.latest_ts)
    _restore_and_compare(sandbox, connections, cluster, target_ts)


def test_compaction_covers_the_log_up_to_the_checkpoint(e2e_clusters, connections):
    cluster = e2e_clusters["v1s3"]
    run = load_dag(dag_id(cluster, "compaction")).test()
    assert str(run.state) == "success"
    compacted = xcom(run, "compact")
    _, logs = _views(connections, cluster)
    assert compacted["end_ts"] <= logs[0].checkpoint_ts
