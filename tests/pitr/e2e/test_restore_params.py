"""Bad restore requests are refused before any Restore CR exists, with a message naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tidb_pitr.config import load_config
from tidb_pitr.flows.tasks.restore import RestoreRefused, plan_restore_for
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.tso import dt_to_tso

from .conftest import dag_id, load_dag


def _cluster_config(e2e_clusters: dict[str, Any], key: str) -> Any:
    import os

    config = load_config(os.environ["TIDB_PITR_CONFIG"])
    wanted = e2e_clusters[key]
    return next(c for c in config.clusters if c.name == wanted["name"])


def _restores(connections: dict[str, str], namespace: str) -> list[Any]:
    return TidbOperatorHook(connections["kubernetes"]).list("restores", namespace)


@pytest.mark.parametrize("params,field", [
    ({"restore_tso": "garbage"}, "restore_tso"),
    ({"restore_time": "2026-11-20 10:00:00"}, "restore_time"),
    ({"restore_time": "not a time at all"}, "restore_time"),
    ({"restore_time": None, "restore_tso": None}, "restore_time"),
    ({"restore_time": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, "restore_time"),
    ({"restore_time": (datetime.now(UTC) - timedelta(days=400)).isoformat()}, "window"),
    ({"target_cluster": "SAME"}, "target_cluster"),
    ({"target_cluster": "no-such-cluster"}, "target_cluster"),
    ({"target_cluster": "Bad_Name"}, "target_cluster"),
])
def test_refused_with_the_field_named(e2e_clusters, connections, params, field):
    cluster = _cluster_config(e2e_clusters, "v1s3")
    request = {"restore_time": (datetime.now(UTC) - timedelta(days=1)).isoformat(), "restore_tso": None,
               "target_cluster": "somewhere-else", "target_namespace": cluster.namespace, **params}
    if request["target_cluster"] == "SAME":
        request["target_cluster"] = cluster.tidb_cluster
    before = _restores(connections, cluster.namespace)
    with pytest.raises(RestoreRefused) as refused:
        plan_restore_for(cluster, request)
    assert field in str(refused.value), str(refused.value)
    assert _restores(connections, cluster.namespace) == before


def test_time_past_the_checkpoint_of_a_paused_log_is_refused(sandbox, e2e_clusters, connections):
    """Recent times wait for the checkpoint only while the log backup runs; paused, they are refused."""
    cluster = _cluster_config(e2e_clusters, "v2az")
    hook = TidbOperatorHook(connections["kubernetes"], api_group=cluster.api_group)
    log_name = cluster.log_backup_name
    hook.merge_patch("backups", log_name, cluster.namespace, {"spec": {"logSubcommand": "log-pause"}})
    from ..conftest import wait_until

    wait_until(lambda: hook.get("backups", log_name, cluster.namespace)["status"]["phase"] == "Paused")
    try:
        target = sandbox.create_cluster(cluster.namespace, f"{cluster.name}-t1", api_group=cluster.api_group)
        with pytest.raises(RestoreRefused) as refused:
            plan_restore_for(cluster, {"restore_tso": str(dt_to_tso(datetime.now(UTC))),
                                       "target_cluster": target["name"], "target_namespace": cluster.namespace})
        assert "after the log checkpoint" in str(refused.value) and "recoverable window" in str(refused.value)
    finally:
        hook.merge_patch("backups", log_name, cluster.namespace, {"spec": {"logSubcommand": "log-start"}})
        wait_until(lambda: hook.get("backups", log_name, cluster.namespace)["status"]["phase"] == "Running")


def test_a_refused_run_fails_before_any_cr(e2e_clusters, connections):
    cluster = e2e_clusters["v1s3"]
    before = _restores(connections, cluster["namespace"])
    run = load_dag(dag_id(cluster, "restore")).test(run_conf={
        "restore_tso": "123", "target_cluster": cluster["name"], "target_namespace": cluster["namespace"]})
    assert str(run.state) == "failed"
    assert _restores(connections, cluster["namespace"]) == before


def test_garbage_time_is_refused_at_plan_naming_the_field_before_any_cr(e2e_clusters, connections):
    """The form's schema takes any text for restore_time (a `date-time` format would answer a time without a zone
    with Airflow's raw schema dump), so `plan` reads it and refuses it, saying what to write, before any CR."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    cluster = e2e_clusters["v1s3"]
    before = _restores(connections, cluster["namespace"])
    run = load_dag(dag_id(cluster, "restore")).test(run_conf={
        "restore_time": "yesterday-ish", "target_cluster": "x", "target_namespace": "y"})
    assert str(run.state) == "failed"
    with create_session() as session:
        note = session.get(DagRun, run.id).note
    headline, details = note.split("\n\n")
    assert headline.startswith("Refused: restore_time: cannot read 'yesterday-ish'"), headline
    assert "write a time with a timezone such as 2026-11-21T05:30:00Z" in details, details
    assert _restores(connections, cluster["namespace"]) == before
