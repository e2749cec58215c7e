"""The sandbox, a clusters.yaml for it and `airflow standalone`, stood up together and torn down together.

`make demo` (scripts/demo.py) and the browser tests (tests/ui) share this, so both run the product the
same way: cluster test1/demo1 with 40 days of history and two empty restore targets, test1/demo1-restore
(the demo's own restore) and test1/demo1-restore-ui (left for a restore from the UI), Airflow connections
to the sandbox's Kubernetes API, S3, Azure Blob and each cluster's SQL endpoint. Airflow runs as
`airflow standalone` would (its four components, LocalExecutor, SimpleAuthManager) but started one by one, so that
nothing listens beyond 127.0.0.1: the UI and REST API bind loopback, and the log servers are not started.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fcntl
import functools
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "plugins"),) if p not in sys.path]  # the sandbox is installed

from tidb_sandbox.client import SandboxHandle, sql_params, start_sandbox  # noqa: E402

NAMESPACE, CLUSTER = "test1", "demo1"
TARGET, UI_TARGET = "demo1-restore", "demo1-restore-ui"  # the demo restores into the first; the UI gets the second
SCRATCH = "demo1-scratch"  # the drill's: restored into, compared with the source, emptied again
SQL_CONN_IDS = {CLUSTER: "demo1_sql", TARGET: "demo1_restore_sql", UI_TARGET: "demo1_restore_ui_sql",
                SCRATCH: "demo1_scratch_sql"}
SEED_DAYS = 40
# Jobs of seconds, not hours, so a demo or a test sees every phase in a few minutes. (Waits shorter than the
# deferral floor, [tidb_pitr] min_deferral_seconds, still last that long: see CustomResourceTrigger.run.)
FAST = {"backup_duration": 10, "restore_duration": 2, "truncate_duration": 5, "compact_duration": 5,
        "checkpoint_interval": 2, "step_delay": 0.5,
        # A restore takes as long as its bytes at these rates per TiKV store (the docs' 280 GB/h and 30 GB/h,
        # scaled to the sandbox's kilobytes), and the config below tells the plan the same rates.
        "restore_snapshot_rate": 200_000, "restore_log_rate": 50_000}
RESTORE_RATES = {"snapshot_gb_per_hour": FAST["restore_snapshot_rate"] * 3600 / 1e9,
                 "log_gb_per_hour": FAST["restore_log_rate"] * 3600 / 1e9}
HOST = "127.0.0.1"
FINISHED = ("success", "failed")
# How often the stack's waits ask Airflow again: a run's end is seen within half a second, for a few requests a
# second to a local API server.
POLL = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class AirflowApi:
    """The REST API of the local Airflow (v2, JWT from the simple auth manager)."""

    def __init__(self, url: str, username: str, password: str):
        self.url, self.username, self.password = url.rstrip("/"), username, password
        self.token = ""

    def call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            return self._send(request)
        except urllib.error.HTTPError as err:
            if err.code != 401 or not auth:
                raise
        self.login()  # the token expired: once more with a fresh one
        request.headers["Authorization"] = f"Bearer {self.token}"
        return self._send(request)

    @staticmethod
    def _send(request: urllib.request.Request) -> Any:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return json.loads(raw) if raw else None

    def login(self) -> None:
        answer = self.call("POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False)
        self.token = answer["access_token"]

    def wait_healthy(self, process: subprocess.Popen[bytes], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited with {process.returncode}")
            try:
                health = self.call("GET", "/api/v2/monitor/health", auth=False)
                parts = [health.get(k, {}).get("status") for k in ("metadatabase", "scheduler", "triggerer",
                                                                     "dag_processor")]
                if all(p == "healthy" for p in parts):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(POLL)
        raise TimeoutError("Airflow did not become healthy in time")

    def wait_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            known = {d["dag_id"] for d in self.call("GET", "/api/v2/dags?limit=100")["dags"]}
            if set(dag_ids) <= known:
                return
            time.sleep(POLL)
        raise TimeoutError(f"DAGs {dag_ids} were not parsed in time; see the dag-processor log")

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=50&order_by=run_after")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            time.sleep(POLL)
        raise TimeoutError(f"{dag_id} run {run_id} did not finish in time")

    def wait_scheduled_run(self, dag_id: str, timeout: float = 60) -> str | None:
        """The run the scheduler starts when a DAG is unpaused (catchup=False: the latest slot), if any."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            scheduled = [r for r in self.runs(dag_id) if r["run_type"] == "scheduled"]
            if scheduled:
                return scheduled[-1]["dag_run_id"]
            time.sleep(POLL)
        return None

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        try:
            entry = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances/{task_id}/"
                                     f"xcomEntries/{key}?deserialize=true")
        except urllib.error.HTTPError:
            return None
        value = entry.get("value")
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


def _quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def run_seconds(run: dict[str, Any]) -> float:
    start, end = run.get("start_date"), run.get("end_date")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def mysql_connection(url: str) -> str:
    """An AIRFLOW_CONN_* value (JSON) for a mysql://user:password@host:port URL of the sandbox."""
    params = sql_params(url)
    return json.dumps({"conn_type": "mysql", "host": params["host"], "port": params["port"],
                       "login": params["user"], "password": params["password"], "schema": ""})


def cluster_entry(name: str, *, kubernetes_conn_id: str = "sandbox_k8s", storage_conn_id: str = "sandbox_s3",
                  sql_conn_id: str | None = None, targets: list[dict[str, Any]] | None = None,
                  drill: dict[str, Any] | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    """One clusters.yaml entry for a cluster of the sandbox (namespace test1, S3 bucket my-bucket, root = name)."""
    entry: dict[str, Any] = {
        "name": name, "namespace": NAMESPACE, "api_group": "pingcap.com", "kubernetes_conn_id": kubernetes_conn_id,
        **({"sql_conn_id": sql_conn_id} if sql_conn_id else {}),
        "storage": {"provider": "s3", "bucket": "my-bucket", "root": name, "region": "us-west-1",
                    "secret_name": "s3-secret", "conn_id": storage_conn_id},
        "timezone": "UTC", "retention": "30d", "restore_targets": targets or [], "tags": tags or ["demo"],
        "restore_rates": RESTORE_RATES,
        **({"drill": drill} if drill else {}),
        # Not 00:00: the sandbox seeds snapshots every other day at 00:00 UTC under the DAG's names, and on
        # every other day the run the scheduler starts on unpause (the latest slot) would take a seeded name.
        "snapshot_anchor": "12:00",
        # The sandbox's operator tracks checkpoints every 0.6 s where TiDB Operator's does every minute, and its
        # TiKV flushes every FAST["checkpoint_interval"] s, not 3 min: the check watches them 4 s, not 5 min.
        "waits": {"tracker_interval": "1s", "start_grace": "5s",
                  "log_flush_interval": f"{FAST['checkpoint_interval']}s"}}
    return entry


def write_clusters(workdir: Path, clusters: list[dict[str, Any]]) -> Path:
    import yaml

    path = workdir / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": clusters}, sort_keys=False))
    return path


def sql_conn_id(cluster: str) -> str:
    """The mysql connection of a sandbox cluster: the demo's fixed ids, `<name>_sql` for any other."""
    return SQL_CONN_IDS.get(cluster) or f"{cluster.replace('-', '_')}_sql"


def write_config(workdir: Path, extra_targets: tuple[str, ...] = ()) -> Path:
    targets = [{"name": name, "sql_conn_id": sql_conn_id(name)} for name in (TARGET, UI_TARGET, *extra_targets)]
    targets.append({"name": SCRATCH, "sql_conn_id": SQL_CONN_IDS[SCRATCH], "scratch": True})
    return write_clusters(workdir, [cluster_entry(CLUSTER, sql_conn_id=SQL_CONN_IDS[CLUSTER], targets=targets,
                                                  drill={"target": SCRATCH, "mode": "recent"})])


def sandbox_connections(sandbox: SandboxHandle, sql_urls: dict[str, str]) -> dict[str, str]:
    """AIRFLOW_CONN_* for the sandbox's Kubernetes API, object stores and each cluster's SQL endpoint."""
    sandbox_env = sandbox.env
    conns = {
        "AIRFLOW_CONN_SANDBOX_K8S": json.dumps({"conn_type": "kubernetes",
                                                "extra": {"kube_config_path": str(sandbox.kubeconfig)}}),
        "AIRFLOW_CONN_SANDBOX_S3": json.dumps({
            "conn_type": "aws", "login": sandbox_env["TIDB_SANDBOX_S3_ACCESS_KEY"],
            "password": sandbox_env["TIDB_SANDBOX_S3_SECRET_KEY"],
            "extra": {"endpoint_url": sandbox_env["TIDB_SANDBOX_S3_ENDPOINT"], "region_name": "us-west-1"}}),
    }
    if "TIDB_SANDBOX_AZURE_CONNECTION_STRING" in sandbox_env:
        conns["AIRFLOW_CONN_SANDBOX_WASB"] = json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": sandbox_env["TIDB_SANDBOX_AZURE_CONNECTION_STRING"]}})
    for cluster, url in sql_urls.items():
        conns[f"AIRFLOW_CONN_{sql_conn_id(cluster).upper()}"] = mysql_connection(url)
    return conns


def airflow_env(home: Path, config: Path, port: int, connections: dict[str, str]) -> dict[str, str]:
    # Nothing Airflow-related from outside: under pytest, os.environ holds the test session's own home, metadata
    # DB and connections, and this Airflow must not share them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # `airflow api-server` (which standalone starts) binds [api] host: loopback only, not 0.0.0.0.
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://{HOST}:{port}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # A task's calls to the api-server (the Execution API) wait 30 s, not 5: on a loaded 2-core machine (the
        # test lanes) one slow answer otherwise fails the task's first try and its retry waits minutes.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        # One secret for all four components: each would otherwise write airflow.cfg with a key of its own when
        # they start at once, and the api-server would refuse the tokens the scheduler gives its tasks.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "TIDB_PITR_CONFIG": str(config),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), env.get("PYTHONPATH", "")]),
        # standalone starts its components as `airflow ...` from PATH: the project's virtualenv first.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        **connections,
    })
    return env


def read_password(home: Path, process: subprocess.Popen[bytes], timeout: float = 300) -> str:
    """The admin password standalone generates for the simple auth manager on first start."""
    path = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {process.returncode}; see {home}/standalone.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written")
        time.sleep(POLL)
    return json.loads(path.read_text())["admin"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM the process group a child leads, wait until every member is gone, SIGKILL what is left.

    Not just the leader: standalone's api-server, scheduler and triggerer (and the sandbox's S3 server and
    Azurite) are members that may outlive it by seconds, holding ports and files."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader: a zombie still counts as a member
        if not _group_alive(process.pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Stack:
    workdir: Path
    sandbox: SandboxHandle
    config: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    port: int
    password: str
    api: AirflowApi

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @functools.cached_property
    def cluster(self) -> Any:
        """The demo cluster's ClusterConfig, as the DAG files read it (ids and labels come from there)."""
        from tidb_pitr.config import load_config

        return load_config(self.config).clusters[0]

    def dag_id(self, kind: str) -> str:
        return self.cluster.dag_id(kind)

    def dag_url(self, kind: str) -> str:
        return f"{self.url}/dags/{self.dag_id(kind)}"

    def target_label(self, name: str) -> str:
        """How the restore form's target list shows test1/<name>."""
        return self.cluster.target_choices()[f"{NAMESPACE}/{name}"]


MIGRATED_DBS = ROOT / ".artifacts" / "airflow-db"


def copy_migrated_db(destination: Path) -> Path:
    """A freshly migrated SQLite metadata DB at `destination`, copied from one migrated per Airflow version.

    `airflow db migrate` takes half a minute or more on a busy 2-core machine; the test lanes, the browser
    tests' stack and the demo each need a fresh DB, so it runs once (under a lock, the first caller migrates)
    and every caller gets a copy of its own: no state is shared between them."""
    from importlib.metadata import version

    MIGRATED_DBS.mkdir(parents=True, exist_ok=True)
    template = MIGRATED_DBS / f"airflow-{version('apache-airflow')}.db"
    with open(MIGRATED_DBS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            home = MIGRATED_DBS / "home"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            partial = MIGRATED_DBS / "migrating.db"
            partial.unlink(missing_ok=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
            env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{partial}"})
            subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=env, check=True,
                           capture_output=True, timeout=600)
            partial.rename(template)  # only a finished migration becomes the template
            shutil.rmtree(home, ignore_errors=True)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, destination)
    return destination


# What `airflow standalone` runs (airflow/cli/commands/standalone_command.py: scheduler, dag-processor, api-server,
# triggerer, LocalExecutor, SimpleAuthManager), started here one by one so that nothing listens beyond loopback:
# standalone cannot pass --skip-serve-logs, and the scheduler's and triggerer's log servers
# (airflow/utils/serve_logs/core.py) bind every interface with no setting for their host. They serve logs to an
# api-server on another machine; this one reads the task logs from the files under AIRFLOW_HOME.
COMPONENTS = ("scheduler --skip-serve-logs", "triggerer --skip-serve-logs", "dag-processor", "api-server")
# One leader for the four, in a session of its own: when any component exits it stops the others and exits (a
# dead stack is seen at once), Ctrl-C in the terminal reaches only us, and stop_group ends all of it.
SUPERVISOR = "trap 'trap - TERM; kill 0' TERM INT\n{starts}\nwait -n\nkill 0"


def _start_airflow(home: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    airflow = shlex.quote(str(Path(sys.executable).with_name("airflow")))
    script = SUPERVISOR.format(starts="\n".join(f"{airflow} {component} &" for component in COMPONENTS))
    env = {**env, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"}
    log = open(home / "standalone.log", "wb")  # noqa: SIM115 - the child holds it; closed here right after
    try:
        return subprocess.Popen(["bash", "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


@contextlib.contextmanager
def running_stack(workdir: Path, port: int, say: Callable[[str], None] = print,
                  extra_targets: tuple[str, ...] = ()) -> Iterator[Stack]:
    """Everything up, healthy and logged in; on leaving (also on an error or Ctrl-C) everything stopped.

    `extra_targets`: more empty restore targets (test1/<name>, with SQL connections), for callers that restore
    more than once from the UI (each restore needs an empty target)."""
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        say(f"starting the sandbox (Kubernetes API, simulated TiDB Operator, S3, Azure Blob, {SEED_DAYS} days "
            "of history)")
        # standalone's default SQLite DB, migrated already: the first migration (half a minute) runs while the
        # sandbox seeds its history.
        pool = cleanup.enter_context(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="airflow-db"))
        migrated = pool.submit(copy_migrated_db, home / "airflow.db")
        sandbox = start_sandbox(workdir / "sandbox", "--seed-days", str(SEED_DAYS), "--namespace", NAMESPACE,
                                "--cluster", CLUSTER, "--restore-target", TARGET, "--kubeconfig",
                                str(workdir / "kubeconfig.yaml"), settings=FAST)
        cleanup.callback(stop_group, sandbox.process)
        sql_urls = {CLUSTER: sandbox.sql_url(NAMESPACE, CLUSTER), TARGET: sandbox.sql_url(NAMESPACE, TARGET)}
        for name in (UI_TARGET, SCRATCH, *extra_targets):  # empty, no workload: targets
            sql_urls[name] = sandbox.create_cluster(NAMESPACE, name)["sql"]
        say(f"sandbox up: {sandbox.url}; kubeconfig {sandbox.kubeconfig}; targets {TARGET}, {UI_TARGET}; "
            f"scratch {SCRATCH}")
        migrated.result()
        config = write_config(workdir, extra_targets)
        env = airflow_env(home, config, port, sandbox_connections(sandbox, sql_urls))
        say(f"starting airflow standalone on {HOST}:{port} (log: {home / 'standalone.log'})")
        process = _start_airflow(home, env)
        cleanup.callback(stop_group, process)
        password = read_password(home, process)
        api = AirflowApi(f"http://{HOST}:{port}", "admin", password)
        api.wait_healthy(process)
        api.login()
        say("Airflow is up")
        yield Stack(workdir, sandbox, config, env, process, port, password, api)


def window_now(stack: Stack) -> dict[str, Any]:
    """The recoverable window as the product computes it, read straight from the cluster's CRs."""
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("AIRFLOW_CONN_") or k == "AIRFLOW_HOME"})
    from tidb_pitr.flows.tasks.guard import current_window

    return current_window(stack.cluster)


def window_times(window: dict[str, Any] | None) -> tuple[datetime, datetime] | None:
    """[earliest, latest] of a window (as current_window and retention's `finish` give it) as UTC datetimes."""
    from tidb_pitr.tso import tso_to_dt

    earliest, latest = ((window or {}).get(end) or {} for end in ("earliest", "latest"))
    if not (earliest.get("ts") and latest.get("ts")):
        return None
    return tso_to_dt(int(earliest["ts"])).astimezone(UTC), tso_to_dt(int(latest["ts"])).astimezone(UTC)
