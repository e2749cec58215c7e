"""What the guard publishes for the TiDB PITR page, and the page's API serving it from Airflow's metadata DB.

The guard runs through `dag.test()` on a sandbox cluster of its own; the API is Airflow's own FastAPI app
(`create_app`, with this project's plugin mounted at /tidb-pitr) behind Airflow's auth.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from .clusters import Cluster
from .conftest import xcom


@pytest.fixture
def client_for(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A TestClient on Airflow's API app, reading a clusters.yaml with `cluster` in it; token=True logs in."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    def make(cluster: Cluster, token: bool) -> TestClient:
        path = tmp_path / "clusters.yaml"
        path.write_text(yaml.safe_dump({"clusters": [cluster.config.model_dump(mode="json", exclude_unset=True)]}))
        monkeypatch.setenv("TIDB_PITR_CONFIG", str(path))
        app = create_app()
        headers = {}
        if token:
            jwt = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
            headers["Authorization"] = f"Bearer {jwt}"
        return TestClient(app, headers=headers)

    return make


def _note(run: Any) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note or ""


def _gaps(status: dict[str, Any]) -> list[dict[str, Any]]:
    return status["timeline"]["gaps"]


def test_the_guard_publishes_the_status_and_the_page_reads_it(sandbox, connections, airflow_db,
                                                              client_for):
    cluster = Cluster(sandbox, connections, seed_days=5, restore_targets=["tc-elsewhere"])
    run = cluster.run("log_guard")
    assert str(run.state) == "success"
    status = xcom(run, "publish_status")
    assert status["cluster"] == f"{cluster.namespace}/{cluster.name}"
    window = status["window"]
    published = xcom(run, "publish_window")  # the same window, a moment later (the checkpoint moves)
    assert (window["earliest"], window["base_snapshots"]) == (published["earliest"], published["base_snapshots"])
    assert isinstance(window["earliest"]["ts"], str) and window["latest"]["time"].endswith("Z")
    marks = {m["name"]: m for m in status["timeline"]["marks"]}
    assert {v.name for v in cluster.snapshots()} == set(marks) and all(m["state"] == "Complete" for m in marks.values())
    assert window["earliest"]["ts"] in {m["ts"] for m in marks.values()}
    assert status["rpo"]["level"] in ("ok", "starting") and status["rpo"]["log_backup"] == cluster.live_log().name
    assert status["timeline"]["truncation"]["log"] == cluster.live_log().name
    assert status["last_snapshot"]["state"] == "Complete" and status["retention_plan"]["dry_run"]
    assert _gaps(status) == [] and "password" not in json.dumps(status).lower()

    refused = client_for(cluster, token=False).get("/tidb-pitr/api/clusters")
    assert refused.status_code in (401, 403), refused.text
    for code in ("tidb_pitr.js", "tidb_pitr_helpers.js"):  # the bundle and the helpers it imports: same auth
        assert client_for(cluster, token=False).get(f"/tidb-pitr/static/{code}").status_code in (401, 403)
    client = client_for(cluster, token=True)
    answer = client.get("/tidb-pitr/api/clusters")
    assert answer.status_code == 200, answer.text
    (entry,) = answer.json()["clusters"]
    assert entry["id"] == f"{cluster.namespace}/{cluster.name}" and entry["status"]["window"] == window
    assert entry["published"]["run_id"] == run.run_id and entry["age_seconds"] >= 0
    assert entry["dag_ids"]["restore"] == cluster.config.dag_id("restore")
    assert entry["restore_targets"] == [{"value": f"{cluster.namespace}/tc-elsewhere",
                                         "label": cluster.config.target_choices()[f"{cluster.namespace}/tc-elsewhere"],
                                         "verify": False, "scratch": False, "state": "unknown",
                                         "detail": "no sql_conn_id: not checked (BR checks it after the CR exists)"}]
    assert entry["preselected_target"] is None  # not known to be empty: the user chooses
    assert entry["last_restore"] is None and entry["last_drill"] is None and entry["last_attempts"] == []
    # The guard's run says the RPO level and lag first, then the window (UTC: the cluster's timezone).
    assert re.fullmatch(r"RPO (ok|starting), (lag [\w.]+|no checkpoint yet) \| window 20\S+ \S+Z to 20\S+ \S+Z",
                        _note(run).split("\n\n")[0]), _note(run)

    # A dry run and a refused run are attempts, never the last restore (read from Airflow's own tables).
    middle = str((int(window["earliest"]["ts"]) + int(window["latest"]["ts"])) // 2)
    target = f"{cluster.namespace}/tc-elsewhere"
    dry = cluster.run("restore", run_conf={"restore_tso": middle, "target_cluster": target, "dry_run": True})
    refused = cluster.run("restore", run_conf={"restore_time": "2020-01-01T00:00:00Z", "restore_tso": None,
                                               "target_cluster": target, "dry_run": False})  # dag.test() keeps params
    (entry,) = client.get("/tidb-pitr/api/clusters").json()["clusters"]
    assert entry["last_restore"] is None
    # What the page shows was published again at the end of the restore DAG's last run, not the guard's.
    assert (entry["published"]["dag_id"], entry["published"]["run_id"]) == (cluster.config.dag_id("restore"),
                                                                             refused.run_id)
    assert str(refused.state) == "failed"  # its publish_status (a teardown) succeeded, and the run stays failed
    assert [(a["run_id"], a["kind"]) for a in entry["last_attempts"]] == [(refused.run_id, "refused"),
                                                                         (dry.run_id, "dry run")]
    assert entry["last_attempts"][0]["note"].startswith("Refused: 2020-01-01T00:00:00.000Z is before the earliest")
    for code in ("tidb_pitr.js", "tidb_pitr_helpers.js"):
        script = client.get(f"/tidb-pitr/static/{code}")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/tidb-pitr/static/app.py").status_code == 404  # the page's code, nothing else beside it

    # A stopped log backup, replaced: the new one has no snapshot yet, so the page draws an open gap.
    old = cluster.live_log()
    cluster.patch_log({"logSubcommand": "log-stop"}, old.name)
    cluster.wait_log(lambda v: v.name == old.name and v.phase == "Stopped")
    run = cluster.run("log_guard", run_conf={"start_new_log_backup": True})
    assert str(run.state) == "success"
    cluster.wait_log(lambda v: v.name == f"{old.name}-2" and (v.checkpoint_ts or 0) > 0)
    run = cluster.run("log_guard")
    (gap,) = _gaps(xcom(run, "publish_status"))
    assert gap["open"] and gap["cause"].startswith(f"log backup {old.name} stopped at ")
    assert gap["cause"].endswith(f"no snapshot of the next log {old.name}-2 yet")
    (entry,) = client.get("/tidb-pitr/api/clusters").json()["clusters"]
    assert entry["published"]["run_id"] == run.run_id and _gaps(entry["status"]) == [gap]
