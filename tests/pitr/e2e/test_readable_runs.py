"""What a user reads on the grid after a retention run: the dry run says so on the run, each deletion task
is labelled with the snapshot it deletes, and times stand next to TSOs."""

from __future__ import annotations

import re
from typing import Any

from .clusters import Cluster
from .conftest import xcom

ISO_THEN_TSO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(TSO \d{18}\)")


def _note_and_labels(run: Any) -> tuple[str | None, list[str | None]]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        note = session.get(DagRun, run.id).note
        labels = [ti.rendered_map_index for ti in session.query(TaskInstance).filter(
            TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id,
            TaskInstance.task_id == "delete_snapshot")]
    return note, sorted(labels, key=str)


def test_a_retention_dry_run_says_so_and_deletions_are_labelled(sandbox, connections, airflow_db):
    cluster = Cluster(sandbox, connections)
    dry = cluster.run("retention", run_conf={"dry_run": True})
    assert str(dry.state) == "success"
    note, labels = _note_and_labels(dry)
    planned = sorted(d["backup_name"] for d in xcom(dry, "plan")["planned_deletions"] if d["backup_name"])
    assert planned and [label for label in labels if label] == []  # nothing mapped: nothing deleted
    assert note.startswith("Dry run: truncate the log until ") and ISO_THEN_TSO.search(note)
    assert "Dry run, nothing was created or changed: " in note
    assert all(name in note for name in planned), note

    run = cluster.run("retention", run_conf={"dry_run": False})  # dag.test() keeps the last run's params
    assert str(run.state) == "success"
    note, labels = _note_and_labels(run)
    assert labels == planned, "each mapped delete_snapshot shows the snapshot it deletes"
    # What the run changed, first: snapshots deleted, bytes freed, how far the log was truncated.
    count = f"{len(planned)} snapshot{'' if len(planned) == 1 else 's'}"
    headline, details = note.split("\n\n")
    assert re.fullmatch(rf"Retention: deleted {count} \(\d+(\.\d)? [KMGT]?B freed\), log truncated to "
                        r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\dZ", headline), headline
    assert all(name in details for name in planned) and "window now 20" in details, details
    # What the page shows, published again at the run's end: the new earliest time, and a next plan that no longer
    # deletes what this run deleted.
    status = xcom(run, "publish_status")
    assert status["window"]["earliest"]["ts"] == str(cluster.window().earliest_ts)
    assert not {d["name"] for d in status["retention_plan"]["delete"]} & set(planned)
    assert {m["name"] for m in status["timeline"]["marks"]} == {v.name for v in cluster.snapshots()}
