"""`make demo` / `make demo-check`: the whole project on the sandbox, driven through Airflow's REST API.

Starts the sandbox (cluster test1/demo1 with 40 days of history and a live workload, an empty restore
target test1/demo1-restore), starts `airflow standalone` (SQLite, LocalExecutor, triggerer) with
connections to the sandbox, unpauses the DAGs, then runs the log backup guard, a snapshot, retention
and a restore to a time inside the window, waiting for each, and prints a summary: the recoverable
window before and after retention, what was truncated and deleted, the restore point, and whether the
restored rows equal the source at that point.

`--check` (make demo-check) exits when done: 0 only when every step succeeded and the rows match; its
last line is one JSON object. Without it the UI stays up until Ctrl-C, which stops everything started.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "sandbox"), str(ROOT / "plugins")]

from tidb_sandbox.testing import start_sandbox, stop_sandbox  # noqa: E402

NAMESPACE, CLUSTER, TARGET = "test1", "demo1", "demo1-restore"
FAST = {"backup_duration": 4, "restore_duration": 4, "truncate_duration": 1, "compact_duration": 2,
        "checkpoint_interval": 2, "step_delay": 0.5}


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


class Airflow:
    """The REST API of the local Airflow (v2, JWT from the simple auth manager)."""

    def __init__(self, url: str, username: str, password: str):
        self.url, self.username, self.password = url.rstrip("/"), username, password
        self.token = ""

    def _call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return json.loads(raw) if raw else None

    def login(self) -> None:
        answer = self._call("POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False)
        self.token = answer["access_token"]

    def wait_healthy(self, process: subprocess.Popen[bytes], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited with {process.returncode}")
            try:
                health = self._call("GET", "/api/v2/monitor/health", auth=False)
                parts = [health.get(k, {}).get("status") for k in ("metadatabase", "scheduler", "triggerer",
                                                                     "dag_processor")]
                if all(p == "healthy" for p in parts):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(2)
        raise TimeoutError("Airflow did not become healthy in time")

    def wait_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                known = {d["dag_id"] for d in self._call("GET", "/api/v2/dags?limit=100")["dags"]}
                if set(dag_ids) <= known:
                    return
            except urllib.error.HTTPError as err:
                if err.code != 401:
                    raise
                self.login()
            time.sleep(2)
        raise TimeoutError(f"DAGs {dag_ids} were not parsed in time; see the dag-processor log")

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        quoted = urllib.request.quote(run_id, safe="")
        while time.monotonic() < deadline:
            self.login()
            run = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        raise TimeoutError(f"{dag_id} run {run_id} did not finish in time")

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        quoted = urllib.request.quote(run_id, safe="")
        try:
            entry = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/xcomEntries/"
                                      "return_value?deserialize=true")
        except urllib.error.HTTPError:
            return None
        value = entry.get("value")
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


def write_config(workdir: Path) -> Path:
    import yaml

    config = {"clusters": [{
        "name": CLUSTER, "namespace": NAMESPACE, "api_group": "pingcap.com", "kubernetes_conn_id": "sandbox_k8s",
        "storage": {"provider": "s3", "bucket": "my-bucket", "root": CLUSTER, "region": "us-west-1",
                    "secret_name": "s3-secret", "conn_id": "sandbox_s3"},
        "timezone": "UTC", "retention": "30d", "restore_targets": [TARGET], "tags": ["demo"],
        # The sandbox's operator tracks checkpoints every 0.6 s where TiDB Operator's does every minute.
        "waits": {"tracker_interval": "1s", "start_grace": "5s"}}]}
    path = workdir / "clusters.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def airflow_env(workdir: Path, sandbox: Any, config: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    sandbox_env = sandbox.env
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "TIDB_PITR_CONFIG": str(config),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), env.get("PYTHONPATH", "")]),
        # standalone starts its components as `airflow ...` from PATH: the project's virtualenv first.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "AIRFLOW_CONN_SANDBOX_K8S": json.dumps({"conn_type": "kubernetes",
                                                "extra": {"kube_config_path": str(sandbox.kubeconfig)}}),
        "AIRFLOW_CONN_SANDBOX_S3": json.dumps({
            "conn_type": "aws", "login": sandbox_env["TIDB_SANDBOX_S3_ACCESS_KEY"],
            "password": sandbox_env["TIDB_SANDBOX_S3_SECRET_KEY"],
            "extra": {"endpoint_url": sandbox_env["TIDB_SANDBOX_S3_ENDPOINT"], "region_name": "us-west-1"}}),
    })
    if "TIDB_SANDBOX_AZURE_CONNECTION_STRING" in sandbox_env:
        env["AIRFLOW_CONN_SANDBOX_WASB"] = json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": sandbox_env["TIDB_SANDBOX_AZURE_CONNECTION_STRING"]}})
    return env


def read_password(home: Path, timeout: float = 300) -> str:
    path = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written")
        time.sleep(1)
    return json.loads(path.read_text())["admin"]


def run_dag(api: Airflow, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[str, dict[str, Any], float]:
    say(f"running {dag_id} {json.dumps(conf) if conf else ''}")
    run_id = api.trigger(dag_id, conf)
    run = api.wait_run(dag_id, run_id)
    start, end = run.get("start_date"), run.get("end_date")
    seconds = 0.0
    if start and end:
        from datetime import datetime

        seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                   - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    say(f"  {dag_id}: {run['state']} in {seconds:.1f} s")
    return run_id, run, seconds


def window_now(env: dict[str, str], config: Path) -> dict[str, Any]:
    """The recoverable window as the product computes it, read straight from the cluster's CRs."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW_CONN_") or k == "AIRFLOW_HOME"})
    from tidb_pitr.checks import current_window
    from tidb_pitr.config import load_config

    return current_window(load_config(config).clusters[0])


def retention_results(api: Airflow, dag_id: str) -> tuple[list[str], str | None, float]:
    """What every retention run so far did (the scheduler may run one as soon as the DAG is unpaused)."""
    runs = api._call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=20")["dag_runs"]
    deleted: list[str] = []
    truncated: str | None = None
    for run in runs:
        finished = api.wait_run(dag_id, run["dag_run_id"])
        if finished["state"] != "success":
            raise RuntimeError(f"retention run {run['dag_run_id']} {finished['state']}")
        plan = api.xcom(dag_id, run["dag_run_id"], "plan") or {}
        deleted += [d["backup_name"] or d["prefix"] for d in plan.get("deletions", [])]
        truncated = plan.get("truncate_until") or truncated
    return deleted, truncated, len(runs)


def scenario(api: Airflow, sandbox: Any, env: dict[str, str], config: Path) -> dict[str, Any]:
    ids = {k: f"tidb_{NAMESPACE}_{CLUSTER}_{k}" for k in ("log_guard", "snapshot", "retention", "restore")}
    api.wait_dags(list(ids.values()))
    window_before = window_now(env, config)
    say(f"recoverable window before anything runs: {json.dumps(_window(window_before))}")
    for dag_id in ids.values():
        api.unpause(dag_id)
    say("DAGs unpaused: " + ", ".join(ids.values()))
    seconds: dict[str, float] = {}
    ok = True

    _, run, seconds["log_guard"] = run_dag(api, ids["log_guard"])
    ok &= run["state"] == "success"

    snap_run, run, seconds["snapshot"] = run_dag(api, ids["snapshot"])
    ok &= run["state"] == "success"
    snapshot = api.xcom(ids["snapshot"], snap_run, "snapshot")

    ret_run, run, seconds["retention"] = run_dag(api, ids["retention"])
    ok &= run["state"] == "success"
    deleted, truncated, retention_runs = retention_results(api, ids["retention"])
    window_after = api.xcom(ids["retention"], ret_run, "finish") or window_now(env, config)

    earliest = int((window_after.get("earliest") or {}).get("ts") or 0)
    latest = int((window_after.get("latest") or {}).get("ts") or 0)
    restore_ts = random.randint(earliest, latest) if earliest and latest else 0
    rest_run, run, seconds["restore"] = run_dag(api, ids["restore"], {
        "restore_tso": str(restore_ts), "target_cluster": TARGET, "target_namespace": NAMESPACE})
    ok &= run["state"] == "success"
    report = api.xcom(ids["restore"], rest_run, "report") or {}
    source = sandbox.call("GET", f"/clusters/{NAMESPACE}/{CLUSTER}/rows?asOf={restore_ts}&rows=false")
    restored = sandbox.call("GET", f"/clusters/{NAMESPACE}/{TARGET}/rows?rows=false")
    match = source["digest"] == restored["digest"] and source["count"] == restored["count"]
    return {"ok": bool(ok and match and deleted and truncated), "rows_match": match,
            "rows_compared": source["count"], "window_before": _window(window_before),
            "window_after": _window(window_after), "truncated_until": truncated, "deleted": deleted,
            "retention_runs": retention_runs,
            "snapshot": snapshot and {k: snapshot.get(k) for k in ("name", "commit_ts", "backup_path")},
            "restore_point": {"ts": str(restore_ts), "time": report.get("restore_point")},
            "restore_digest": {"source": source["digest"], "restored": restored["digest"]},
            "dag_run_seconds": {k: round(v, 1) for k, v in seconds.items()}}


def _window(window: dict[str, Any] | None) -> dict[str, Any] | None:
    if not window:
        return None
    return {"earliest": window.get("earliest"), "latest": window.get("latest")}


def summary(result: dict[str, Any]) -> None:
    say("=" * 72)
    say(f"recoverable window before retention: {json.dumps(result['window_before'])}")
    say(f"recoverable window after retention:  {json.dumps(result['window_after'])}")
    say(f"retention ({result['retention_runs']} run(s)): log truncated until TSO {result['truncated_until']}; "
        f"snapshots deleted: {result['deleted']}")
    say(f"new snapshot: {json.dumps(result['snapshot'])}")
    say(f"restore point: {json.dumps(result['restore_point'])}")
    say(f"restored rows {'EQUAL' if result['rows_match'] else 'DIFFER FROM'} the source at that point "
        f"({result['rows_compared']} rows compared)")
    say(f"DAG run seconds: {json.dumps(result['dag_run_seconds'])}")
    say("=" * 72)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="run the scenario, print JSON, exit (no UI left up)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8080")))
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)  # a demo starts from scratch every time
    workdir.mkdir(parents=True)
    say("starting the sandbox (Kubernetes API, simulated TiDB Operator, S3, Azure Blob, 40 days of history)")
    sandbox = start_sandbox(workdir / "sandbox", "--seed-days", "40", "--kubeconfig",
                            str(workdir / "kubeconfig.yaml"), settings=FAST)
    say(f"sandbox up: {sandbox.url}; kubeconfig {sandbox.kubeconfig}")
    airflow: subprocess.Popen[bytes] | None = None
    result: dict[str, Any] | None = None
    code = 1
    try:
        env = airflow_env(workdir, sandbox, write_config(workdir), args.port)
        log = open(workdir / "airflow" / "standalone.log", "wb")  # noqa: SIM115 - lives as long as Airflow
        say(f"starting airflow standalone on port {args.port} (log: {workdir / 'airflow' / 'standalone.log'})")
        airflow = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "standalone"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        password = read_password(workdir / "airflow")
        api = Airflow(f"http://127.0.0.1:{args.port}", "admin", password)
        api.wait_healthy(airflow)
        api.login()
        say("Airflow is up")
        result = scenario(api, sandbox, env, workdir / "clusters.yaml")
        summary(result)
        code = 0 if result["ok"] else 1
        if args.check:
            return code  # the JSON line is printed after shutdown, so that it is the last line
        say(f"Airflow UI: http://127.0.0.1:{args.port}  login: admin / {password}")
        say(f"kubectl --kubeconfig {sandbox.kubeconfig} get backup -A -o wide")
        say("Ctrl-C stops Airflow and the sandbox")
        stop = {"now": False}
        signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        while not stop["now"] and airflow.poll() is None:
            time.sleep(0.5)
        return code
    finally:
        if airflow is not None and airflow.poll() is None:
            os.killpg(airflow.pid, signal.SIGTERM)
            try:
                airflow.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(airflow.pid, signal.SIGKILL)
        stop_sandbox(sandbox.process)
        say("stopped Airflow and the sandbox")
        if args.check:
            print(json.dumps(result or {"ok": False, "error": "the scenario did not finish"}, sort_keys=True),
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
