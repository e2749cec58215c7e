"""A restore started from the form works the first time, and when it cannot, says why where the user looks.

Through `dag.test()` on the sandbox, each test with a cluster of its own (see clusters.Cluster); the targets'
SQL is the sandbox's MySQL-protocol endpoint, reached through Airflow's MySQL provider.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tidb_pitr.flows.restore import CHOOSE_TARGET
from tidb_pitr.planning.notes import HEADLINE

from .clusters import Cluster
from .conftest import xcom


def _note(run: Any) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note


def _with_sql_target(sandbox: Any, connections: dict[str, str]) -> tuple[Cluster, str]:
    """A 1-day cluster and an empty target of its own that the plan checks over SQL (its `sql_conn_id`)."""
    probe = Cluster(sandbox, connections, seed_days=1)
    target = probe.target(sql=True)
    return Cluster(sandbox, connections, seed_days=1, namespace=probe.namespace,
                   restore_targets=[{"name": target, "sql_conn_id": Cluster.sql_conn(target)}]), target


def _task_state(run: Any, task_id: str) -> str:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return str(session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id,
                                                         task_id=task_id).one().state)


def _middle(cluster: Cluster) -> str:
    window = cluster.window()
    return str((window.earliest_ts + window.latest_ts) // 2)


@pytest.fixture
def clean_faults(sandbox: Any) -> Any:
    sandbox.clear_faults()
    yield
    sandbox.clear_faults()


def test_an_empty_target_is_checked_over_sql_restored_and_then_refused_as_full(
        sandbox, connections, airflow_db, clean_faults):
    cluster, target = _with_sql_target(sandbox, connections)
    conf = {"restore_tso": _middle(cluster), "target_cluster": f"{cluster.namespace}/{target}"}
    run = cluster.run("restore", run_conf=conf)
    assert str(run.state) == "success"
    assert xcom(run, "plan")["target_check"] == (f"target {cluster.namespace}/{target} checked over SQL "
                                                 f"({Cluster.sql_conn(target)}): no user databases")
    headline, details = _note(run).split("\n\n")  # outcome first, then the whole report
    assert headline.startswith("Restored to 20") and f"into {cluster.namespace}/{target} in " in headline
    assert headline.endswith(", not verified: not asked"), headline
    assert details.startswith(f"Restored {cluster.namespace}/{cluster.name} to ")
    assert _task_state(run, "verify") == "skipped"  # not asked: never a green verify
    # The page learns at once that the target is no longer empty: the restore published it again at its end.
    (shown,) = xcom(run, "publish_status")["targets"]
    assert (shown["value"], shown["state"], shown["detail"]) == (f"{cluster.namespace}/{target}", "holds",
                                                                 "holds 2 databases")
    # The demo's story: the target now holds the restored data, so the next restore into it is refused.
    before = [r.name for r in cluster.restores()]
    run = cluster.run("restore", run_conf=conf)
    assert str(run.state) == "failed" and xcom(run, "plan") is None
    assert [r.name for r in cluster.restores()] == before
    headline, details = _note(run).split("\n\n")
    # The reason's first words and the window's bounds in the line the run's header shows; the rest below.
    assert headline.startswith(f"Refused: target_cluster {cluster.namespace}/{target} is not empty"), headline
    assert re.search(r" \| window 20\d\d-\d\d-\d\d \d\d:\d\dZ to 20\d\d-\d\d-\d\d \d\d:\d\dZ$", headline), headline
    assert len(headline) <= HEADLINE
    assert details.startswith(f"target_cluster {cluster.namespace}/{target} is not empty: it holds "
                              "crm.accounts, crm.events, shop.customers, shop.orders;"), details
    assert "ErrDatabasesAlreadyExisted" in details and "the recoverable window is 20" in details


def test_a_target_without_sql_conn_id_is_planned_with_a_warning(sandbox, connections, airflow_db):
    probe = Cluster(sandbox, connections, seed_days=1)
    target = probe.target()
    cluster = Cluster(sandbox, connections, seed_days=1, namespace=probe.namespace, restore_targets=[target])
    run = cluster.run("restore", run_conf={"restore_tso": _middle(cluster),
                                           "target_cluster": f"{cluster.namespace}/{target}", "dry_run": True})
    assert str(run.state) == "success"
    planned = xcom(run, "plan")
    assert planned["target_check"].startswith(f"WARNING: target {cluster.namespace}/{target} has no sql_conn_id")
    assert "DRY RUN: nothing will be created" in planned["notes"]
    assert _note(run).startswith("Dry run: restore ")
    assert cluster.restores() == []


def test_a_target_not_in_the_list_is_refused_by_the_form(sandbox, connections, airflow_db):
    cluster = Cluster(sandbox, connections, seed_days=1)
    allowed = cluster.target()
    cluster = Cluster(sandbox, connections, seed_days=1, namespace=cluster.namespace, restore_targets=[allowed])
    params = cluster.dags["restore"].params
    # The listed target, and no choice made for the user (the form's default: plan refuses a run left so).
    assert params.get_param("target_cluster").schema["enum"] == [None, f"{cluster.namespace}/{allowed}"]
    assert params.get_param("target_cluster").schema["values_display"] == {
        None: CHOOSE_TARGET, f"{cluster.namespace}/{allowed}": f"{allowed} (namespace {cluster.namespace})"}
    before = cluster.restores()
    with pytest.raises(Exception, match="target_cluster|enum|is not one of"):
        cluster.run("restore", run_conf={"restore_tso": _middle(cluster),
                                         "target_cluster": f"{cluster.namespace}/elsewhere"})
    assert cluster.restores() == before


def test_a_second_restore_to_the_same_time_lists_the_failed_one_and_succeeds(
        sandbox, connections, airflow_db, clean_faults):
    cluster = Cluster(sandbox, connections, seed_days=1)
    target = cluster.target(sql=True)
    conf = {"restore_tso": _middle(cluster), "target_cluster": target}
    sandbox.set_faults(fail_next_restore="injected: TiKV is down")
    failed = cluster.run("restore", run_conf=conf)
    assert str(failed.state) == "failed"
    note = _note(failed)
    assert note.startswith("Failed: Restore ") and "injected: TiKV is down" in note and "Failed (" in note, note
    second = cluster.run("restore", run_conf=conf)
    assert str(second.state) == "success"
    earlier = xcom(second, "plan")["earlier_restores"]
    assert [(e["phase"], "TiKV is down" in e["message"]) for e in earlier] == [("Failed", True)]
    assert any(n.startswith(f"earlier restores into {cluster.namespace}/{target}: ") and "Failed" in n
               for n in xcom(second, "plan")["notes"])


def test_the_estimate_is_within_2x_of_the_restore_at_the_simulated_rates(sandbox, connections, airflow_db):
    # Two hours after the first snapshot: two of the seed's hourly log flushes to replay at any time of day (the
    # window's middle of a 1-day seed, at 00:35 UTC, fell before the first flush after midnight's snapshot: no log).
    cluster = Cluster(sandbox, connections, seed_days=3)
    target = cluster.target()
    window = cluster.window()
    restore_ts = window.earliest_ts + ((2 * 3600 * 1000) << 18)
    assert restore_ts < window.latest_ts, window
    conf = {"restore_tso": str(restore_ts), "target_cluster": target}
    volume = xcom(cluster.run("restore", run_conf={**conf, "dry_run": True}), "plan")["plan"]["estimate"]
    assert volume["complete"] and volume["snapshot_bytes"] > 0 and volume["log_bytes"] > 0, volume
    # Rates at which the snapshot takes about 8 s and the log about 12 s on the target's TiKV stores. Not
    # shorter: the sandbox's own reading of the backup from moto (not part of what it models) runs inside that
    # time, and under CI's load it took 12 s, which made a 5 s restore 2.4x its estimate.
    tikv = cluster.config.tikv_count
    snapshot_rate, log_rate = volume["snapshot_bytes"] / (8 * tikv), volume["log_bytes"] / (12 * tikv)
    sandbox.set_config(restore_snapshot_rate=snapshot_rate, restore_log_rate=log_rate)
    try:
        # The deployment told the truth about its speed: the plan uses the same rates (GB/h per TiKV).
        cluster.reconfigure(cluster.config.model_copy(update={"restore_rates": type(cluster.config.restore_rates)(
            snapshot_gb_per_hour=snapshot_rate * 3600 / 1e9, log_gb_per_hour=log_rate * 3600 / 1e9)}))
        run = cluster.run("restore", run_conf=conf)
    finally:
        sandbox.set_config(restore_snapshot_rate=0.0, restore_log_rate=0.0)
    assert str(run.state) == "success"
    report = xcom(run, "report")
    assert report["estimate_complete"] and 19.0 < report["estimated_seconds"] < 21.0, report
    assert 0.5 <= report["actual_to_estimate"] <= 2.0, report
    assert f"actual/estimate {report['actual_to_estimate']:.2f}" in _note(run)


def test_a_restore_that_fails_part_way_says_what_it_left_and_the_next_plan_names_it(
        sandbox, connections, airflow_db, clean_faults):
    cluster, target = _with_sql_target(sandbox, connections)
    conf = {"restore_tso": _middle(cluster), "target_cluster": f"{cluster.namespace}/{target}"}
    sandbox.set_faults(fail_restore_after=0.5)  # BR fails after half the tables are in (sandbox FIDELITY)
    failed = cluster.run("restore", run_conf=conf)
    assert str(failed.state) == "failed"
    note = _note(failed)
    assert "[BR:KV:ErrKVIngestFailed]" in note, note
    assert note.endswith("; target partly written: 2 tables; empty it before the next restore"), note
    (restore,) = [r.name for r in cluster.restores()]
    # The next plan refuses that target, naming the failed Restore whose data it holds; no new CR.
    again = cluster.run("restore", run_conf=conf)
    assert str(again.state) == "failed" and [r.name for r in cluster.restores()] == [restore]
    headline, details = _note(again).split("\n\n")  # the reason first, cut to what the run's header shows
    assert headline.startswith(f"Refused: target_cluster {cluster.namespace}/{target} is not empty"), headline
    assert details.startswith(f"target_cluster {cluster.namespace}/{target} is not empty: it holds crm.accounts, "
                              f"crm.events; it holds a failed restore's data: Restore {cluster.namespace}/{restore} "
                              "Failed: "), details


def test_a_target_that_runs_its_own_log_backup_is_refused_at_plan(sandbox, connections, airflow_db):
    from tidb_pitr.cr.bodies import log_backup

    cluster, target = _with_sql_target(sandbox, connections)
    theirs = log_backup(cluster.config.group(), name=f"{target}-log", namespace=cluster.namespace,
                        cluster=target, cluster_namespace=cluster.namespace,
                        storage=cluster.config.storage.cr_block(), prefix=f"{target}/log")
    cluster.hook.create_or_adopt("backups", theirs, cluster.namespace, {})
    run = cluster.run("restore", run_conf={"restore_tso": _middle(cluster),
                                           "target_cluster": f"{cluster.namespace}/{target}"})
    assert str(run.state) == "failed" and xcom(run, "plan") is None
    headline, details = _note(run).split("\n\n")
    assert headline.startswith(f"Refused: target_cluster {cluster.namespace}/{target} runs its own log"), headline
    assert details.startswith(f"target_cluster {cluster.namespace}/{target} runs its own log backup: Backup "
                              f"{cluster.namespace}/{target}-log"), details
    assert cluster.restores() == []
