"""docker-compose.yaml's production shape run without Docker: PostgreSQL, Redis, and each Airflow component as its
own process (api-server, scheduler, dag-processor, triggerer, Celery workers), against the sandbox.

Every Airflow process gets the environment its Compose service gets: docker-compose.yaml is parsed and
interpolated (scripts/compose_file.py) with generated secrets standing in for .env, then localized: the
container host names (postgres, redis, airflow-apiserver) become 127.0.0.1 and free ports, the container paths
(/opt/airflow/...) files under the stack's temp dir. A setting the file gains that this cannot localize stops the
start, so the file and what is run here cannot drift apart. What the harness adds on top of the file (see
`HARNESS_SETTINGS`) is a short list: loopback ports, the DAG/plugin folders of the checkout, shorter heartbeats.

The sandbox stands in for the cluster (scripts/airflow_stack.py's sandbox and connection parts): cluster
test1/demo1 with history and a live workload, the empty restore target test1/demo1-restore, and, for a scale
run, `clusters - 1` more clusters test1/demo1-002... with history of their own.

    with ProductionStack(clusters=1) as stack:
        run = stack.run_dag("snapshot")           # triggers through /api/v2 and waits for the end state
        stack.kill_triggerer(); stack.start_triggerer()
        stack.crs("backups")                      # through the sandbox's Kubernetes API

Postgres refuses to run as root: as root, it runs as the `postgres` user (or `nobody`) through setpriv, with its
data in a temp dir of its own that user can reach. Every process leads a process group of its own; stop() ends
every group, also after a failed start.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import compose_file
from airflow_stack import (
    CLUSTER,
    FAST,
    FINISHED,
    HOST,
    NAMESPACE,
    ROOT,
    TARGET,
    AirflowApi,
    cluster_entry,
    free_port,
    stop_group,
    write_clusters,
)
from tidb_sandbox.client import SandboxHandle, start_sandbox

# Compose's connection ids (the ones include/clusters.yaml uses): the stack's clusters.yaml names them too.
K8S_CONN_ID, S3_CONN_ID = "kubernetes_default", "tidb_backup_s3"
SERVICES = {"api-server": "airflow-apiserver", "scheduler": "airflow-scheduler",
            "dag-processor": "airflow-dag-processor", "triggerer": "airflow-triggerer", "worker": "airflow-worker",
            "init": "airflow-init"}
# Settings not in docker-compose.yaml, each for a reason of the harness, not of production.
HARNESS_SETTINGS = {
    "AIRFLOW__API__WORKERS": "1",  # 2 cores: one uvicorn worker (production default 4)
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    # A killed triggerer's triggers go to another after this (production default 30 s).
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    # A task whose worker was killed counts as dead after this (production default 300 s), then is retried.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # A task a killed worker had taken from Redis but not started stays queued: nothing heartbeats for it, and
    # Celery redelivers it only after the visibility timeout (24 h). The scheduler requeues it after this
    # (production default 600 s, checked every 120 s; CI once waited the whole 600 s for such a deletion).
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
}
CONTAINER_HOSTS = ("postgres", "redis", "airflow-apiserver")


def _postgres_bin(name: str) -> str:
    """Debian keeps the server binaries under /usr/lib/postgresql/<version>/bin, off PATH: the newest there."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: install the postgresql package (scripts/system-packages.sh does)")
    return path


def run_stamp(run: dict[str, Any]) -> str:
    """The stamp a DAG run puts into the names of the CRs it makes (flows/common.py RUN_STAMP)."""
    return datetime.fromisoformat(run["run_after"].replace("Z", "+00:00")).strftime("%Y%m%d%H%M%S")


def _popen(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        # A session of its own: stop_group/killpg reach the process and every child it forks.
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(condition: Callable[[], Any], what: str, timeout: float, interval: float = 0.5,
          alive: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and alive.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what}: the process exited with {alive.returncode}\n{tail}")
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Postgres:
    """A PostgreSQL server of its own: initdb into a temp dir, 127.0.0.1:port, unix socket in that dir."""

    root: Path
    port: int
    password: str
    user: str = "airflow"
    database: str = "airflow"
    process: subprocess.Popen[bytes] | None = None

    @property
    def _as_owner(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        owner = self._owner()
        return ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups"]

    @staticmethod
    def _owner() -> pwd.struct_passwd:
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise RuntimeError("running as root and there is no postgres or nobody user to run PostgreSQL as")

    def init(self) -> None:
        (self.root / "sock").mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            owner = self._owner()
            for path in (self.root, self.root / "sock", pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run([*self._as_owner, _postgres_bin("initdb"), "-D", str(self.root / "data"), "-U", self.user,
                        f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True)
        pwfile.unlink()

    def start(self) -> None:
        log = self.root / "postgres.log"
        args = [*self._as_owner, _postgres_bin("postgres"), "-D", str(self.root / "data"), "-p", str(self.port),
                "-k", str(self.root / "sock"), "-c", f"listen_addresses={HOST}", "-c", "max_connections=300",
                # A test database: no fsync. A fast shutdown (restart_postgres) is still a clean one.
                "-c", "fsync=off", "-c", "synchronous_commit=off"]
        self.process = _popen(args, log)
        _wait(self._accepts, "PostgreSQL start", 60, alive=self.process, log=log)

    def _accepts(self) -> bool:
        try:
            self.connect("postgres").close()
        except Exception:  # noqa: BLE001 - not up yet, whatever the driver says
            return False
        return True

    def connect(self, database: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(host=HOST, port=self.port, user=self.user, password=self.password,
                                dbname=database or self.database, connect_timeout=5)

    def create_database(self) -> None:
        conn = self.connect("postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients cut, a clean checkpoint, as `pg_ctl stop -m fast`."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop_group(self.process, grace=5)
        stop_group(self.process, grace=5)  # whatever else is left in the group
        self.process = None


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Component:
    """One Airflow process: its command, its environment (its Compose service's), its log, its handle."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    wanted: bool = False  # up unless a test stopped or killed it: the supervisor restarts it when it exits
    restarts: int = 0  # how often the supervisor restarted it (Compose's `restart: always`)

    def start(self) -> None:
        self.wanted = True
        self.process = _popen(self.args, self.log, self.env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: no shutdown, no clean-up, as an OOM kill or a lost node."""
        self.wanted = False
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        stop_group(self.process, grace=5)

    def stop(self) -> None:
        self.wanted = False
        if self.process is not None:
            stop_group(self.process, grace=10)  # then SIGKILL: a stuck warm shutdown must not hold a test

    def revive(self) -> bool:
        """Start it again if it exited on its own while wanted; whether it did."""
        if not self.wanted or self.process is None or self.process.poll() is None:
            return False
        stop_group(self.process, grace=5)  # what it forked and left behind
        self.restarts += 1
        self.start()
        return True


@dataclass
class ProductionStack:
    """The stack; every handle a fault test needs. Use as a context manager, or start()/stop()."""

    workdir: Path | None = None
    clusters: int = 1
    seed_days: float = 40
    settings: dict[str, Any] = field(default_factory=lambda: dict(FAST))  # the sandbox's durations
    workers: int = 2
    worker_concurrency: int = 8
    # More empty restore targets of test1/demo1 besides test1/demo1-restore (a restore needs an empty one).
    extra_targets: tuple[str, ...] = ()
    # Every task's retry delay, set by a cluster policy (the DAGs' own is 2 minutes); None keeps the DAGs'.
    retry_delay_seconds: float | None = 5.0
    extra_env: dict[str, str] = field(default_factory=dict)  # more Airflow settings, for every component
    say: Callable[[str], None] = print

    sandbox: SandboxHandle = field(init=False)
    postgres: Postgres = field(init=False)
    api: AirflowApi = field(init=False)
    config: Path = field(init=False)
    cluster_names: list[str] = field(init=False, default_factory=list)
    components: dict[str, Component] = field(init=False, default_factory=dict)
    triggerers: list[Component] = field(init=False, default_factory=list)
    worker_list: list[Component] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._cleanup = contextlib.ExitStack()
        self._owned_workdir = self.workdir is None
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="tidb-pitr-stack-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home = self.workdir / "airflow"
        self.kubeconfig = self.workdir / "kubeconfig.yaml"  # the sandbox writes it; Airflow's connection reads it
        self.api_port, self.redis_port = free_port(), free_port()

    # --- start and stop ------------------------------------------------------------------------------------------

    def __enter__(self) -> ProductionStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        self.cluster_names = [CLUSTER, *(f"{CLUSTER}-{index:03d}" for index in range(2, self.clusters + 1))]
        # The sandbox seeds its history (half a minute and more) while PostgreSQL starts and Airflow migrates its
        # metadata DB (as long again): the migration needs nothing of the sandbox's.
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-start") as pool:
            sandbox_started = pool.submit(self._start_sandbox)
            try:
                self._start_postgres()
                self._start_redis()
                self.home.mkdir(parents=True, exist_ok=True)
                self.config = write_clusters(self.workdir, [
                    cluster_entry(name, kubernetes_conn_id=K8S_CONN_ID, storage_conn_id=S3_CONN_ID,
                                  targets=[{"name": t} for t in (TARGET, *self.extra_targets)]
                                  if name == CLUSTER else [], tags=["production-stack"])
                    for name in self.cluster_names])
                self._write_policy()
                self._compose = compose_file.load()
                self._variables = self._dotenv()
                self._write_auth()
                self.say("airflow db migrate")
                init = self._component("init", ["db", "migrate"])
                init.start()
                assert init.process is not None
                if init.process.wait(timeout=600) != 0:
                    raise RuntimeError(f"airflow db migrate failed:\n{init.log.read_text()[-3000:]}")
            finally:
                sandbox_started.result()  # its own failure, or wait for it before a failed start is cleaned up
        self._variables.update(self._store_variables())
        for name in ("api-server", "scheduler", "dag-processor"):
            self.components[name] = self._component(name, [name])
            self.components[name].start()
            self._cleanup.callback(self.components[name].stop)
        self.start_triggerer()
        for index in range(self.workers):
            self.start_worker(index)
        self._supervise()
        self.api = AirflowApi(f"http://{HOST}:{self.api_port}", self._variables["_AIRFLOW_WWW_USER_USERNAME"],
                              self._variables["_AIRFLOW_WWW_USER_PASSWORD"])
        self.wait_healthy(timeout=600)
        self.api.login()
        self.say(f"production stack up in {time.monotonic() - started:.0f} s: {self.url} (workdir {self.workdir})")

    def _supervise(self) -> None:
        """Compose's `restart: always` (every Airflow service has it): an Airflow process that exits on its own
        (the scheduler does when PostgreSQL goes away) is started again, as Docker would."""
        import threading

        self._stopping = threading.Event()

        def loop() -> None:
            while not self._stopping.wait(1):
                for component in [*self.components.values(), *self.triggerers, *self.worker_list]:
                    with contextlib.suppress(Exception):
                        if component.revive():
                            self.say(f"{component.name} exited; restarted (restart: always)")

        thread = threading.Thread(target=loop, name="production-stack-supervisor", daemon=True)
        thread.start()
        self._cleanup.callback(thread.join, 10)
        self._cleanup.callback(self._stopping.set)

    def restarts(self) -> dict[str, int]:
        """How often the supervisor restarted each process."""
        return {c.name: c.restarts for c in [*self.components.values(), *self.triggerers, *self.worker_list]}

    def stop(self) -> None:
        """Every process ended (Airflow first, then Redis, PostgreSQL, the sandbox); the temp dirs removed."""
        if getattr(self, "_stopping", None) is not None:
            self._stopping.set()
        for component in [*self.worker_list, *self.triggerers, *self.components.values()]:
            with contextlib.suppress(Exception):
                component.stop()
        self._cleanup.close()
        if self._owned_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _start_sandbox(self) -> None:
        assert self.workdir is not None
        self.say(f"starting the sandbox ({self.clusters} cluster(s), {self.seed_days:g} days of history)")
        self.sandbox = start_sandbox(self.workdir / "sandbox", "--seed-days", str(self.seed_days), "--namespace",
                                     NAMESPACE, "--cluster", CLUSTER, "--restore-target", TARGET, "--kubeconfig",
                                     str(self.kubeconfig), "--no-azurite", settings=self.settings)
        self._cleanup.callback(stop_group, self.sandbox.process)
        for target in self.extra_targets:
            self.sandbox.create_cluster(NAMESPACE, target)  # empty, no workload: a restore target
        for name in self.cluster_names[1:]:
            self.sandbox.create_cluster(NAMESPACE, name, seed_days=self.seed_days, storage_root=name,
                                        workload={"inserts_per_s": 1.0, "updates_per_s": 1.0, "deletes_per_s": 0.2})
        self.say("sandbox up")

    def _start_postgres(self) -> None:
        # Its own temp dir: pytest's tmp dirs are 0700 root's, where the postgres user cannot go.
        root = Path(tempfile.mkdtemp(prefix="tidb-pitr-pg-"))
        self._cleanup.callback(shutil.rmtree, root, True)
        self.postgres = Postgres(root, free_port(), secrets.token_hex(12))
        self.postgres.init()
        self.postgres.start()
        self._cleanup.callback(self.postgres.stop)
        self.postgres.create_database()
        self.say(f"PostgreSQL on {HOST}:{self.postgres.port}")

    def _start_redis(self) -> None:
        assert self.workdir is not None
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found: install the redis-server package "
                               "(scripts/system-packages.sh does)")
        log = redis_dir / "redis.log"
        process = _popen([binary, "--port", str(self.redis_port), "--bind", HOST, "--save", "", "--appendonly",
                          "no", "--dir", str(redis_dir)], log)
        self._cleanup.callback(stop_group, process)
        _wait(lambda: _redis_pong(self.redis_port), "Redis start", 30, alive=process, log=log)

    # --- the environment, from docker-compose.yaml ---------------------------------------------------------------

    def _dotenv(self) -> dict[str, str]:
        """What .env would hold: generated secrets. The backup store's entries follow once the sandbox is up
        (`_store_variables`); until then they are empty, which only the migration sees (it reads none of them)."""
        from cryptography.fernet import Fernet

        return {"POSTGRES_USER": self.postgres.user, "POSTGRES_PASSWORD": self.postgres.password,
                "POSTGRES_DB": self.postgres.database, "FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "_AIRFLOW_WWW_USER_USERNAME": "airflow", "_AIRFLOW_WWW_USER_PASSWORD": secrets.token_hex(8),
                "TIDB_BACKUP_S3_ACCESS_KEY_ID": "", "TIDB_BACKUP_S3_SECRET_ACCESS_KEY": "",
                "TIDB_BACKUP_S3_ENDPOINT_URL": "", "TIDB_BACKUP_S3_REGION": "us-west-1"}

    def _store_variables(self) -> dict[str, str]:
        """.env's backup store: the sandbox's S3."""
        env = self.sandbox.env
        return {"TIDB_BACKUP_S3_ACCESS_KEY_ID": env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                "TIDB_BACKUP_S3_SECRET_ACCESS_KEY": env["TIDB_SANDBOX_S3_SECRET_KEY"],
                "TIDB_BACKUP_S3_ENDPOINT_URL": env["TIDB_SANDBOX_S3_ENDPOINT"]}

    def _write_policy(self) -> None:
        """$AIRFLOW_HOME/config/airflow_local_settings.py (Airflow puts that folder on sys.path): shorter retries."""
        if self.retry_delay_seconds is None:
            return
        folder = self.home / "config"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "airflow_local_settings.py").write_text(
            "from datetime import timedelta\n\n\n"
            "def task_policy(task):  # the production stack's harness: retries in seconds, not minutes\n"
            f"    task.retry_delay = timedelta(seconds={self.retry_delay_seconds})\n"
            "    task.retry_exponential_backoff = False\n")

    def _write_auth(self) -> None:
        """The SimpleAuthManager password file, as airflow-init writes it."""
        path = self.home / "auth" / "passwords.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({self._variables["_AIRFLOW_WWW_USER_USERNAME"]:
                                    self._variables["_AIRFLOW_WWW_USER_PASSWORD"]}))
        path.chmod(0o600)

    def _localize(self, name: str, value: str) -> str:
        assert self.workdir is not None
        hosts = {"postgres": f"{HOST}:{self.postgres.port}", "redis": f"{HOST}:{self.redis_port}",
                 "airflow-apiserver": f"{HOST}:{self.api_port}"}
        value = re.sub(r"(?<=[@/])(postgres|redis|airflow-apiserver)(:\d+)?(?=/)",
                       lambda m: hosts[m.group(1)], value)
        paths = {"/opt/airflow/include/clusters.yaml": str(self.config),
                 "/opt/airflow/secrets/kubeconfig.yaml": str(self.kubeconfig),
                 "/opt/airflow/auth/passwords.json": str(self.home / "auth" / "passwords.json")}
        for container, local in paths.items():
            value = value.replace(container, local)
        if "/opt/airflow" in value or re.search(rf"[@/]({'|'.join(CONTAINER_HOSTS)})\b", value):
            raise RuntimeError(f"docker-compose.yaml: {name}={value!r} names a container path or host the "
                               "production stack does not know how to run locally; teach _localize about it")
        return value

    def _component_env(self, service: str) -> dict[str, str]:
        # Nothing Airflow-related from outside (under pytest, the session's own home and DB).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TIDB_PITR"))}
        composed = compose_file.service_environment(self._compose, SERVICES[service], self._variables)
        env.update({name: self._localize(name, value) for name, value in composed.items()})
        env.update({
            "AIRFLOW_HOME": str(self.home),
            # The image's folders (/opt/airflow/dags, plugins), which Compose mounts from the checkout.
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__API__HOST": HOST, "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://{HOST}:{self.api_port}",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), env.get("PYTHONPATH", "")]),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            **HARNESS_SETTINGS, **self.extra_env})
        return env

    def _component(self, name: str, args: list[str], service: str | None = None) -> Component:
        service = service or name
        airflow = str(Path(sys.executable).with_name("airflow"))
        return Component(name, [airflow, *args], self._component_env(service), self.home / f"{name}.log")

    # --- per-process handles -------------------------------------------------------------------------------------

    def start_triggerer(self) -> int:
        """One more triggerer process; returns its index in `triggerers`."""
        index = len(self.triggerers)
        component = self._component(f"triggerer-{index}", ["triggerer"], service="triggerer")
        component.start()
        self.triggerers.append(component)
        return index

    def kill_triggerer(self, index: int | None = None) -> None:
        """SIGKILL a triggerer (the last live one by default)."""
        self._pick(self.triggerers, index).kill()

    def live_triggerers(self) -> list[Component]:
        return [t for t in self.triggerers if t.alive()]

    def start_worker(self, index: int) -> None:
        """Start (or start again) Celery worker `index` (hostname worker<index>@...)."""
        component = self._component(f"worker-{index}", ["celery", "worker", "--celery-hostname",
                                                         f"worker{index}@%h", "--concurrency",
                                                         str(self.worker_concurrency)], service="worker")
        if index < len(self.worker_list):
            self.worker_list[index].stop()
            self.worker_list[index] = component
        else:
            self.worker_list.append(component)
        mark = component.log.stat().st_size if component.log.exists() else 0
        component.start()
        _wait(lambda: b" ready." in component.log.read_bytes()[mark:], f"Celery worker {index} start", 300,
              alive=component.process, log=component.log)

    def kill_worker(self, index: int) -> None:
        """SIGKILL Celery worker `index` and the task processes it forked."""
        self.worker_list[index].kill()

    def restart_scheduler(self) -> None:
        """SIGTERM the scheduler, wait until it is gone, start it again; returns once it is healthy."""
        scheduler = self.components["scheduler"]
        scheduler.stop()
        scheduler.start()
        self.wait_healthy()

    def restart_postgres(self) -> None:
        """PostgreSQL fast shutdown and start again, same port and data; returns once it accepts connections."""
        self.postgres.stop()
        self.postgres.start()

    @staticmethod
    def _pick(components: list[Component], index: int | None) -> Component:
        if index is not None:
            return components[index]
        live = [c for c in components if c.alive()]
        if not live:
            raise RuntimeError("no live process of that kind")
        return live[-1]

    # --- waiting, the REST API, the CRs, the DB ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def health(self) -> dict[str, Any]:
        try:
            return self.api.call("GET", "/api/v2/monitor/health", auth=False) or {}
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return {}

    def wait_healthy(self, timeout: float = 300) -> None:
        """api-server answering; metadatabase, scheduler, triggerer, dag-processor healthy; workers running."""
        def healthy() -> bool:
            for component in self.components.values():
                if component.restarts > 20:
                    raise RuntimeError(f"{component.name} keeps exiting:\n{component.log.read_text()[-3000:]}")
            health = self.health()
            parts = [health.get(k, {}).get("status") for k in ("metadatabase", "scheduler", "triggerer",
                                                                 "dag_processor")]
            return (all(p == "healthy" for p in parts) and all(c.alive() for c in self.components.values())
                    and all(w.alive() for w in self.worker_list))

        _wait(healthy, "Airflow healthy", timeout, interval=1)

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        """The REST API, retried while it is unreachable or answers 5xx (a restart, PostgreSQL away)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api.call(method, path, body)
            except urllib.error.HTTPError as err:
                if err.code < 500 or time.monotonic() > deadline:
                    raise
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(1)

    def dag_id(self, kind: str, cluster: str = CLUSTER) -> str:
        from tidb_pitr.config import load_config

        return next(c for c in load_config(self.config).clusters if c.name == cluster).dag_id(kind)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def wait_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        def parsed() -> bool:
            known = {d["dag_id"] for d in self.call("GET", "/api/v2/dags?limit=1000")["dags"]}
            return set(dag_ids) <= known

        _wait(parsed, f"DAGs {dag_ids} parsed", timeout, interval=2)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A manual run with `conf`; its run id. The DAG is unpaused first, which makes the scheduler start
        its latest slot's run too if it has a schedule and was paused (see run_scheduled)."""
        self.wait_dags([dag_id])
        self.unpause(dag_id)
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        """The run once it ended (success or failed)."""
        return _wait(lambda: (r := self.run_state(dag_id, run_id))["state"] in FINISHED and r,
                     f"{dag_id} run {run_id} end", timeout, interval=2)

    def run_dag(self, kind: str, conf: dict[str, Any] | None = None, cluster: str = CLUSTER,
                timeout: float = 600) -> dict[str, Any]:
        """Trigger the cluster's `kind` DAG (log_guard, snapshot, retention, restore, ...) and wait for its end."""
        dag_id = self.dag_id(kind, cluster)
        return self.wait_run(dag_id, self.trigger(dag_id, conf), timeout)

    def run_scheduled(self, kind: str, cluster: str = CLUSTER, timeout: float = 600) -> dict[str, Any]:
        """Unpause a scheduled DAG and follow the run the scheduler starts for its latest slot (catchup=False);
        trigger one only when no slot has passed. Triggering as well would make two runs."""
        return self.wait_run(*self.start_scheduled(kind, cluster), timeout)

    def start_scheduled(self, kind: str, cluster: str = CLUSTER) -> tuple[str, str]:
        """run_scheduled without the wait: (dag_id, run_id) of the run that starts on unpause."""
        dag_id = self.dag_id(kind, cluster)
        self.wait_dags([dag_id])
        self.unpause(dag_id)

        def scheduled() -> str | None:
            runs = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=50&order_by=run_after")["dag_runs"]
            return next((r["dag_run_id"] for r in reversed(runs) if r["run_type"] == "scheduled"), None)

        try:
            run_id = _wait(scheduled, f"{dag_id} scheduled run", 60, interval=1)
        except TimeoutError:
            run_id = self.trigger(dag_id)
        return dag_id, run_id

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        return self.api.xcom(dag_id, run_id, task_id)

    def crs(self, plural: str, namespace: str = NAMESPACE, group: str = "pingcap.com",
            version: str = "v1alpha1", timeout: float = 60) -> list[dict[str, Any]]:
        """Backups/restores/compactbackups as the sandbox's Kubernetes API lists them (retried through faults)."""
        import yaml

        kubeconfig = yaml.safe_load(self.sandbox.kubeconfig.read_text())
        server = kubeconfig["clusters"][0]["cluster"]["server"].rstrip("/")
        token = kubeconfig["users"][0]["user"].get("token", "")
        request = urllib.request.Request(f"{server}/apis/{group}/{version}/namespaces/{namespace}/{plural}",
                                         headers={"Authorization": f"Bearer {token}"})

        def listed() -> list[dict[str, Any]] | None:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read())["items"] or [{}]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return None  # a 5xx from the fault injection, or a cut connection: once more

        items = _wait(listed, f"list {plural}", timeout)
        return [item for item in items if item]

    def sql(self, query: str, *args: Any, timeout: float = 60) -> list[tuple[Any, ...]]:
        """A query on the metadata database (retried while PostgreSQL is away)."""
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = self.postgres.connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute(query, args)
                        return cur.fetchall()
                finally:
                    conn.close()
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def fired_events(self, dag_id: str, run_id: str) -> int:
        """How many events the triggers of this run fired, over every triggerer (their per-trigger logs)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return sum(path.read_text(errors="replace").count("Trigger fired event")
                   for path in folder.rglob("*.trigger.*"))

    def worker_of(self, pid: int) -> int | None:
        """The index of the Celery worker whose process group holds `pid` (a task's process), if any."""
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return next((i for i, w in enumerate(self.worker_list) if w.process and w.process.pid == group), None)

    def logs(self, pattern: str = "*.log") -> Iterator[Path]:
        """The processes' own logs and the task and trigger logs, to read after a failure."""
        yield from sorted(self.home.rglob(pattern))


if __name__ == "__main__":  # python scripts/production_stack.py: up, healthy, then down (a smoke check)
    with ProductionStack() as up:
        print(json.dumps(up.health(), indent=1))
