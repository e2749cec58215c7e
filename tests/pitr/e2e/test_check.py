"""`check` end to end on the sandbox, under include/rbac.yaml's Role (the kubeconfig's `tidb-pitr-airflow` context,
which the sandbox holds to that Role): every row OK on a demo-like cluster and the probe leaves storage as it was;
a Role without `delete backups` fails naming retention; a storage checkpoint that stopped while the CR's moves
fails; PD's clock 2 minutes ahead fails; the command line's exit code and --json.

One run per state: the DAG once (dag.test()), the other states through the command line in this process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from tidb_pitr.__main__ import main as cli
from tidb_pitr.hooks.storage import BackupStorageHook

from ..conftest import MANUAL_K8S_CONN, unique
from .clusters import Cluster
from .conftest import xcom
from .test_alerts import gauges

ROLE = Path(__file__).resolve().parents[3] / "include" / "rbac.yaml"
# What a check_failed event carries: the cluster, the event, the summary (the newly FAILED rows).
CHECK_NOTIFIER = {"class": "airflow.providers.http.notifications.HttpNotifier",
                  "args": {"http_conn_id": "drill_alerts", "endpoint": "/check",
                           "json": {"text": "{{ tidb_pitr.summary }}", "event": "{{ tidb_pitr.event }}",
                                    "cluster": "{{ tidb_pitr.cluster }}"}}}
OBSERVE = 3.0  # the sandbox's tracker polls every 0.6 s and TiKV flushes every 0.3 s, storage trailing by 0.3 s


def role_connection(kubeconfig: Path, context: str = "tidb-pitr-airflow") -> str:
    conn_id = unique("role_k8s").replace("-", "_")
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig), "cluster_context": context}})
    return conn_id


@pytest.fixture(scope="module")
def checked(sandbox: Any, connections: dict[str, str], airflow_db: Any) -> Any:
    cluster = Cluster(sandbox, connections, seed_days=1, source_sql=True,
                      kubernetes_conn_id=role_connection(sandbox.kubeconfig))
    yield cluster
    cluster.close()


def _keys(cluster: Cluster) -> list[tuple[str, int]]:
    storage = BackupStorageHook(**cluster.config.storage.hook_kwargs())
    # Everything but the live log's data and checkpoint objects, which TiKV keeps writing meanwhile.
    return sorted((e.key, e.size) for e in storage.list_keys("") if "/log-backup/" not in e.key)


def _config_file(tmp_path: Path, *configs: Any) -> str:
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": [c.model_dump(mode="json", exclude_none=True) for c in configs]}))
    return str(path)


def _cli(capsys: Any, tmp_path: Path, config: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    code = cli(["check", "--cluster", f"{config.namespace}/{config.name}", "--config", _config_file(tmp_path, config),
                "--json", *extra])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _note(run: Any) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagRun, run.id).note or ""


def _row(answer: dict[str, Any], name: str) -> dict[str, str]:
    return next(r for r in answer["rows"] if r["name"] == name)


def test_every_row_is_ok_on_a_demo_like_cluster_and_the_probe_leaves_nothing(checked):
    before = _keys(checked)
    run = checked.run("check", run_conf={"observe_seconds": OBSERVE})
    rows = xcom(run, "check")
    assert str(run.state) == "success", rows
    assert [(r["name"], r["status"]) for r in rows if r["status"] != "OK"] == []
    names = {r["name"] for r in rows}
    assert {"kubernetes connection", "crd Backup", "crd Restore", "rbac", "tidb cluster", "tidb version",
            "log backup", "log backup storage", "log checkpoint (CR)", "log checkpoint (storage)", "storage list",
            "storage probe", "storage secret", f"sql {checked.config.sql_conn_id}",
            f"sql grants {checked.config.sql_conn_id}", "clock skew", "triggerer"} <= names
    # The checkpoints' watch was the triggerer probe's deferred timer, not a sleep in a worker slot.
    assert "after its timer" in next(r["value"] for r in rows if r["name"] == "triggerer")
    assert _note(run).startswith(f"Check {checked.namespace}/{checked.name}: 0 FAILED, 0 WARNING, ")
    assert _keys(checked) == before  # the probe is gone and nothing else was touched
    # The probe object is named by the run's time, so a DBA who finds one left behind knows which run wrote it.
    stamp = run.run_after.strftime("%Y%m%d%H%M%S")
    assert f"/.tidb-pitr-check/probe-{stamp}-" in _row({"rows": rows}, "storage probe")["value"]


def test_with_polling_dags_the_check_watches_the_checkpoints_itself_and_needs_no_triggerer(checked, monkeypatch):
    """[tidb_pitr] deferrable = False: the probe does not defer, so `check` sleeps what is left of the watch; the
    checkpoints are still seen to move and the triggerer row says why it is not needed."""
    monkeypatch.setenv("AIRFLOW__TIDB_PITR__DEFERRABLE", "False")
    run = checked.run("check", run_conf={"observe_seconds": OBSERVE})
    rows = {r["name"]: r for r in xcom(run, "check")}
    assert str(run.state) == "success", rows
    assert rows["triggerer"]["status"] == "OK" and "deferrable = False" in rows["triggerer"]["value"]
    for where in ("CR", "storage"):
        assert rows[f"log checkpoint ({where})"]["status"] == "OK", rows


@contextmanager
def role_without_delete(sandbox: Any, tmp_path: Path) -> Iterator[str]:
    """An Airflow Kubernetes connection whose identity has include/rbac.yaml's Role without `delete`."""
    token = unique("no-delete")
    docs = [d for d in yaml.safe_load_all(ROLE.read_text()) if d]
    rules = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "tidb-pitr-airflow")["rules"]
    rules = [{**r, "verbs": [v for v in r["verbs"] if v != "delete"]} for r in rules]
    sandbox.call("PUT", f"/rbac/{token}", {"rules": rules})
    kubeconfig = tmp_path / "kubeconfig.json"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "clusters": [{"name": "s", "cluster": {"server": sandbox.url}}],
        "users": [{"name": "u", "user": {"token": token}}], "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "s", "user": "u"}}]}))
    try:
        yield role_connection(kubeconfig, "c")
    finally:
        sandbox.call("DELETE", f"/rbac/{token}")


def test_a_role_without_delete_on_backups_fails_naming_retention(sandbox, checked, capsys, tmp_path):
    with role_without_delete(sandbox, tmp_path) as conn_id:
        config = checked.config.model_copy(update={"kubernetes_conn_id": conn_id})
        code, answer = _cli(capsys, tmp_path, config, "--observe-seconds", "0")
    assert code == 2 and answer["exit_code"] == 2
    # Only the check DAG was ever run (and so written to Airflow's database); the others were never parsed here.
    unpaused = _row(answer, "dags unpaused")
    assert unpaused["status"] == "WARNING" and checked.config.dag_id("retention") in unpaused["value"]
    failed = [r for r in answer["rows"] if r["status"] == "FAILED"]
    assert [r["name"] for r in failed] == ["rbac delete backups"], failed
    assert "retention" in failed[0]["action"] and answer["rows"][0] == failed[0]


def test_a_failed_row_is_in_the_note_the_gauge_and_the_notifiers(sandbox, checked, webhook, tagged_statsd,
                                                                 tmp_path):
    from tidb_pitr.config import ClusterConfig

    before = checked.config
    with role_without_delete(sandbox, tmp_path) as conn_id:
        checked.reconfigure(ClusterConfig.model_validate({**before.model_dump(mode="json", by_alias=True),
                                                          "kubernetes_conn_id": conn_id,
                                                          "notifiers": [CHECK_NOTIFIER]}))
        try:
            run = checked.run("check", run_conf={"observe_seconds": 0})
        finally:
            checked.reconfigure(before)
    assert str(run.state) == "failed"
    assert _note(run).startswith(f"Check {checked.namespace}/{checked.name}: 1 FAILED, 0 WARNING, ")
    assert "rbac delete backups" in _note(run).split("\n")[0]
    assert gauges(tagged_statsd)[f"{checked.namespace}/{checked.name}"]["tidb_pitr.check_failed"] == 1
    posted = [r["json"] for r in webhook]
    assert len(posted) == 1 and posted[0]["event"] == "check_failed", posted
    assert "rbac delete backups" in posted[0]["text"] and "retention" in posted[0]["text"]


def test_a_storage_checkpoint_that_stopped_while_the_crs_moves_fails(sandbox, checked, capsys, tmp_path):
    sandbox.set_faults(stall_storage_checkpoint=f"{checked.namespace}/{checked.name}")
    try:
        code, answer = _cli(capsys, tmp_path, checked.config, "--observe-seconds", str(OBSERVE))
    finally:
        sandbox.set_faults(stall_storage_checkpoint=None)
    assert code == 2
    assert _row(answer, "log checkpoint (storage)")["status"] == "FAILED"
    assert "did not move" in _row(answer, "log checkpoint (storage)")["value"]
    assert _row(answer, "log checkpoint (CR)")["status"] == "OK"


def test_pd_two_minutes_ahead_fails_the_clock_skew_and_the_exit_code_says_so(manual_sandbox, on_sandbox_time,
                                                                               capsys, tmp_path):
    """On the manual clock: this process's clock is the sandbox's, and PD's is put 2 minutes ahead of both."""
    from tidb_pitr.config import ClusterConfig

    env = manual_sandbox.env
    namespace, name = env["TIDB_SANDBOX_NAMESPACE"], env["TIDB_SANDBOX_CLUSTER"]
    sql = Cluster.sql_connection(f"manual-{name}", manual_sandbox.sql_url(namespace, name))
    config = ClusterConfig.model_validate({
        "name": name, "namespace": namespace, "api_group": "pingcap.com", "kubernetes_conn_id": MANUAL_K8S_CONN,
        "sql_conn_id": sql, "storage": {"provider": "s3", "bucket": "my-bucket", "root": name, "region": "us-west-1",
                                        "secret_name": "s3-secret", "conn_id": "sandbox_s3"}})
    manual_sandbox.call("PUT", "/tso/skew", {"seconds": 120})
    try:
        code, answer = _cli(capsys, tmp_path, config, "--observe-seconds", "0")
    finally:
        manual_sandbox.call("PUT", "/tso/skew", {"seconds": 0})
        manual_sandbox.advance(121)  # past the TSOs handed out meanwhile: the next test sees PD on time
    skew = _row(answer, "clock skew")
    assert skew["status"] == "FAILED" and skew["value"].startswith("PD's clock is 2m") and "ahead" in skew["value"]
    assert code == 2 and answer["counts"]["FAILED"] >= 1
    assert [r["status"] for r in answer["rows"]] == sorted((r["status"] for r in answer["rows"]),
                                                           key=["FAILED", "WARNING", "OK"].index)


def test_a_storage_secret_without_secret_key_fails_naming_the_key(sandbox, checked, connections, capsys, tmp_path):
    """With an identity that may read Secrets (the sandbox's admin): the Secret the CRs would name lacks secret_key,
    which TiDB Operator needs before it makes any backup Job."""
    import base64

    from kubernetes import client
    from kubernetes import config as kube_config

    secret = unique("s3-no-secret-key")
    core = client.CoreV1Api(kube_config.new_client_from_config(config_file=str(sandbox.kubeconfig)))
    core.create_namespaced_secret(checked.namespace, {"metadata": {"name": secret}, "data": {
        "access_key": base64.b64encode(b"AKIA-not-shown").decode()}})
    try:
        storage = checked.config.storage.model_copy(update={"secret_name": secret})
        config = checked.config.model_copy(update={"kubernetes_conn_id": connections["kubernetes"],
                                                   "storage": storage})
        code, answer = _cli(capsys, tmp_path, config, "--observe-seconds", "0")
    finally:
        core.delete_namespaced_secret(secret, checked.namespace)
    row = _row(answer, "storage secret")
    assert row["status"] == "FAILED" and row["value"] == f"Secret {secret} lacks secret_key", row
    assert "AKIA" not in json.dumps(answer) and code == 2


def test_an_sql_account_granted_nothing_fails_naming_the_privilege(sandbox, checked, capsys, tmp_path):
    """An account made without a GRANT (SHOW GRANTS: USAGE only) as the source's sql_conn_id: TiDB would hide every
    schema from it and refuse its reads."""
    import json as json_module
    import os

    user = unique("reader").replace("-", "_")
    sandbox.call("POST", f"/clusters/{checked.namespace}/{checked.name}/accounts", {"user": user, "password": "pw"})
    try:
        # The source's connection (host and port), logged in as the new account.
        source = json_module.loads(os.environ[f"AIRFLOW_CONN_{checked.config.sql_conn_id.upper()}"])
        conn_id = f"sql_{user}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json_module.dumps({**source, "login": user, "password": "pw"})
        config = checked.config.model_copy(update={"sql_conn_id": conn_id})
        code, answer = _cli(capsys, tmp_path, config, "--observe-seconds", "0")
    finally:
        sandbox.call("POST", f"/clusters/{checked.namespace}/{checked.name}/accounts", {"user": user, "delete": True})
    row = _row(answer, f"sql grants {conn_id}")
    assert row["status"] == "FAILED" and row["value"].startswith("lacks SELECT ON *.*"), row
    assert f"GRANT USAGE ON *.* TO '{user}'@'%'" in row["value"] and code == 2
