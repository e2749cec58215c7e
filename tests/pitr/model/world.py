"""The model-based soak: a hypothesis `RuleBasedStateMachine` of the project's world, and the invariants it checks
after every step.

The world is one source cluster on a manual-clock sandbox (its own process, `start_soak_sandbox`), its Airflow
DAGs built from a real `ClusterConfig` by the factory and run with `dag.test()` as a user's trigger or the
scheduler's slot would run them, a scratch target for drills and a pool of empty targets for restores. The rules
are what a user does (restores of every kind, drills, the guard with `start_new_log_backup`, pause/resume/stop of
the log backup), what the schedule does (guard, snapshot slot, retention, compaction and the logical backup, in
Airflow's order when time passes), what the sandbox breaks on purpose (`tidb_sandbox.faults`) and time itself
(minutes to days).

While a DAG runs, `SimClock.passing` moves the sandbox's clock forward event by event (never more than `PACE_CAP`
seconds at once), and this process's wall clock with it (time_machine): the product compares its own now with
the cluster's TSOs, as it does beside a real cluster. The invariants are plain functions over the world; a failure
names the invariant, and hypothesis prints the shrunk sequence as a replayable program.

Used by tests/pitr/e2e/test_soak_states.py (a small budget in `make test`) and benchmarks/soak_states.py
(`make soak-states`).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from tidb_sandbox.client import SandboxHandle, sql_params, start_sandbox

ROOT = Path(__file__).resolve().parents[3]
RENDER = ROOT / "tests" / "pitr" / "unit" / "render_payloads.mjs"

# The sandbox's pacing for weeks of virtual time: upstream's intervals (TiKV flushes the log every 3 min, the
# operator's tracker reads the checkpoint every minute) rather than the suite's scaled ones, and the workload and
# resync woken every 5 minutes: a day costs about 20 s of CPU instead of two minutes (measured with the probe in
# the commit that added this). Jobs stay short (FAST_SETTINGS) so a DAG run passes few events.
SANDBOX_SETTINGS: dict[str, Any] = {
    "checkpoint_interval": 180, "tracker_interval": 60, "storage_checkpoint_lag": 60, "resync_interval": 300,
    "workload_interval": 300, "gc_life_time": 40 * 86400,
}
WORKLOAD = {"inserts_per_s": 0.02, "updates_per_s": 0.01, "deletes_per_s": 0.002}
SEED_DAYS = 3
RETENTION = "1d"
TARGETS = 2  # empty restore targets kept ready; a used one is wiped and made again when the pool runs dry
PACE_CAP = 60.0  # the most virtual seconds one pacing step passes while a DAG runs
# The least: a job polling every 0.2 s (a hung backup) would otherwise make each step 0.2 s and a wait of hours take
# an hour; `advance` still runs every event inside the span in time order.
PACE_MIN = 5.0
HANG_FOR = 1800.0  # a hung job is freed after this long (a DBA kills its pod): the product's 24 h waits stay unpaid
PACE_EVERY = 0.01  # real seconds between pacing steps
CHECK_WINDOW_EVERY = 8  # restore a random time of the window into a fresh target every this many steps
MANAGED_BY = "tidb-pitr-airflow"
FOREIGN_KEY = "dba-notes/keep-me.txt"
FOREIGN_DUMP = "backup-2020-01-01T00:00:00Z.tgz"  # a DBA's own Dumpling archive beside the project's, named as theirs


def start_soak_sandbox(workdir: Path) -> SandboxHandle:
    """The soak's own sandbox: manual clock, no demo workload, no Azurite (the soak's clusters use S3)."""
    return start_sandbox(workdir, "--clock", "manual", "--rng-seed", "7", "--no-azurite", "--inserts-per-s", "0",
                         "--updates-per-s", "0", "--deletes-per-s", "0", settings=SANDBOX_SETTINGS)


def soak_connections(sandbox: SandboxHandle, prefix: str = "soak") -> dict[str, str]:
    """Airflow connections (AIRFLOW_CONN_*) to the soak sandbox's Kubernetes API and S3, as a deployment has."""
    env = sandbox.env
    conns = {"kubernetes": f"{prefix}_k8s", "s3": f"{prefix}_s3"}
    os.environ[f"AIRFLOW_CONN_{conns['kubernetes'].upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(sandbox.kubeconfig)}})
    os.environ[f"AIRFLOW_CONN_{conns['s3'].upper()}"] = json.dumps(
        {"conn_type": "aws", "login": env["TIDB_SANDBOX_S3_ACCESS_KEY"], "password": env["TIDB_SANDBOX_S3_SECRET_KEY"],
         "extra": {"endpoint_url": env["TIDB_SANDBOX_S3_ENDPOINT"], "region_name": env["TIDB_SANDBOX_S3_REGION"]}})
    return conns


def sql_connection(conn_id: str, url: str) -> str:
    params = sql_params(url)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "mysql", "host": params["host"], "port": params["port"], "login": params["user"],
         "password": params["password"]})
    return conn_id


# --- time ------------------------------------------------------------------------------------------------------

class SimClock:
    """The manual-clock sandbox's time, and this process's wall clock held on it (time_machine, not monotonic)."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._travel = time_machine.travel(self._at(sandbox.clock()), tick=False)
        self._coordinates = self._travel.start()
        self.passed = 0.0  # virtual seconds passed since this clock was made

    @staticmethod
    def _at(answer: dict[str, Any]) -> datetime:
        return datetime.fromtimestamp(answer["time"], UTC)

    def now(self) -> datetime:
        return self._at(self.sandbox.clock())

    def advance(self, seconds: float) -> None:
        with self._lock:
            answer = self.sandbox.advance(seconds)
            self._coordinates.move_to(self._at(answer), tick=False)
            self.passed += seconds

    @contextmanager
    def passing(self, after: tuple[float, Callable[[], None]] | None = None) -> Iterator[None]:
        """While the block runs, time passes: to the sandbox's next event each step (PACE_MIN to PACE_CAP seconds);
        `after` = (seconds, action): the action runs once that much virtual time has passed."""
        stop = threading.Event()
        failures: list[BaseException] = []
        due = self.passed + after[0] if after else None

        def pace() -> None:
            nonlocal due
            while not stop.wait(PACE_EVERY):
                try:
                    wake = self.sandbox.clock().get("nextWake")
                    self.advance(min(PACE_CAP, max(PACE_MIN, wake if wake is not None else PACE_CAP)))
                    if due is not None and after is not None and self.passed >= due:
                        due = None
                        after[1]()
                except BaseException as exc:  # noqa: BLE001 - reported by the caller
                    failures.append(exc)
                    return

        thread = threading.Thread(target=pace, name="soak-clock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]

    def close(self) -> None:
        self._travel.stop()


# --- the world -------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One DAG run as the model saw it."""

    kind: str
    dag_id: str
    run_id: str
    state: str
    note: str
    conf: dict[str, Any]
    started: datetime
    expect: str = ""  # what the model expected: "refused", "restored", "" (anything)
    # For an expected restore that succeeded: (source at T, target) as `/rows` counted them the moment it ended,
    # before a later restore in the same step (the window check) may wipe and refill that target.
    compared: tuple[dict[str, Any], dict[str, Any]] | None = None
    checked: bool = False
    restore_ts: int | None = None  # a restore's: the time asked, the target, the records it held before
    target: str = ""
    target_held: int | None = None


@dataclass
class Stats:
    """What the soak counts across sequences (the benchmark's JSON)."""

    sequences: int = 0
    steps: int = 0
    simulated_seconds: float = 0.0
    invariant_checks: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    window_checks: int = 0
    dag_runs: int = 0


STATS = Stats()


class World:
    """One source cluster, its targets and DAGs on the soak sandbox; what the model knows about them."""

    def __init__(self, sandbox: SandboxHandle, clock: SimClock, conns: dict[str, str], *, compaction: bool) -> None:
        from tidb_pitr.hooks.kubernetes import TidbOperatorHook

        self.sandbox, self.clock, self.conns = sandbox, clock, conns
        tag = os.urandom(3).hex()
        self.namespace, self.name = f"soak-{tag}", f"src-{tag}"
        described = sandbox.create_cluster(self.namespace, self.name, seed_days=SEED_DAYS, storage="s3",
                                           storage_root=self.name, workload=WORKLOAD)
        self.source_sql = sql_connection(f"soak_sql_{tag}", described["sql"])
        self.scratch = f"scratch-{tag}"
        self.targets = [f"target{i}-{tag}" for i in range(TARGETS)]
        self.full: set[str] = set()  # targets a restore wrote into
        for name in [self.scratch, *self.targets]:
            self._make_target(name)
        self.compaction = compaction
        self.config = self._config()
        self.dags = self._dags()
        self.hook = TidbOperatorHook(conns["kubernetes"], api_group="pingcap.com")
        self.runs: list[Run] = []
        self.foreign_crs: dict[tuple[str, str], str] = {}  # (plural, name) -> why it is there
        self.foreign_objects: set[str] = set()
        self.last_schedule: dict[str, datetime] = {}
        self.faults: dict[str, Any] = {}
        self.log_stopped = False
        self.started = clock.now()
        self.make_foreign()

    # -- setup
    def _make_target(self, name: str) -> None:
        described = self.sandbox.create_cluster(self.namespace, name, api_group="pingcap.com")
        sql_connection(self._sql_id(name), described["sql"])

    @staticmethod
    def _sql_id(name: str) -> str:
        return f"soak_sql_{name.replace('-', '_')}"

    def _config(self) -> Any:
        from tidb_pitr.config import ClusterConfig

        targets = [{"name": t, "sql_conn_id": self._sql_id(t)} for t in self.targets]
        return ClusterConfig.model_validate({
            "name": self.name, "namespace": self.namespace, "api_group": "pingcap.com",
            "kubernetes_conn_id": self.conns["kubernetes"], "retention": RETENTION, "compaction": self.compaction,
            "sql_conn_id": self.source_sql,
            "storage": {"provider": "s3", "bucket": "my-bucket", "root": self.name, "region": "us-west-1",
                        "secret_name": "s3-secret", "conn_id": self.conns["s3"]},
            "restore_targets": [*targets, {"name": self.scratch, "scratch": True,
                                           "sql_conn_id": self._sql_id(self.scratch)}],
            "drill": {"target": self.scratch, "mode": "random"},
            "logical_backup": {"keep": {"count": 2}},  # Dumpling archives under <root>/logical, the newest two kept
        })

    def _dags(self) -> dict[str, Any]:
        from tidb_pitr.factory import dags_for_cluster

        prefix = self.config.dag_id("")
        dags = {dag.dag_id.removeprefix(prefix): dag for dag in dags_for_cluster(self.config)}
        for dag in dags.values():  # a retry runs at once: the soak tests retries, not Airflow's delays
            for task in dag.tasks:
                task.retry_delay = timedelta(0)
                task.retry_exponential_backoff = False
        # Every param's default, as the trigger form sends them: dag.test() keeps a run's conf in the DAG object's
        # params, so a later run of the same object would otherwise inherit an earlier run's restore_tso.
        self._serialised: set[str] = set()  # dag_ids serialised into the DB since the DAGs were built
        self.defaults = {kind: {key: copy.deepcopy(param.value) for key, param in dag.params.items()}
                         for kind, dag in dags.items()}
        return dags

    def reconfigure(self, **changes: Any) -> None:
        """A changed clusters.yaml: the same cluster with `changes`, its DAGs built again as a new parse would."""
        self.config = self.config.model_copy(update=changes)
        self.dags = self._dags()

    def start_restore_by_hand(self, target: str, ts: int) -> str:
        """A DBA's own pitr Restore CR into `target` (not the project's: no managed-by label)."""
        snapshots, logs = self.views()
        base = max((v for v in snapshots if v.phase == "Complete" and v.commit_ts and v.commit_ts <= ts
                    and v.backup_path), key=lambda v: v.commit_ts)
        log = next(v for v in logs if v.backup_path)
        name = f"dba-restore-{os.urandom(2).hex()}"
        s3 = {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket"}
        self.hook.api.create_namespaced_custom_object("pingcap.com", "v1alpha1", self.namespace, "restores", {
            "metadata": {"name": name, "labels": {"team": "dba"}},
            "spec": {"restoreMode": "pitr", "br": {"cluster": target}, "pitrRestoredTs": str(ts),
                     "pitrFullBackupStorageProvider": {"s3": {**s3, "prefix": _prefix(base.backup_path)}},
                     "s3": {**s3, "prefix": _prefix(log.backup_path)}}})
        self.foreign_crs[("restores", name)] = f"a DBA's restore into {target}"
        return name

    def make_foreign(self) -> None:
        """What a DBA made beside the project: a snapshot Backup CR of their own, and an object in the bucket."""
        name = f"dba-snap-{os.urandom(2).hex()}"
        self.hook.api.create_namespaced_custom_object("pingcap.com", "v1alpha1", self.namespace, "backups", {
            "metadata": {"name": name, "labels": {"team": "dba"}},
            "spec": {"backupType": "full", "br": {"cluster": self.name},
                     "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1",
                            "bucket": "my-bucket", "prefix": f"{self.name}/dba-{name}"}}})
        self.foreign_crs[("backups", name)] = "a DBA's snapshot"
        for key in (f"{self.name}/{FOREIGN_KEY}", f"{self.name}/logical/{FOREIGN_DUMP}"):
            self._s3().put_object(Bucket="my-bucket", Key=key, Body=b"not the project's")
            self.foreign_objects.add(key)

    def _s3(self) -> Any:
        import boto3

        env = self.sandbox.env
        return boto3.client("s3", endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"],
                            region_name=env["TIDB_SANDBOX_S3_REGION"],
                            aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                            aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"])

    def close(self) -> None:
        for name in [*self.targets, self.scratch, self.name]:
            self.sandbox.delete_cluster(self.namespace, name)

    # -- running DAGs
    def run(self, kind: str, conf: dict[str, Any] | None = None, *, expect: str = "",
            after: tuple[float, Callable[[], None]] | None = None) -> Run:
        """Run one DAG with `dag.test()` while time passes; the run as the model records it."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        dag = self.dags[kind]
        if dag.dag_id not in self._serialised:  # dag.test() runs only DAGs it finds serialised (tests' run_dag)
            from airflow.dag_processing.bundles.manager import DagBundlesManager
            from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

            DagBundlesManager().sync_bundles_to_db()
            bag = DagBag(dag_folder=os.devnull, collect_dags=False)
            bag.bag_dag(dag)
            sync_bag_to_db(bag, "dags-folder", None)
            self._serialised.add(dag.dag_id)
        started = self.clock.now()
        with self.clock.passing(after):
            dag.test(run_conf={**self.defaults[kind], **(conf or {})})
        with create_session() as session:
            found = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id).order_by(DagRun.id.desc()).first()
            run = Run(kind, dag.dag_id, found.run_id, str(found.state), found.note or "", dict(conf or {}), started,
                      expect)
        self.runs.append(run)
        STATS.dag_runs += 1
        return run

    def xcom(self, run: Run, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id,
                                                     key=key)).first()
            return XComModel.deserialize_value(row) if row is not None else None

    def set_faults(self, **faults: Any) -> None:
        self.sandbox.set_faults(**faults)
        self.faults.update(faults)

    def clear_faults(self) -> None:
        if self.faults:
            self.sandbox.clear_faults()
            self.faults = {}

    # -- what is there
    def crs(self, plural: str) -> list[dict[str, Any]]:
        return self.hook.list(plural, self.namespace)

    def views(self) -> tuple[list[Any], list[Any]]:
        from tidb_pitr.cr.model import BackupView

        views = [BackupView.from_cr(o) for o in self.crs("backups")]
        mine = [v for v in views if v.cluster == self.name]
        return [v for v in mine if v.mode == "snapshot"], [v for v in mine if v.mode == "log"]

    def status(self) -> dict[str, Any]:
        """What the guard would publish now (the page's source): window with gaps, RPO, retention plan."""
        from tidb_pitr.flows.tasks.guard_status import cluster_status

        return cluster_status(self.config)

    def window(self) -> tuple[int, int, list[tuple[int, int]]] | None:
        """The published window now: (earliest ts, latest ts, gaps as (from ts, to ts)); None when there is none."""
        window = self.status()["window"]
        earliest, latest = (window.get(end) or {} for end in ("earliest", "latest"))
        if not earliest.get("ts") or not latest.get("ts"):
            return None
        gaps = [(int(g["from"]["ts"]), int(g["to"]["ts"])) for g in window.get("gaps") or []
                if isinstance(g.get("from"), dict) and isinstance(g.get("to"), dict)]
        return int(earliest["ts"]), int(latest["ts"]), gaps

    def rows(self, name: str, as_of: int | None = None) -> dict[str, Any]:
        query = f"?rows=false{f'&asOf={as_of}' if as_of is not None else ''}"
        return self.sandbox.call("GET", f"/clusters/{self.namespace}/{name}/rows{query}")

    def empty_target(self) -> str:
        """An empty restore target: one not yet used, or a used one wiped (deleted and made again, as a DBA would)."""
        for name in self.targets:
            if name not in self.full:
                return name
        name = self.targets[0]
        # A DBA wipes it: the cluster and the CRs that name it go (the sandbox deletes a cluster's CRs with it).
        for key, why in list(self.foreign_crs.items()):
            if why.endswith(f" into {name}"):
                del self.foreign_crs[key]
        self.sandbox.delete_cluster(self.namespace, name)
        self._make_target(name)
        self.full.discard(name)
        return name

    def payload(self) -> dict[str, Any]:
        """The page's API answer for this cluster, as `GET /api/clusters` builds it (ui/app.py), validated."""
        from airflow.utils.session import create_session
        from tidb_pitr.ui.app import cluster_entry
        from tidb_pitr.ui.payload import response

        now = datetime.now(UTC)
        with create_session() as session:
            entry = cluster_entry(session, self.config, now, set(self.config_dag_ids()))
        return response(now, [entry])

    def config_dag_ids(self) -> list[str]:
        return [dag.dag_id for dag in self.dags.values()]


# --- invariants ------------------------------------------------------------------------------------------------

def _prefix(backup_path: str) -> str:
    """`s3://my-bucket/a/b` -> `a/b`."""
    return backup_path.split("://", 1)[-1].split("/", 1)[-1].rstrip("/")


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def nothing_foreign_deleted(world: World) -> list[str]:
    """No CR and no object this project did not make is ever deleted."""
    problems = []
    alive = {(plural, o["metadata"]["name"]) for plural in {p for p, _ in world.foreign_crs}
             for o in world.crs(plural)}
    problems += [f"{plural}/{name} ({why}) is gone" for (plural, name), why in world.foreign_crs.items()
                 if (plural, name) not in alive]
    s3 = world._s3()
    for key in world.foreign_objects:
        try:
            s3.head_object(Bucket="my-bucket", Key=key)
        except Exception as exc:  # noqa: BLE001 - any answer but the object is the finding
            problems.append(f"s3://my-bucket/{key} is gone ({type(exc).__name__})")
    return problems


def at_most_one_log_backup(world: World) -> list[str]:
    """At most one log backup of the cluster is live (Running, Paused or RetryFailed) at any time."""
    _, logs = world.views()
    live = [v.name for v in logs if v.phase in ("Running", "Paused", "RetryFailed")]
    return [f"{len(live)} live log backups: {', '.join(sorted(live))}"] if len(live) > 1 else []


def one_cr_per_run(world: World) -> list[str]:
    """A retry never makes a second CR: every run's CRs, by kind, number at most one that has not failed (after a
    Failed attempt a retry makes a new one by design and the failed one stays for the record: operators/backup.py)."""
    from tidb_pitr.cr.api import LABEL_RUN
    from tidb_pitr.cr.names import run_label

    made: Counter[tuple[str, str]] = Counter()
    by_label = {run_label(r.dag_id, r.run_id): r for r in world.runs}
    for plural in ("backups", "restores", "compactbackups"):
        for obj in world.crs(plural):
            label = _labels(obj).get(LABEL_RUN)
            failed = ((obj.get("status") or {}).get("phase") or "") in ("Failed", "Invalid")
            if label in by_label and not failed:
                made[(plural, label)] += 1
    return [f"run {by_label[label].run_id} of {by_label[label].kind} made {count} {plural} that have not failed"
            for (plural, label), count in made.items() if count > 1]


def refused_runs_say_why(world: World) -> list[str]:
    """Every refused restore says why in its note, with the window, and made no CR."""
    from tidb_pitr.cr.api import LABEL_RUN
    from tidb_pitr.cr.names import run_label

    problems = []
    labels = {_labels(o).get(LABEL_RUN) for o in world.crs("restores")}
    for run in world.runs:
        if run.expect != "refused":
            continue
        if run.state != "failed":
            problems.append(f"{run.kind} {run.run_id} ({run.conf}) was to be refused but ended {run.state}: "
                            f"{run.note!r}")
            continue
        if not run.note.strip():
            problems.append(f"refused {run.kind} {run.run_id} has no note")
        elif "window" not in run.note.lower() and "recoverable" not in run.note.lower():
            problems.append(f"refused {run.kind} {run.run_id}: its note gives no window: {run.note!r}")
        if run_label(run.dag_id, run.run_id) in labels:
            problems.append(f"refused {run.kind} {run.run_id} made a Restore CR")
    return problems


def window_within_what_exists(world: World) -> list[str]:
    """No time outside what the CRs hold is claimed restorable: the published window starts at or after a Complete
    snapshot of the cluster and ends at or before the live log's checkpoint."""
    window = world.window()
    if window is None:
        return []
    earliest, latest, _ = window
    snapshots, logs = world.views()
    complete = [v.commit_ts for v in snapshots if v.phase == "Complete" and v.commit_ts]
    checkpoints = [v.checkpoint_ts for v in logs if v.checkpoint_ts]
    problems = []
    if not complete or earliest < min(complete):
        problems.append(f"earliest {earliest} is before every Complete snapshot ({sorted(complete)[:3]})")
    if not checkpoints or latest > max(checkpoints):
        problems.append(f"latest {latest} is past every log checkpoint ({sorted(checkpoints)[-3:]})")
    return problems


def window_kept_after_retention(world: World) -> list[str]:
    """After a successful retention the window still reaches back to now - retention, when it did before, unless a
    gap or a failure is reported."""
    from tidb_pitr.tso import dt_to_tso

    last = next((r for r in reversed(world.runs) if r.kind == "retention"), None)
    if last is None or last.state != "success" or getattr(last, "checked", False):
        return []
    last.checked = True  # type: ignore[attr-defined]
    before = getattr(last, "window_before", None)
    window = world.window()
    if before is None or window is None:
        return []
    policy = dt_to_tso(last.started - world.config.retention)
    if before[0] <= policy and window[0] > policy and not window[2]:
        return [f"retention {last.run_id} moved the earliest time from {before[0]} to {window[0]}, past the "
                f"policy's {policy}, and reported no gap: {last.note!r}"]
    return []


def page_renders(world: World) -> list[str]:
    """The page's API answers for the state and its payload renders under node with the bundle."""
    node = shutil.which("node")
    if node is None:
        return ["node is needed to render the page's payload"]
    try:
        payload = world.payload()
    except Exception as exc:  # noqa: BLE001 - the API's 500 is the finding
        return [f"the page's API failed: {type(exc).__name__}: {exc}"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump({"payloads": [payload]}, file)
    try:
        out = subprocess.run([node, str(RENDER), file.name], capture_output=True, text=True, timeout=120, cwd=ROOT)
    finally:
        os.unlink(file.name)
    if out.returncode != 0:
        return [f"the bundle's render exited {out.returncode}: {out.stderr[-800:]}"]
    cards = [json.loads(line) for line in out.stdout.split("\n") if line]
    problems = [f"card {c.get('id')}: {c['thrown'][:800]}" for c in cards if "thrown" in c]
    if len(cards) != 1:
        problems.append(f"{len(cards)} cards rendered for one cluster")
    return problems


REPUBLISHING = frozenset({"log_guard", "snapshot", "retention", "restore", "drill", "log_control"})


def page_reflects_the_last_run(world: World) -> list[str]:
    """After a DAG that changes what the page shows (it publishes the status again at its end), the page's status
    was written after that run began: the page is right at once, not at the guard's next run."""
    last = world.runs[-1] if world.runs else None
    if last is None or last.kind not in REPUBLISHING:
        return []
    status = (world.payload()["clusters"][0].get("status")) or {}
    written = status.get("generated_at")
    if not written:
        return [f"after {last.kind} {last.run_id} the page shows no status"]
    if datetime.fromisoformat(written.replace("Z", "+00:00")) < last.started - timedelta(seconds=1):
        return [f"after {last.kind} {last.run_id} (began {last.started.isoformat()}) the page shows the status "
                f"of {written}"]
    return []


def passed_drills_compared_every_table(world: World) -> list[str]:
    """A drill that passed compared every table of the source at its time, by content."""
    problems = []
    for run in world.runs:
        if run.kind != "drill" or getattr(run, "record", None) is None:
            continue
        record = run.record  # type: ignore[attr-defined]
        if record.get("verdict") != "passed":
            continue
        compared, tables = record.get("tables_compared") or 0, record.get("tables") or []
        missing = ((record.get("comparison") or {}).get("missing")) or []
        if not compared or compared < len(tables) or missing or record.get("compared_how") == "not compared":
            problems.append(f"drill {run.run_id} passed comparing {compared} of {len(tables)} tables "
                            f"({record.get('compared_how')}, missing {missing}): {record.get('summary')}")
    return problems


def restores_equal_the_source(world: World) -> list[str]:
    """Every restore the model expected to succeed (a time inside the window, an empty target, no fault) did, and
    the target held exactly what the source held at that time when it ended."""
    problems = []
    for run in world.runs:
        if run.expect != "restored" or run.checked:
            continue
        run.checked = True
        if run.state != "success" or run.compared is None:
            problems.append(f"restore {run.run_id} of a time inside the window into an empty target ended "
                            f"{run.state}: {run.note!r}")
            continue
        source, restored = run.compared
        if (source["digest"], source["count"]) != (restored["digest"], restored["count"]):
            problems.append(f"restore {run.run_id} to {run.restore_ts}: target {run.target} holds "
                            f"{restored['count']} records ({run.target_held} before the run), the "
                            f"source held {source['count']} then (digests differ); window now {world.window()}; "
                            f"note {run.note!r}")
    return problems


INVARIANTS: tuple[Callable[[World], list[str]], ...] = (
    nothing_foreign_deleted, at_most_one_log_backup, one_cr_per_run, refused_runs_say_why,
    window_within_what_exists, window_kept_after_retention, restores_equal_the_source,
    passed_drills_compared_every_table, page_renders, page_reflects_the_last_run,
)


class InvariantBroken(AssertionError):
    """An invariant failed after a step: its name and what it found."""


# --- the machine -----------------------------------------------------------------------------------------------

# What a step may do. The first is what hypothesis's first, simplest sequence repeats (and what a failing one shrinks
# towards): a DBA's own backup made or deleted, which runs no DAG, so that sequence costs seconds, not minutes.
ACTIONS = (
    "a_dba_makes_or_deletes_a_backup", "time_passes", "snapshot_slot", "retention_run", "guard_run", "compaction_run",
    "logical_backup_run", "change_retention",
    "restore_inside_the_window", "restore_at_an_edge", "restore_outside_the_window", "restore_into_a_full_target",
    "restore_into_a_busy_target", "dry_run", "drill", "guard_starts_a_new_log_backup", "log_control",
    "api_errors_during_a_run", "a_snapshot_job_fails_or_hangs", "a_restore_fails_or_stops_part_way",
    "tikv_pauses_the_log_on_an_error", "a_log_job_pod_is_killed", "a_long_transaction_pins_the_checkpoint",
    "the_operator_restarts",
)


class SoakMachine(RuleBasedStateMachine):
    """User actions, the schedule, faults and time, over one World per sequence; every invariant after each step.

    One hypothesis rule, `step(action, choice, fraction)`, runs one of `ACTIONS` (a method of the same name), whose
    own choices come from `choice` (an integer) and `fraction` (a place in the window): hypothesis's swarm testing
    would otherwise switch most rules off in each of the few, long sequences a soak can afford. A failing sequence
    prints as one `state.step(...)` line per step. `SoakMachine.setup` (set by `run_soak`) gives (sandbox, clock,
    connections)."""

    setup: Callable[[], tuple[SandboxHandle, SimClock, dict[str, str]]] | None = None
    progress: Callable[[str], None] | None = None
    check_window_every = CHECK_WINDOW_EVERY
    # time.monotonic() after which no new sequence starts: hypothesis's remaining examples then pass as no-ops
    stop_after: float | None = None

    def __init__(self) -> None:
        super().__init__()
        assert SoakMachine.setup is not None, "set SoakMachine.setup to (sandbox, clock, connections) first"
        self.sandbox, self.clock, conns = SoakMachine.setup()
        self.world: World | None = None
        self._conns = conns
        self.steps = 0
        self.began = 0.0
        self._window_checked = 0
        self.history: list[str] = []  # this sequence's steps as replayable calls: a violation prints them

    @initialize()
    def a_cluster_with_days_of_history(self) -> None:
        if self.stop_after is not None and time.monotonic() > self.stop_after:
            return  # the soak's time is up: this example runs nothing and counts nowhere
        self.world = World(self.sandbox, self.clock, self._conns, compaction=True)
        self.began = self.clock.passed
        STATS.sequences += 1
        self.world.run("log_guard")

    def teardown(self) -> None:
        if self.world is not None:
            self.world.clear_faults()
            STATS.simulated_seconds += self.clock.passed - self.began
            self.world.close()
            if SoakMachine.progress is not None:
                SoakMachine.progress(f"[soak] sequence {STATS.sequences}: {self.steps} steps, "
                                     f"{(self.clock.passed - self.began) / 86400:.2f} simulated days, "
                                     f"{len(self.world.runs)} DAG runs; so far {STATS.invariant_checks} invariant "
                                     f"checks, violations {dict(STATS.violations) or 0}")

    @rule(action=st.sampled_from(ACTIONS), choice=st.integers(0, 1 << 16), fraction=st.floats(0.0, 1.0))
    def step(self, action: str, choice: int, fraction: float) -> None:
        if self.world is None:
            return
        STATS.rules[action] += 1
        STATS.steps += 1
        self.steps += 1
        self.history.append(f"state.step(action={action!r}, choice={choice!r}, fraction={fraction!r})")
        getattr(self, action)(self.world, choice, fraction)

    # -- time and the schedule
    def time_passes(self, world: World, choice: int, fraction: float) -> None:
        """Time passes (5 minutes to 2 days); the schedule then runs what fell due, in Airflow's order: the guard,
        the snapshot slot (48 h apart), retention, compaction and the logical backup (daily)."""
        world.clock.advance([300, 1800, 3 * 3600, 10 * 3600, 86400, 2 * 86400][choice % 6])
        now = world.clock.now()
        world.run("log_guard")
        for kind, every in (("snapshot", timedelta(days=2)), ("retention", timedelta(days=1)),
                            ("compaction", timedelta(days=1)), ("logical_backup", timedelta(days=1))):
            if now - world.last_schedule.get(kind, world.started) >= every:
                self._scheduled(world, kind)

    def _scheduled(self, world: World, kind: str, after: tuple[float, Callable[[], None]] | None = None) -> Run:
        world.last_schedule[kind] = world.clock.now()
        before = world.window() if kind == "retention" else None
        run = world.run(kind, after=after)
        if kind == "retention":
            run.window_before = before  # type: ignore[attr-defined]
        return run

    def snapshot_slot(self, world: World, choice: int, fraction: float) -> None:
        self._scheduled(world, "snapshot")

    def retention_run(self, world: World, choice: int, fraction: float) -> None:
        self._scheduled(world, "retention")

    def guard_run(self, world: World, choice: int, fraction: float) -> None:
        world.run("log_guard")

    def compaction_run(self, world: World, choice: int, fraction: float) -> None:
        self._scheduled(world, "compaction")

    def logical_backup_run(self, world: World, choice: int, fraction: float) -> None:
        """The daily Dumpling backup: dumped, verified, and its retention (the newest two of ours, nothing else)."""
        self._scheduled(world, "logical_backup")

    def change_retention(self, world: World, choice: int, fraction: float) -> None:
        """A user changes the retention (clusters.yaml) and the DAGs are parsed again."""
        world.reconfigure(retention=timedelta(days=1 + choice % 2))

    # -- a user's restores
    def _restore(self, world: World, *, ts: int | None, by: str, expect: str, target: str | None = None,
                 after: tuple[float, Callable[[], None]] | None = None, **conf: Any) -> Run:
        from tidb_pitr.tso import tso_to_dt

        name = target or world.empty_target()
        params: dict[str, Any] = {"target_cluster": f"{world.namespace}/{name}", **conf}
        if ts is not None and by == "tso":
            params["restore_tso"] = str(ts)
        elif ts is not None:
            params["restore_time"] = tso_to_dt(ts).isoformat().replace("+00:00", "Z")
        held = world.rows(name)["count"]  # what the target held before: a finding names it
        run = world.run("restore", params, expect=expect, after=after)
        run.restore_ts, run.target_held, run.target = ts, held, name
        after = world.rows(name)
        if expect == "restored" and ts is not None and run.state == "success":
            # Counted now: the window check after this step may wipe this very target for its own restore.
            run.compared = (world.rows(world.name, ts), after)
        if not params.get("dry_run") and after["count"]:
            world.full.add(name)
        return run

    @staticmethod
    def _inside(window: tuple[int, int, list[tuple[int, int]]] | None, fraction: float) -> int | None:
        """A time at `fraction` of the window, or None when there is none or it falls in a gap. Whole seconds, as a
        user types them."""
        from tidb_pitr.tso import dt_to_tso, tso_to_dt

        if window is None:
            return None
        earliest, latest, gaps = window
        ts = earliest + int((latest - earliest) * fraction)
        second = tso_to_dt(ts).replace(microsecond=0)
        ts = dt_to_tso(second + timedelta(seconds=1)) if dt_to_tso(second) < earliest else dt_to_tso(second)
        if ts > latest or any(start <= ts <= end for start, end in gaps):
            return None
        return ts

    def restore_inside_the_window(self, world: World, choice: int, fraction: float) -> None:
        ts = self._inside(world.window(), fraction)
        self._restore(world, ts=ts, by=["time", "tso"][choice % 2], expect="restored" if ts is not None else "",
                      verify=bool(choice & 2))

    def restore_at_an_edge(self, world: World, choice: int, fraction: float) -> None:
        window = world.window()
        if window is None:
            return
        self._restore(world, ts=window[choice % 2], by="tso", expect="restored")

    def restore_outside_the_window(self, world: World, choice: int, fraction: float) -> None:
        """Before the earliest time, after the latest, or inside a gap (before, when there is none): refused."""
        window = world.window()
        if window is None:
            return
        earliest, latest, gaps = window
        hour = 3600 * (1000 << 18)
        side = ["before", "after", "gap"][choice % 3]
        ts = ((gaps[0][0] + gaps[0][1]) // 2 if side == "gap" and gaps else
              latest + hour if side == "after" else earliest - hour)
        self._restore(world, ts=ts, by=["time", "tso"][(choice >> 2) % 2], expect="refused")

    def restore_into_a_full_target(self, world: World, choice: int, fraction: float) -> None:
        """Into a target a restore already filled: refused (a full target is made first when there is none)."""
        ts = self._inside(world.window(), fraction)
        if ts is None:
            return
        if not world.full:
            self._restore(world, ts=ts, by="tso", expect="restored")
        if world.full:
            self._restore(world, ts=ts, by="tso", expect="refused", target=sorted(world.full)[0])

    def restore_into_a_busy_target(self, world: World, choice: int, fraction: float) -> None:
        """While a restore into a target hangs, a second restore into it is refused, and the first then completes."""
        ts = self._inside(world.window(), fraction)
        if ts is None:
            return
        target = world.empty_target()
        world.set_faults(hang_restores=True)
        try:
            world.start_restore_by_hand(target, ts)
            self._restore(world, ts=ts, by="tso", expect="refused", target=target,
                          after=(HANG_FOR, lambda: world.sandbox.set_faults(hang_restores=False)))
        finally:
            world.clear_faults()
        world.clock.advance(60)
        world.full.add(target)

    def dry_run(self, world: World, choice: int, fraction: float) -> None:
        from tidb_pitr.cr.api import LABEL_RUN
        from tidb_pitr.cr.names import run_label

        ts = self._inside(world.window(), fraction)
        target = world.empty_target()  # before counting: a wiped target takes its CRs with it
        before = {o["metadata"]["name"] for o in world.crs("restores")}
        run = self._restore(world, ts=ts, by="time", expect="", dry_run=True, target=target)
        made = [o for o in world.crs("restores") if o["metadata"]["name"] not in before]
        if any(_labels(o).get(LABEL_RUN) == run_label(run.dag_id, run.run_id) for o in made):
            raise InvariantBroken(f"a dry run creates nothing: dry run {run.run_id} made "
                                  f"{[o['metadata']['name'] for o in made]}")

    def drill(self, world: World, choice: int, fraction: float) -> None:
        run = world.run("drill")
        run.record = world.xcom(run, "record")  # type: ignore[attr-defined]

    # -- the log backup
    def guard_starts_a_new_log_backup(self, world: World, choice: int, fraction: float) -> None:
        world.run("log_guard", {"start_new_log_backup": True})

    def log_control(self, world: World, choice: int, fraction: float) -> None:
        from tidb_pitr.planning.pause import confirmation

        action = ["pause", "resume", "stop"][choice % 3]
        conf: dict[str, Any] = {"action": action, "reason": "soak"}
        if action == "pause":
            conf["pause_minutes"] = [10, 60][(choice >> 2) % 2]
        else:
            conf["confirm"] = confirmation(action, world.name)
        world.run("log_control", conf)

    # -- faults the sandbox has
    def api_errors_during_a_run(self, world: World, choice: int, fraction: float) -> None:
        then = ["snapshot", "retention", "log_guard", "restore"][choice % 4]
        world.set_faults(api_error_rate=[0.1, 0.3][(choice >> 2) % 2])
        try:
            if then == "restore":
                self._restore(world, ts=self._inside(world.window(), fraction), by="tso", expect="")
            elif then == "log_guard":
                world.run(then)
            else:
                self._scheduled(world, then)
        finally:
            world.clear_faults()

    def a_snapshot_job_fails_or_hangs(self, world: World, choice: int, fraction: float) -> None:
        fault = ["fail_next_backup", "hang_backups"][choice % 2]
        world.set_faults(**{fault: "BR: injected failure" if fault == "fail_next_backup" else True})
        try:
            self._scheduled(world, "snapshot", after=(HANG_FOR, lambda: world.sandbox.set_faults(hang_backups=False)))
        finally:
            world.clear_faults()

    def a_restore_fails_or_stops_part_way(self, world: World, choice: int, fraction: float) -> None:
        fault = ["fail_next_restore", "fail_restore_after"][choice % 2]
        world.set_faults(**{fault: "BR: injected failure" if fault == "fail_next_restore" else 0.5})
        try:
            self._restore(world, ts=self._inside(world.window(), fraction), by="tso", expect="")
        finally:
            world.clear_faults()

    def tikv_pauses_the_log_on_an_error(self, world: World, choice: int, fraction: float) -> None:
        world.set_faults(log_error_pause="TiKV: injected error")
        world.clock.advance(600)
        world.clear_faults()

    def a_log_job_pod_is_killed(self, world: World, choice: int, fraction: float) -> None:
        _, logs = world.views()
        live = [v for v in logs if v.phase in ("Running", "Paused", "RetryFailed")]
        if not live:
            return
        world.set_faults(crash_log_job=f"{world.namespace}/{live[0].name}")
        world.run("log_control", {"action": "pause", "pause_minutes": 10, "reason": "soak: a pod dies"})
        world.clear_faults()

    def a_long_transaction_pins_the_checkpoint(self, world: World, choice: int, fraction: float) -> None:
        world.set_faults(pin_checkpoint=f"{world.namespace}/{world.name}")
        world.clock.advance([3600, 6 * 3600][choice % 2])
        world.run("log_guard")
        world.clear_faults()

    def the_operator_restarts(self, world: World, choice: int, fraction: float) -> None:
        world.set_faults(restart_operator=120)
        world.clock.advance(600)
        world.clear_faults()

    def a_dba_makes_or_deletes_a_backup(self, world: World, choice: int, fraction: float) -> None:
        mine = [key for key in world.foreign_crs if key[0] == "backups"]
        if choice % 2 or not mine:
            world.make_foreign()
            return
        plural, name = mine[-1]
        world.hook.delete(plural, name, world.namespace)
        del world.foreign_crs[(plural, name)]

    # -- invariants
    @invariant()
    def every_invariant_holds(self) -> None:
        if self.world is None:
            return
        if self.steps and self.steps % self.check_window_every == 0 and self._window_checked != self.steps:
            self._window_checked = self.steps
            self._check_a_random_time()
        broken = []
        for check in INVARIANTS:
            STATS.invariant_checks += 1
            found = check(self.world)
            if found:
                STATS.violations[check.__name__] += 1
                STATS.examples.setdefault(check.__name__, "; ".join(found)[:1000])
                broken.append(f"{check.__name__}: " + "; ".join(found))
        if broken:
            raise InvariantBroken("\n".join([*broken, f"after these {self.steps} steps (replay_soak takes them):",
                                             *self.history]))

    def _check_a_random_time(self) -> None:
        """Every time inside the published window is restorable: one of them (by the step count), into a fresh
        target, compared with the source at that time (restores_equal_the_source)."""
        world = self.world
        assert world is not None
        ts = self._inside(world.window(), (self.steps * 0.618) % 1.0)
        if ts is None or world.faults:
            return
        STATS.window_checks += 1
        self._restore(world, ts=ts, by="tso", expect="restored")


def figures(started: float) -> dict[str, Any]:
    """The soak's JSON: sequences, steps, simulated days, invariant checks, violations by invariant, rule coverage."""
    return {
        "benchmark": "soak_states", "sequences": STATS.sequences, "steps": STATS.steps,
        "simulated_days": round(STATS.simulated_seconds / 86400, 2), "invariant_checks": STATS.invariant_checks,
        "violations": dict(STATS.violations), "violation_examples": STATS.examples,
        "rule_coverage": dict(sorted(STATS.rules.items())), "window_checks": STATS.window_checks,
        "dag_runs": STATS.dag_runs, "wall_seconds": round(time.monotonic() - started, 1),
    }


def run_soak(workdir: Path, *, sequences: int, steps: int, seed: int, shrink: bool = True,
             progress: Callable[[str], None] | None = None, keep_stats: bool = False,
             stop_after: float | None = None) -> str | None:
    """Run the machine: `sequences` examples of up to `steps` steps from `seed`, on a soak sandbox of its own (this
    process's Airflow DB must exist); no new sequence starts after `stop_after` (time.monotonic()). The failing
    sequence as hypothesis prints it (a replayable program), or None."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as with_seed
    from hypothesis.reporting import with_reporter
    from hypothesis.stateful import run_state_machine_as_test

    if not keep_stats:
        STATS.__init__()  # type: ignore[misc]  # this run's figures only
    machine = with_seed(seed)(type("SeededSoak", (SoakMachine,), {}))
    SoakMachine.progress, SoakMachine.stop_after = progress, stop_after
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
    printed: list[str] = []
    try:
        with soak_world_setup(workdir), with_reporter(printed.append):
            run_state_machine_as_test(machine, settings=settings(
                max_examples=sequences, stateful_step_count=steps, deadline=None, database=None, phases=phases,
                suppress_health_check=list(HealthCheck), report_multiple_bugs=False))
        return None
    except Exception as exc:  # noqa: BLE001 - the failing sequence is the report
        text = "\n".join(printed) + f"\n{type(exc).__name__}: {exc}"
        if progress is not None:
            progress(text)
        return text
    finally:
        SoakMachine.progress = SoakMachine.stop_after = None


@contextmanager
def soak_world_setup(workdir: Path) -> Iterator[None]:
    """A soak sandbox of its own, its clock and connections, given to every SoakMachine made inside the block;
    all stopped after it."""
    from tidb_sandbox.client import stop_sandbox

    sandbox = start_soak_sandbox(workdir)
    clock = SimClock(sandbox)
    conns = soak_connections(sandbox)
    SoakMachine.setup = lambda: (sandbox, clock, conns)
    try:
        yield
    finally:
        SoakMachine.setup = None
        clock.close()
        stop_sandbox(sandbox.process)


def replay_soak(workdir: Path, steps: list[tuple[str, int, float]], *,
                check_window_every: int = CHECK_WINDOW_EVERY) -> SoakMachine:
    """Run one sequence of `steps` (action, choice, fraction), as a violation prints them, on a soak sandbox of its
    own, every invariant after each step: a soak's finding as a regular test. Raises InvariantBroken; the machine
    (its world closed) otherwise, for what the test asserts about its runs."""
    with soak_world_setup(workdir):
        state = SoakMachine()
        state.check_window_every = check_window_every
        state.a_cluster_with_days_of_history()
        state.every_invariant_holds()
        for action, choice, fraction in steps:
            state.step(action=action, choice=choice, fraction=fraction)
            state.every_invariant_holds()
        state.teardown()
        return state
