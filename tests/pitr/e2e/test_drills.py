"""Restore drills on the sandbox: a drill proves table by table that a restore equals the source at T, says so
honestly when it cannot, fails naming the table when it differs, and touches nothing but its scratch target.

Each test has clusters of its own (clusters.Cluster); both sides are read over the sandbox's MySQL-protocol
endpoints through Airflow's MySQL provider; the notifier is the HTTP provider's, posting to a local server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tidb_pitr.config.sections import RestoreTarget
from tidb_pitr.planning.notes import HEADLINE
from tidb_sandbox.client import FAST_SETTINGS

from ..conftest import export_connections, unique
from .clusters import Cluster
from .conftest import datagrams, xcom

USER_TABLES = ["crm.accounts", "crm.events", "shop.customers", "shop.orders"]


def _note(run: Any) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note or ""


def _task_states(run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == run.dag_id,
                                                 TaskInstance.run_id == run.run_id)
        return {ti.task_id: str(ti.state) for ti in tis}


def _drill_events(cluster: Cluster) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    uri = f"tidb://{cluster.namespace}/{cluster.name}/drills"
    with create_session() as session:
        events = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetModel.uri == uri).order_by(AssetEvent.id)
        return [dict(e.extra or {}) for e in events]


NOTIFIER = {"class": "airflow.providers.http.notifications.HttpNotifier",
            "args": {"http_conn_id": "drill_alerts", "endpoint": "/drill",
                     "json": {"text": "{{ tidb_pitr.summary }}", "cluster": "{{ tidb_pitr.cluster }}",
                              "event": "{{ tidb_pitr.event }}"}}}


def drill_cluster(sandbox: Any, connections: dict[str, str], *, notifiers: list[Any] | None = None,
                  **drill: Any) -> tuple[Cluster, str]:
    """A seeded source with SQL, an empty scratch cluster beside it, and a drill between them."""
    namespace, scratch = unique("drill"), unique("scratch")
    described = sandbox.create_cluster(namespace, scratch)
    conn_id = Cluster.sql_connection(scratch, described["sql"])
    cluster = Cluster(sandbox, connections, seed_days=1, namespace=namespace, source_sql=True,
                      restore_targets=[{"name": scratch, "scratch": True, "sql_conn_id": conn_id}],
                      drill={"target": scratch, **drill}, notifiers=notifiers or [])
    return cluster, scratch


def _user_objects(scratch: str) -> list[str]:
    from tidb_pitr.hooks.sql import target_user_objects

    return target_user_objects(Cluster.sql_conn(scratch))


@pytest.fixture
def clean_sandbox(sandbox: Any) -> Iterator[None]:
    sandbox.clear_faults()
    yield
    sandbox.clear_faults()


@pytest.fixture(scope="module")
def short_gc_sandbox(tmp_path_factory: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    """A sandbox of its own, for the module's tests that want it, whose TiDBs keep 5 s of history. Not the
    session's: as in TiDB, a GC safe point never moves back, so a short GC life time would leave every later
    test's old reads refused."""
    from tidb_sandbox.client import running_sandbox

    with running_sandbox(tmp_path_factory.mktemp("short-gc") / "sandbox", settings={"gc_life_time": 5}) as own:
        yield own, export_connections(own, "short_gc", wasb=False)


def test_a_recent_drill_compares_every_table_and_leaves_the_scratch_cluster_empty(
        sandbox, connections, airflow_db, clean_sandbox, statsd):
    cluster, scratch = drill_cluster(sandbox, connections)
    run = cluster.run("drill")
    assert str(run.state) == "success", _task_states(run)
    record = xcom(run, "record")
    assert record["verdict"] == "passed" and record["mode"] == "recent", record
    assert record["tables"] == USER_TABLES and record["comparison"]["matched"] == USER_TABLES
    assert record["tables_compared"] == 4 and record["mismatches"] == "" and record["not_verified"] == []
    assert record["rto_seconds"] > 0 and record["estimated_seconds"] > 0
    assert record["base_snapshot"] in {s.name for s in cluster.snapshots()}
    # The restore point is the one the source was read at, and the restore really went there.
    [restore] = [r for r in cluster.restores() if r.cluster == scratch]
    assert restore.phase == "Complete" and restore.pitr_restored_ts == record["restore_ts"]
    # The verdict first, then the point (UTC: the test clusters' timezone) and the RTO; the summary below.
    headline, details = _note(run).split("\n\n")
    assert headline.startswith(f"Drill passed: {cluster.namespace}/{cluster.name} to 20") and ", RTO " in headline
    assert details.startswith(f"Drill passed: {cluster.namespace}/{cluster.name} at ")
    # Emptied afterwards: no user database over SQL, no row in the cluster.
    assert record["emptied"] == {"emptied": True, "dropped": ["crm", "shop"]}
    assert _user_objects(scratch) == []
    assert sandbox.rows(cluster.namespace, scratch)["count"] == 0
    [event] = _drill_events(cluster)
    assert event["verdict"] == "passed" and event["tables_compared"] == 4 and event["restore_ts"] == record[
        "restore_ts"]
    gauges = [g for g in datagrams(statsd) if g.startswith("airflow.tidb_pitr.drill_rto_seconds:")]
    assert gauges and gauges[-1].endswith("|g") and float(gauges[-1].split(":")[1].split("|")[0]) == pytest.approx(
        record["rto_seconds"]), gauges
    assert record["compared_how"] == "4 by row fingerprint and ADMIN CHECKSUM (same table ID)", record
    assert "(4 by row fingerprint and ADMIN CHECKSUM (same table ID))" in record["summary"]
    # The scratch cluster is the drill's: a user's restore into it is refused at plan, before any CR.
    user = cluster.run("restore", run_conf={"restore_tso": record["restore_ts"], "dry_run": True,
                                            "target_cluster": f"{cluster.namespace}/{scratch}"})
    headline, details = _note(user).split("\n\n")
    assert str(user.state) == "failed" and headline.startswith(
        f"Refused: target_cluster {cluster.namespace}/{scratch} is a scratch"), headline
    assert details.startswith(f"target_cluster {cluster.namespace}/{scratch} is a scratch cluster: drills only")

    # The next drill finds the scratch cluster empty, but it has allocated table IDs past the source's: BR gives
    # every table a new one, crc64 cannot be compared, and the row fingerprint still sees one value changed
    # by one (customer_id + 1: same width, so Total_kvs and Total_bytes stay equal).
    sandbox.set_faults(corrupt_restore="shop.orders")
    second = cluster.run("drill")
    assert str(second.state) == "failed", _task_states(second)
    again = xcom(second, "record")
    assert again["verdict"] == "failed" and again["compared_how"] == "4 by row fingerprint", again
    assert again["mismatches"].startswith("shop.orders: row fingerprint "), again["mismatches"]
    assert "Checksum_crc64_xor" not in again["mismatches"], "not comparable under new IDs"
    assert again["comparison"]["matched"] == ["crm.accounts", "crm.events", "shop.customers"]
    assert "(compared: 4 by row fingerprint)" in _note(second)


def test_a_corrupted_row_fails_the_drill_naming_the_table_and_calls_the_notifier(
        sandbox, connections, airflow_db, clean_sandbox, webhook):
    cluster, scratch = drill_cluster(sandbox, connections, notifiers=[NOTIFIER])
    sandbox.set_faults(corrupt_restore="shop.orders")
    run = cluster.run("drill")
    assert str(run.state) == "failed"
    states = _task_states(run)
    assert states["restore"] == "success" and states["verify"] == "failed" and states["verdict"] == "failed"
    record = xcom(run, "record")
    assert record["verdict"] == "failed"
    # The first restore into the scratch cluster keeps the IDs: both methods see the changed value.
    assert record["mismatches"].startswith("shop.orders: row fingerprint "), record["mismatches"]
    assert ", Checksum_crc64_xor " in record["mismatches"]
    assert "crm." not in record["mismatches"] and "shop.customers" not in record["mismatches"]
    note = _note(run)
    headline = note.split("\n\n")[0]  # what the run's header shows: the differing table first
    assert headline.startswith("Drill FAILED: shop.orders: row fingerprint") and len(headline) <= HEADLINE, note
    [posted] = webhook
    assert posted["path"] == "/drill" and posted["json"]["event"] == "drill_failed"
    assert posted["json"]["cluster"] == f"{cluster.namespace}/{cluster.name}"
    assert "shop.orders" in posted["json"]["text"]
    # A failed drill still empties what it restored.
    assert _user_objects(scratch) == []


def test_a_random_drill_older_than_the_gc_safe_point_is_reported_not_verified(
        short_gc_sandbox, airflow_db, webhook):
    # The source keeps 5 s of history: no time of its day-long window can be read at for a comparison.
    cluster, scratch = drill_cluster(*short_gc_sandbox, mode="random", notifiers=[NOTIFIER])
    run = cluster.run("drill")
    assert str(run.state) == "success", _task_states(run)
    record = xcom(run, "record")
    assert record["verdict"] == "not verified" and record["mode"] == "random"
    assert record["not_verified"] == USER_TABLES and record["tables_compared"] == 0
    assert "GC safe point" in record["why_not_verified"]
    assert _note(run).startswith("Drill restored but NOT VERIFIED: ")
    assert "will be reported as not verified" in xcom(run, "plan")["notes"][0]
    assert webhook == []  # not a failure: nothing to alert on, and never reported as passed
    assert _user_objects(scratch) == []


def test_a_drill_whose_comparison_would_outlive_the_gc_is_refused_at_plan_with_the_numbers(
        sandbox, connections, airflow_db, clean_sandbox):
    from tidb_pitr.hooks.sql import table_sizes

    # The source's tables scan at 2 B/s (the drill is told so): reading its day of data twice takes far longer than
    # the 10 min of history its GC keeps.
    cluster, scratch = drill_cluster(sandbox, connections, source_scan_rate=2)
    size = sum(table_sizes(Cluster.sql_conn(cluster.name), ["*.*"]).values())
    assert size > 2 * 600, size  # more than 10 min of reading: the plan must refuse
    sandbox.set_config(scan_rate=2)
    try:
        run = cluster.run("drill")
    finally:
        sandbox.set_config(scan_rate=FAST_SETTINGS["scan_rate"])
    assert str(run.state) == "failed" and xcom(run, "plan") is None
    note = _note(run)
    assert note.startswith("Drill refused: no drill time for mode 'recent': the comparison reads "), note
    assert " in 4 tables twice of the source at 2 B/s: about " in note and "plus 2m headroom" in note
    # T is the margin (1 min) and the checkpoint's lag before now: about 9 of the 10 min are left.
    assert re.search(r"readable for only (8m5\ds|9m) ", note) and "tidb_gc_life_time 10m" in note
    assert "Raise tidb_gc_life_time to at least " in note
    # Refused before any restore: no Restore CR for the scratch cluster, nothing written there.
    assert [r for r in cluster.restores() if r.cluster == scratch] == []
    assert sandbox.rows(cluster.namespace, scratch)["count"] == 0


def test_a_lagging_log_backup_that_holds_the_gc_is_named_instead_of_the_gc_life_time(short_gc_sandbox, airflow_db):
    own, connections = short_gc_sandbox
    cluster, scratch = drill_cluster(own, connections)
    # A long-open transaction pins the log checkpoint; its service safe point holds the GC there, past the 5 s
    # of history: every time a drill could restore to is below the safe point, whatever the life time.
    own.set_faults(pin_checkpoint=f"{cluster.namespace}/{cluster.name}")
    try:
        own.let_pass(8)
        run = cluster.run("drill")
    finally:
        own.set_faults(pin_checkpoint=None)
    assert str(run.state) == "failed" and xcom(run, "plan") is None
    note = _note(run)
    assert note.startswith("Drill refused: no drill time for mode 'recent': the comparison reads "), note
    assert "The log backup holds the GC safe point at its checkpoint" in note
    assert "raising tidb_gc_life_time would not help" in note and "Raise tidb_gc_life_time" not in note
    assert [r for r in cluster.restores() if r.cluster == scratch] == []


def test_a_drill_never_empties_what_it_did_not_restore(sandbox, connections, airflow_db, clean_sandbox):
    cluster, scratch = drill_cluster(sandbox, connections)
    keep = cluster.target(sql=True)
    # A DBA restored into the cluster to look at something while it was an ordinary target, before it became the
    # drill's scratch cluster (a user restore into a scratch cluster is refused at plan): the drill must refuse,
    # and drop nothing.
    as_drill = cluster.config
    cluster.reconfigure(as_drill.model_copy(update={"drill": None, "restore_targets": [
        t.model_copy(update={"scratch": False}) for t in as_drill.restore_targets]}))
    middle = (cluster.window().earliest_ts + cluster.window().latest_ts) // 2
    assert str(cluster.run("restore", run_conf={"restore_tso": str(middle),
                                                "target_cluster": f"{cluster.namespace}/{scratch}"}).state) == "success"
    cluster.reconfigure(as_drill)
    before = sandbox.rows(cluster.namespace, scratch)["digest"]
    run = cluster.run("drill")
    assert str(run.state) == "failed" and xcom(run, "plan") is None
    headline, details = _note(run).split("\n\n")
    # Its reason's first words (the test's names are long: real ones leave room for "not empty: it holds ...").
    assert headline.startswith(f"Drill refused: target_cluster {cluster.namespace}/{scratch} is not"), headline
    assert " | window 20" in headline and len(headline) <= HEADLINE, headline  # the window's bounds, whole
    assert details.startswith(f"target_cluster {cluster.namespace}/{scratch} is not empty: it holds crm.accounts")
    assert xcom(run, "empty_target") == {"emptied": False,
                                         "why": "the drill did not plan a restore: the target was not touched"}
    assert sandbox.rows(cluster.namespace, scratch)["digest"] == before
    # Only scratch targets can be chosen: the form refuses another cluster before anything runs.
    restores = len(cluster.restores())
    with pytest.raises(Exception, match="target_cluster|enum|is not one of"):
        cluster.run("drill", run_conf={"target_cluster": f"{cluster.namespace}/{keep}"})
    assert len(cluster.restores()) == restores


def test_a_restore_with_verify_compares_every_table(sandbox, connections, airflow_db, clean_sandbox):
    cluster, _ = drill_cluster(sandbox, connections)
    target = cluster.target(sql=True)  # an ordinary target with SQL: a user restore may not go to the scratch one
    cluster.reconfigure(cluster.config.model_copy(update={"restore_targets": [
        *cluster.config.restore_targets, RestoreTarget(name=target, sql_conn_id=Cluster.sql_conn(target))]}))
    tso = str(sandbox.tso() - (30_000 << 18))  # 30 s ago: inside the source's GC life time
    run = cluster.run("restore", run_conf={"restore_tso": tso, "target_cluster": f"{cluster.namespace}/{target}",
                                           "verify": True})
    assert str(run.state) == "success", _task_states(run)
    assert xcom(run, "verify")["verdict"] == "passed"
    assert xcom(run, "report")["verify"] == "passed"
    assert "; verified: 4 tables equal to the source" in _note(run)
