"""A point-in-time restore of chosen tables (the restore form's `tables`) on the sandbox: shop.orders as it was at T,
restored next to a target's own crm.* and shop.customers, which stay as they were; and the refusals at plan, before
any Restore CR: a target that holds the table, rules that match nothing, a TiDB older than v8.5.5."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tidb_pitr.config.sections import RestoreTarget
from tidb_pitr.flows.tasks.restore import RestoreRefused, plan_restore_for

from ..conftest import unique
from .clusters import Cluster
from .conftest import xcom

OTHERS = ["crm.accounts", "crm.events", "shop.customers"]
BR_FILTER_RELEASE = "v8.5.5"


def _target(cluster: Cluster, *, tables: list[str] | None, version: str) -> str:
    """A restore target beside the source, reachable over SQL, running `version`, whose own workload wrote
    `tables` (None: all the source's) and then stopped, so that its data stays put."""
    name = unique("target")
    workload = {"inserts_per_s": 40, "updates_per_s": 5, "deletes_per_s": 0, "tables": tables}
    described = cluster.sandbox.create_cluster(cluster.namespace, name, workload=workload)
    cluster.targets.append(name)
    conn_id = Cluster.sql_connection(name, described["sql"])
    deadline = time.monotonic() + 30
    while cluster.sandbox.call("GET", f"/clusters/{cluster.namespace}/{name}")["rows"] < 20:
        assert time.monotonic() < deadline, "the target's workload wrote nothing"
        time.sleep(0.1)
    cluster.sandbox.stop_workload(cluster.namespace, name)
    cluster.hook.api.patch_namespaced_custom_object("pingcap.com", "v1alpha1", cluster.namespace, "tidbclusters",
                                                    name, {"spec": {"version": version}})
    cluster.reconfigure(cluster.config.model_copy(update={"restore_targets": [
        *cluster.config.restore_targets, RestoreTarget(name=name, sql_conn_id=conn_id)]}))
    return name


def _of(rows: dict[str, Any], table: str, *, inside: bool = True) -> dict[str, Any]:
    """The keys of `table` ("db.table": its definition and rows), or with `inside=False` every other key."""
    prefix = table.replace(".", "/")
    return {k: v for k, v in rows.items() if (k == prefix or k.startswith(prefix + "/")) == inside}


def test_one_table_restored_to_t_next_to_the_targets_own_tables(sandbox, connections, airflow_db):
    cluster = Cluster(sandbox, connections, seed_days=1, source_sql=True)
    target = _target(cluster, tables=OTHERS, version=BR_FILTER_RELEASE)
    before = sandbox.rows(cluster.namespace, target)
    tso = sandbox.tso() - (30_000 << 18)  # 30 s ago: inside the source's GC life time, for verify
    run = cluster.run("restore", run_conf={"restore_tso": str(tso), "tables": ["shop.orders"], "verify": True,
                                           "target_cluster": f"{cluster.namespace}/{target}"})
    assert str(run.state) == "success"
    plan = xcom(run, "plan")
    assert plan["tables"]["restored"] == ["shop.orders"] and plan["body"]["spec"]["tableFilter"] == ["shop.orders"]
    # shop.orders equals the source's at T (rows compared key by key); everything else is as it was.
    after = sandbox.rows(cluster.namespace, target)["rows"]
    source = sandbox.rows(cluster.namespace, cluster.name, tso)["rows"]
    assert {k: v for k, v in _of(after, "shop.orders").items() if k.count("/") == 2} == {
        k: v for k, v in _of(source, "shop.orders").items() if k.count("/") == 2}
    assert _of(after, "shop.orders", inside=False) == _of(before["rows"], "shop.orders", inside=False)
    # Verify compared exactly the restored table, by the ID-independent fingerprint (BR gave it a new ID).
    verified = xcom(run, "verify")
    assert verified["verdict"] == "passed" and verified["comparison"]["matched"] == ["shop.orders"]
    assert "row fingerprint" in verified["comparison"]["how"]
    report = xcom(run, "report")
    assert report["tables"] == ["shop.orders"] and report["verify"] == "passed"
    # The run's note, which the page shows under the form, names what was restored in a sentence.
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        headline = (session.get(DagRun, run.id).note or "").splitlines()[0]
    assert headline.startswith("Restored tables shop.orders to ") and headline.endswith(", verified"), headline
    assert f"into {cluster.namespace}/{target} in " in headline, headline


def test_refused_at_plan_with_the_reason_and_no_cr(sandbox, connections, airflow_db):
    cluster = Cluster(sandbox, connections, seed_days=1, source_sql=True)  # one source for the three cases
    for tables, version, rules, says in (
            (None, BR_FILTER_RELEASE, ["shop.orders"], "the target already holds shop.orders, which "
                                                       "['shop.orders'] selects"),
            (OTHERS, BR_FILTER_RELEASE, ["shop.order"], "tables ['shop.order'] matches no table of the source at "
                                                        "the restore time"),
            (OTHERS, "v8.1.0", ["shop.orders"], "runs TiDB v8.1.0: a point-in-time restore of chosen tables needs "
                                                "BR v8.5.5 or later")):
        target = _target(cluster, tables=tables, version=version)
        before = sandbox.rows(cluster.namespace, target)["digest"]
        with pytest.raises(RestoreRefused) as refused:
            plan_restore_for(cluster.config, {"restore_tso": str(sandbox.tso() - (30_000 << 18)), "tables": rules,
                                              "target_cluster": f"{cluster.namespace}/{target}"}, run_hash="t")
        assert says in str(refused.value) and str(refused.value).startswith("tables"), str(refused.value)
        assert cluster.restores() == [] and sandbox.rows(cluster.namespace, target)["digest"] == before


def test_a_drill_of_one_table_into_a_scratch_cluster_holding_other_data(sandbox, connections, airflow_db):
    namespace, scratch = unique("drill"), unique("scratch")
    workload = {"inserts_per_s": 40, "updates_per_s": 5, "deletes_per_s": 0, "tables": OTHERS}
    conn_id = Cluster.sql_connection(scratch, sandbox.create_cluster(namespace, scratch, workload=workload)["sql"])
    cluster = Cluster(sandbox, connections, seed_days=1, namespace=namespace, source_sql=True,
                      restore_targets=[{"name": scratch, "scratch": True, "sql_conn_id": conn_id}],
                      drill={"target": scratch, "restore_tables": ["shop.orders"]})
    cluster.targets.append(scratch)
    deadline = time.monotonic() + 30
    while sandbox.call("GET", f"/clusters/{namespace}/{scratch}")["rows"] < 20:
        assert time.monotonic() < deadline, "the scratch cluster's workload wrote nothing"
        time.sleep(0.1)
    sandbox.stop_workload(namespace, scratch)
    cluster.hook.api.patch_namespaced_custom_object("pingcap.com", "v1alpha1", namespace, "tidbclusters", scratch,
                                                    {"spec": {"version": BR_FILTER_RELEASE}})
    before = sandbox.rows(namespace, scratch)["digest"]
    run = cluster.run("drill")
    record = xcom(run, "record")
    assert str(run.state) == "success" and record["verdict"] == "passed", record
    assert record["comparison"]["matched"] == ["shop.orders"] and record["tables_compared"] == 1
    assert record["emptied"] == {"emptied": True, "dropped": ["shop.orders"]}
    [restore] = [r for r in cluster.restores() if r.cluster == scratch]
    assert restore.table_filter == ("shop.orders",)
    # The restored table is dropped again and the scratch cluster's own data is as it was (DROP TABLE leaves no key).
    assert sandbox.rows(namespace, scratch)["digest"] == before


def test_a_failed_filtered_restore_names_only_the_tables_it_left(sandbox, connections, airflow_db):
    cluster = Cluster(sandbox, connections, seed_days=1, source_sql=True)
    target = _target(cluster, tables=["crm.accounts", "crm.events"], version=BR_FILTER_RELEASE)
    sandbox.set_faults(fail_restore_after=0.5)  # BR fails after the first of the two shop tables
    try:
        run = cluster.run("restore", run_conf={"restore_tso": str(sandbox.tso() - (30_000 << 18)),
                                               "tables": ["shop.*"], "target_cluster": f"{cluster.namespace}/{target}"})
    finally:
        sandbox.set_faults(fail_restore_after=None)
    assert str(run.state) == "failed"
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        note = session.get(DagRun, run.id).note or ""
    # The target's own crm tables are not BR's leftovers: only the shop table it wrote is named.
    assert note.endswith("; target partly written: shop.customers; drop them before the next restore of these "
                         "tables"), note
