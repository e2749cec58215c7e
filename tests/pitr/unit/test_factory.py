"""The DAG file builds every cluster's DAGs for the dag-processor, and only the needed cluster's in a task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
S3 = {"provider": "s3", "bucket": "my-bucket", "region": "us-west-1", "conn_id": "tidb_backup_s3"}


def _config(tmp_path: Path, names: list[str]) -> Path:
    clusters = [{"name": n, "namespace": "test1", "api_group": "pingcap.com", "storage": {**S3, "root": n}}
                for n in names]
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": clusters}))
    return path


def _bag(monkeypatch: pytest.MonkeyPatch, config: Path, parsing_dag_id: str | None = None) -> Any:
    """The DAG file parsed with `config`, by the dag-processor (no parsing context) or by a task of a DAG."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID

    monkeypatch.setenv("TIDB_PITR_CONFIG", str(config))
    if parsing_dag_id is None:
        monkeypatch.delenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, raising=False)
    else:  # what Airflow's task runner sets while it parses the DAG file of the task it runs
        monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, parsing_dag_id)
    bag = DagBag(dag_folder=str(REPO / "dags"), safe_mode=False)
    assert not bag.import_errors
    return bag


def _dag_ids(monkeypatch: pytest.MonkeyPatch, config: Path, parsing_dag_id: str | None) -> set[str]:
    return set(_bag(monkeypatch, config, parsing_dag_id).dag_ids)


def test_a_task_parses_only_the_clusters_its_dag_can_belong_to(tmp_path, monkeypatch):
    config = _config(tmp_path, ["demo1", "demo1-002", "other"])
    everything = _dag_ids(monkeypatch, config, None)
    assert {d.split("_")[2] for d in everything} == {"demo1", "demo1-002", "other"} and len(everything) == 21

    def of(name: str) -> set[str]:
        return {d for d in everything if d.split("_")[2] == name}

    assert _dag_ids(monkeypatch, config, "tidb_test1_demo1_log_guard") == of("demo1")
    assert _dag_ids(monkeypatch, config, "tidb_test1_demo1-002_snapshot") == of("demo1-002")
    # An id of no configured cluster (a DAG of another file, a renamed cluster): everything, as before.
    assert _dag_ids(monkeypatch, config, "some_other_dag") == everything


def test_when_slots_run_short_the_guard_and_restores_go_before_backups(tmp_path, monkeypatch):
    """Airflow queues the ready tasks of highest weight first: every guard task before any snapshot or retention
    task, whatever their place in their DAG (the default rule ranked a snapshot's first task above the guard's)."""
    from types import SimpleNamespace

    from airflow.task.priority_strategy import validate_and_load_priority_weight_strategy

    bag = _bag(monkeypatch, _config(tmp_path, ["demo1"]))

    def weights(kind: str) -> set[int]:  # as the scheduler weighs a task instance: by the task's weight rule
        dag = bag.dags[f"tidb_test1_demo1_{kind}"]
        return {validate_and_load_priority_weight_strategy(t.weight_rule).get_weight(SimpleNamespace(task=t))
                for t in dag.tasks}

    guard, restore = weights("log_guard"), weights("restore")
    backups = weights("snapshot") | weights("retention")
    assert min(guard) > max(restore) and min(restore) > max(backups), (guard, restore, backups)


def test_the_restore_form_lets_a_time_without_a_timezone_reach_the_project_s_own_message():
    """Airflow checks a Param's JSON schema when the run is triggered: with `format: date-time` a time without a
    zone got its raw schema dump ("is not a 'date-time' ... Failed validating 'format'"). As a plain string it
    reaches `plan`, which refuses it saying what to add, with an example."""
    from airflow.sdk import ParamsDict
    from tidb_pitr.config import ClusterConfig
    from tidb_pitr.flows.restore import build
    from tidb_pitr.flows.tasks.restore import RestoreRefused, parse_target_time

    cluster = ClusterConfig.model_validate({
        "name": "demo1", "namespace": "test1", "api_group": "pingcap.com", "restore_targets": ["demo1-restore"],
        "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "conn_id": "s3"}})
    params: ParamsDict = build(cluster).params
    field = params.get_param("restore_time")
    assert "format" not in field.schema and "2026-11-21T05:30:00Z" in field.description
    typed = "2026-11-21 05:30:00"
    params["restore_time"] = typed
    assert params.validate()["restore_time"] == typed  # Airflow takes it: no schema dump
    with pytest.raises(RestoreRefused, match='^restore_time: "2026-11-21 05:30:00" has no timezone; write it as '
                                             "2026-11-21T05:30:00Z or"):
        parse_target_time({"restore_time": typed})
