"""1000 concurrent CR waits in one triggerer process: memory per wait, CPU, API connections, reaction latency.

One triggerer process: a child process runs Airflow's own `TriggerRunner` (airflow.jobs.triggerer_job_runner)
unchanged, its `arun` loop, `create_triggers`, `run_trigger` and `cleanup_finished_triggers` included. Only the
supervisor at the other end of its socket is replaced by an in-memory stand-in (`_Supervisor`) that hands it
`--waits` RunTrigger workloads in its first sync, as the real supervisor does from the database, and
records the events the runner reports. The workloads carry our `CustomResourceTrigger`
(plugins/tidb_pitr/triggers/custom_resource.py), serialized and encoded as Airflow stores them, waiting for a
snapshot Backup to be Complete with the bounds `TidbCrMixin.wait_for` uses; without a task instance
(`ti=None`), so the runner does not render templates. Connections come from an `AIRFLOW_CONN_` variable.

The sandbox holds `--waits` Backups held Running (the `hang_backups` fault) until every trigger is waiting;
then they are released. A plain watch per namespace in this (parent) process records when each turned Complete,
the reference clock. Measured per variant, each in a fresh child:

- memory per wait: (RSS with every trigger waiting - RSS of the idle runner) / waits, from /proc;
- CPU seconds of the child (start-up excluded), split into waiting and reacting;
- API connections held: ESTABLISHED sockets of the child to the sandbox's port, open files of the child;
- reaction latency: Complete (reference watch) -> the trigger yielded its event (median, p90, max), and
  -> the runner handed the event to its supervisor (the runner syncs about once a second);
- API requests at the sandbox (its counters) while the child ran, and the sandbox's CPU.

Variants, both the product's `CustomResourceTrigger`: `shared` (the default, `[tidb_pitr] watch_mode = shared`:
every wait of a namespace subscribes to one list-then-watch of the product's registry, hooks/watch_registry.py) and
`per-cr` (`watch_mode = per-cr`: one list + one watch per wait, on a client of its own). Each runs with the waits in
one namespace and again spread over `--namespaces` (5). In each run a trickle comes first: `--trickle` Backups are
let go one at a time (`--trickle-interval` apart, the sandbox's `released_backups`) while all the others still wait,
then the burst: the rest are released at once.

The last line is one JSON object with the figures of each run and variant, the ratios shared / per-cr and the
issue's targets (met or not).

    .venv/bin/python benchmarks/bench_triggerer.py [--waits 1000] [--variants per-cr,shared] [--namespaces 1,5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins")]  # the sandbox is installed (pip install -e sandbox)
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"),
                                           *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

CONN = "bench_k8s"
GROUP, VERSION, PLURAL = "pingcap.com", "v1alpha1", "backups"
VARIANTS = ("per-cr", "shared")
# The targets for 1000 waits in one namespace with the registry (issue 26, "Done when").
TARGET_KIB_PER_WAIT, TARGET_CONNECTIONS, TARGET_CPU_SHARE, TARGET_BURST_MEDIAN_S = 100, 2, 0.25, 1.0
# "No worse" at a trickle: within 10 ms, about the jitter of the reference watch itself at low N.
TRICKLE_TOLERANCE_S = 0.01


# -- /proc --------------------------------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (not its children), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 0


def connections_to(pid: int, port: int) -> int:
    """ESTABLISHED TCP sockets of the process whose remote port is `port` (the sandbox's API)."""
    import psutil

    return sum(1 for c in psutil.Process(pid).net_connections(kind="tcp")
               if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port)


# -- the child: one triggerer process -----------------------------------------------------------------------
class _TimedEvents(deque):
    """The runner's outbound event queue, noting when each trigger's event was appended (it yielded)."""

    def __init__(self) -> None:
        super().__init__()
        self.yielded: dict[int, float] = {}

    def append(self, entry: Any) -> None:
        self.yielded.setdefault(entry.trigger_id, time.time())
        super().append(entry)


class _Supervisor:
    """Stands in for TriggerRunnerSupervisor at the other end of the runner's socket: the first sync answers
    with every workload (as the supervisor answers with the triggers assigned in the DB), later ones with
    nothing; events are noted with the time the runner handed them over."""

    def __init__(self, workloads: list[Any]) -> None:
        self.workloads = workloads
        self.handed: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.failures: list[Any] = []
        self.statuses: dict[str, int] = {}
        self.done = asyncio.Event()
        self._reader_task: asyncio.Task[None] | None = None
        self._ids = itertools.count()
        self._sent = False

    async def start(self) -> None:
        self._reader_task = asyncio.create_task(asyncio.Event().wait(), name="trigger-comms-reader")

    async def asend(self, msg: Any) -> Any:
        from airflow.jobs.triggerer_job_runner import messages
        from airflow.sdk.execution_time.comms import _RequestFrame

        # What the runner's own comms do with a message: encode it as a frame for the socket.
        _RequestFrame(id=next(self._ids), body=msg.model_dump()).as_bytes()
        now = time.time()
        for entry in msg.events or ():
            self.handed.setdefault(entry.trigger_id, now)
            self.names[entry.trigger_id] = entry.event.payload.get("name", "")
            status = entry.event.payload.get("status", "")
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.failures += msg.failures or []
        if len(self.handed) + len(self.failures) >= len(self.workloads):
            self.done.set()
        to_create = [] if self._sent else self.workloads
        self._sent = True
        return messages.TriggerStateSync(to_create=to_create, to_cancel=set())


def _child(args: argparse.Namespace) -> int:
    from airflow.executors import workloads
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models.trigger import Trigger
    from airflow.sdk.execution_time import task_runner
    from tidb_pitr.hooks.watch_registry import registry, watch_mode
    from tidb_pitr.triggers.custom_resource import CustomResourceTrigger

    os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": args.kubeconfig}})
    assert watch_mode() == args.variant, (watch_mode(), args.variant)
    waits = json.loads(Path(args.names_file).read_text())  # [[namespace, name], ...]
    deadline = time.time() + 3600
    built = []
    for i, (namespace, name) in enumerate(waits, start=1):
        # As TidbCrMixin.wait_for builds a snapshot wait with the default bounds (bench_wait.py does the same).
        trigger = CustomResourceTrigger(
            kubernetes_conn_id=CONN, api_group=GROUP, plural=PLURAL, namespace=namespace, name=name, kind="terminal",
            deadline=deadline, args={"retry_failed_seconds": 600.0, "stuck_seconds": 1800.0}, reevaluate_every=150.0)
        classpath, kwargs = trigger.serialize()
        built.append(workloads.RunTrigger(id=i, classpath=classpath, encrypted_kwargs=Trigger.encrypt_kwargs(kwargs)))
    supervisor = _Supervisor(built)

    class Runner(TriggerRunner):
        async def init_comms(self) -> None:
            self.comms_decoder = supervisor  # type: ignore[assignment]
            task_runner.SUPERVISOR_COMMS = supervisor
            await supervisor.start()

    runner = Runner()
    runner.events = _TimedEvents()

    # What the first trigger would import anyway, so the baseline is an idle runner that has run triggers.
    import kubernetes_asyncio.client  # noqa: F401
    import kubernetes_asyncio.watch  # noqa: F401
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook  # noqa: F401

    async def note_waiting() -> None:
        """Tell the parent (a file) once every trigger runs and, shared, has subscribed with the first list in."""
        while True:
            watches = registry().watches.values()
            subscribed = sum(w.subscribers for w in watches if w.synced)
            if len(runner.triggers) >= len(waits) and (args.variant == "per-cr" or subscribed >= len(waits)):
                Path(args.out + ".waiting").write_text(json.dumps({w.key.namespace: w.counts for w in watches}))
                return
            await asyncio.sleep(0.1)

    async def main() -> dict[str, Any]:
        # Idle runner, imports done: the parent takes the baseline, then says go.
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.time()
        cpu_start = time.process_time()
        task = asyncio.create_task(runner.arun())
        noted = asyncio.create_task(note_waiting())
        await supervisor.done.wait()
        finished = time.time()
        cpu_end = time.process_time()
        noted.cancel()
        counts = {w.key.namespace: dict(w.counts) for w in registry().watches.values()}
        runner.stop = True
        await asyncio.wait_for(task, timeout=30)
        by_id = supervisor.names
        return {"started": started, "finished": finished, "cpu_seconds": cpu_end - cpu_start,
                "yielded": {by_id[i]: t for i, t in runner.events.yielded.items() if i in by_id},
                "handed": {by_id[i]: t for i, t in supervisor.handed.items()}, "watch_counts": counts,
                "failures": len(supervisor.failures), "statuses": supervisor.statuses, "peak_rss_kib": _peak_rss()}

    result = asyncio.run(main())
    Path(args.out).write_text(json.dumps(result))
    return 0


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# -- the parent: sandbox, CRs, reference clock, measurements --------------------------------------------------
def _body(namespace: str, cluster: str, name: str) -> dict[str, Any]:
    # Local-volume storage: at 1000 backups moto's S3 writes, not the operator, would set the pace.
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Backup", "metadata": {"name": name},
            "spec": {"backupType": "full", "br": {"cluster": cluster},
                     "local": {"prefix": f"bench/{namespace}/{name}",
                               "volume": {"name": "backup-volume",
                                          "persistentVolumeClaim": {"claimName": "backup-pvc"}},
                               "volumeMount": {"name": "backup-volume", "mountPath": "/backup"}}}}


class _Reference(threading.Thread):
    """A plain watch on the namespace: when each CR turned Running and Complete (the reference clock)."""

    def __init__(self, kubeconfig: str, namespace: str, total: int) -> None:
        super().__init__(daemon=True)
        from kubernetes import client, config

        self.api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
        self.namespace, self.total = namespace, total
        self.version = self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["metadata"][
            "resourceVersion"]
        self.running: dict[str, float] = {}
        self.complete: dict[str, float] = {}
        self.stop = False
        self.watches = 0  # its own requests, not the triggerer's

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            if not self.stop:
                raise

    def _run(self) -> None:
        from kubernetes import watch

        while not self.stop and len(self.complete) < self.total:
            self.watches += 1
            for event in watch.Watch().stream(self.api.list_namespaced_custom_object, GROUP, VERSION,
                                              self.namespace, PLURAL, resource_version=self.version,
                                              timeout_seconds=5):
                obj = event["object"]
                self.version = obj["metadata"]["resourceVersion"]
                phase = (obj.get("status") or {}).get("phase")
                name = obj["metadata"]["name"]
                if phase == "Running":
                    self.running.setdefault(name, time.time())
                elif phase == "Complete":
                    self.complete.setdefault(name, time.time())
                if self.stop or len(self.complete) >= self.total:
                    return


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _latency(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None}
    return {"median": round(statistics.median(values), 3), "p90": round(_pct(values, 0.9), 3),
            "max": round(max(values), 3)}


def _run_variant(args: argparse.Namespace, sandbox: Any, variant: str, spread: int, workdir: Path) -> dict[str, Any]:
    from kubernetes import client, config

    run = f"{variant}-{spread}ns"
    namespaces = [f"trig-{run}-{j}" for j in range(spread)]
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sandbox.kubeconfig)))
    waits = [(namespaces[i % spread], f"snap-{i:04d}") for i in range(args.waits)]
    names = [name for _, name in waits]
    sandbox.set_faults(hang_backups=True, released_backups=[])  # every Backup stays Running until released
    references = []
    for namespace in namespaces:
        sandbox.create_cluster(namespace, "bench")
        references.append(_Reference(str(sandbox.kubeconfig), namespace, sum(ns == namespace for ns, _ in waits)))
    for reference in references:
        reference.start()
    for namespace, name in waits:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body(namespace, "bench", name))
    _wait(lambda: sum(len(r.running) for r in references) >= len(waits), 300, "every Backup Running")

    def reference_watches() -> int:
        return sum(r.watches for r in references)

    names_file = workdir / f"{run}-names.json"
    names_file.write_text(json.dumps(waits))
    out = workdir / f"{run}-result.json"
    log = open(workdir / f"{run}-child.log", "wb")  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", "--variant", variant, "--kubeconfig", str(sandbox.kubeconfig),
         "--names-file", str(names_file), "--out", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        env={**os.environ, "AIRFLOW__TIDB_PITR__WATCH_MODE": variant})
    trickle = names[:args.trickle]
    try:
        assert child.stdout is not None and child.stdin is not None
        line = b""
        while line.strip() != b"READY":  # Airflow logs to stdout too
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"the triggerer child did not start; see {log.name}")
        threading.Thread(target=child.stdout.read, daemon=True).start()  # keep its stdout drained
        pid, port = child.pid, int(sandbox.url.rsplit(":", 1)[1])
        idle = {"rss_kib": rss_kib(pid), "cpu": cpu_seconds(pid), "files": open_files(pid)}
        before = sandbox.request_counts()
        watches_before = reference_watches()
        sandbox_cpu0 = cpu_seconds(sandbox.process.pid)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        go = time.time()

        # Every trigger runs and has listed (per-cr: its CR, and opened its watch; shared: subscribed to its
        # namespace's watch, whose first list is in).
        def waiting() -> bool:
            now = sandbox.request_counts()["byResource"]
            lists = now.get("list backups", 0) - before["byResource"].get("list backups", 0)
            watches = (now.get("watch backups", 0) - before["byResource"].get("watch backups", 0)
                       - (reference_watches() - watches_before))
            least = len(waits) if variant == "per-cr" else spread
            return Path(str(out) + ".waiting").exists() and lists >= least and watches >= least
        _wait(waiting, 600, f"{len(waits)} triggers waiting")
        all_waiting = time.time()
        time.sleep(args.settle)
        limit = fd_limit(pid)
        held = {"rss_kib": rss_kib(pid), "cpu": cpu_seconds(pid), "files": open_files(pid),
                "connections": connections_to(pid, port), "sandbox_rss_kib": rss_kib(sandbox.process.pid),
                "sandbox_files": open_files(sandbox.process.pid),
                "active_watches": sandbox.request_counts()["activeWatches"] - before["activeWatches"]}
        for i in range(len(trickle)):  # one completion at a time while the others wait
            sandbox.set_faults(released_backups=trickle[:i + 1])
            time.sleep(args.trickle_interval)
        cpu_trickle = cpu_seconds(pid) - held["cpu"]
        sandbox.set_faults(hang_backups=False, released_backups=[])
        released = time.time()
        child.wait(timeout=600)
        for reference in references:
            reference.stop = True
            reference.join(30)
        after = sandbox.request_counts()
        sandbox_cpu = cpu_seconds(sandbox.process.pid) - sandbox_cpu0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    result = json.loads(out.read_text())
    complete = {name: t for r in references for name, t in r.complete.items()}

    def latencies(which: str, chosen: list[str]) -> list[float]:
        return [result[which][n] - complete[n] for n in chosen if n in result[which] and n in complete]

    burst = names[len(trickle):]
    burst_done = [complete[n] for n in burst if n in complete]
    requests = {k: after["byResource"].get(k, 0) - before["byResource"].get(k, 0)
                for k in after["byResource"] if k.endswith(" backups")}
    requests["watch backups"] -= reference_watches() - watches_before
    requests = {k: v for k, v in requests.items() if v}
    count = len(waits)
    return {
        "waits": count, "namespaces": spread, "noticed": len(latencies("yielded", names)),
        "failures": result["failures"], "events": result["statuses"],
        "rss_idle_mib": round(idle["rss_kib"] / 1024, 1), "rss_waiting_mib": round(held["rss_kib"] / 1024, 1),
        "rss_peak_mib": round(result["peak_rss_kib"] / 1024, 1),
        "kib_per_wait": round((held["rss_kib"] - idle["rss_kib"]) / count, 1),
        "cpu_s_to_all_waiting": round(held["cpu"] - idle["cpu"], 2),
        "cpu_s_trickle": round(cpu_trickle, 2),
        "cpu_s_total": round(result["cpu_seconds"], 2),
        "seconds_to_all_waiting": round(all_waiting - go, 2),
        "connections_held": held["connections"], "open_files_waiting": held["files"], "open_files_limit": limit,
        "sandbox_watches_held": held["active_watches"], "sandbox_open_files_waiting": held["sandbox_files"],
        "sandbox_rss_mib": round(held["sandbox_rss_kib"] / 1024, 1), "sandbox_cpu_s": round(sandbox_cpu, 2),
        "api_requests": sum(requests.values()), "api_requests_by_kind": requests,
        "shared_watch_counts": result["watch_counts"],
        "burst_complete_spread_s": round(max(burst_done) - min(burst_done), 2) if burst_done else None,
        "burst_complete_after_release_s": round(max(burst_done) - released, 2) if burst_done else None,
        "trickle": len(trickle),
        "latency_trickle_yield_s": _latency(latencies("yielded", trickle)),
        "latency_burst_yield_s": _latency(latencies("yielded", burst)),
        "latency_burst_handed_s": _latency(latencies("handed", burst)),
    }


def _print(run: str, r: dict[str, Any]) -> None:
    lt, lb, lh = r["latency_trickle_yield_s"], r["latency_burst_yield_s"], r["latency_burst_handed_s"]
    print(f"{run:11} {r['noticed']}/{r['waits']} noticed in {r['namespaces']} namespace(s), events {r['events']}, "
          f"{r['failures']} failed; RSS idle {r['rss_idle_mib']} MiB -> waiting {r['rss_waiting_mib']} MiB = "
          f"{r['kib_per_wait']} KiB/wait (peak {r['rss_peak_mib']} MiB)")
    print(f"            CPU {r['cpu_s_to_all_waiting']}s to all waiting ({r['seconds_to_all_waiting']}s), "
          f"{r['cpu_s_trickle']}s in the trickle, {r['cpu_s_total']}s in all; {r['connections_held']} connections to "
          f"the API held, {r['open_files_waiting']} open files (limit {r['open_files_limit']})")
    print(f"            sandbox: {r['sandbox_watches_held']} watches held, {r['sandbox_open_files_waiting']} open "
          f"files, {r['sandbox_cpu_s']}s CPU, {r['api_requests']} requests {r['api_requests_by_kind']}")
    print(f"            trickle of {r['trickle']}: Complete -> event median {lt['median']}s p90 {lt['p90']}s; burst "
          f"(Complete within {r['burst_complete_spread_s']}s): median {lb['median']}s p90 {lb['p90']}s max "
          f"{lb['max']}s; -> supervisor median {lh['median']}s p90 {lh['p90']}s max {lh['max']}s")


def _ratios(per_cr: dict[str, Any], shared: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else round(a / b, 3)

    return {
        "kib_per_wait": ratio(shared["kib_per_wait"], per_cr["kib_per_wait"]),
        "connections_held": ratio(shared["connections_held"], per_cr["connections_held"]),
        "cpu_s_total": ratio(shared["cpu_s_total"], per_cr["cpu_s_total"]),
        "api_requests": ratio(shared["api_requests"], per_cr["api_requests"]),
        "latency_trickle_median": ratio(shared["latency_trickle_yield_s"]["median"],
                                        per_cr["latency_trickle_yield_s"]["median"]),
        "latency_burst_median": ratio(shared["latency_burst_yield_s"]["median"],
                                      per_cr["latency_burst_yield_s"]["median"]),
    }


def _targets(per_cr: dict[str, Any] | None, shared: dict[str, Any]) -> dict[str, Any]:
    """Issue 26's "done when", for the shared registry in one namespace (None: per-cr was not run)."""
    out: dict[str, Any] = {
        "kib_per_wait_le_100": shared["kib_per_wait"] <= TARGET_KIB_PER_WAIT,
        "connections_le_2": shared["connections_held"] <= TARGET_CONNECTIONS,
        "burst_median_lt_1s": (shared["latency_burst_yield_s"]["median"] or 0) < TARGET_BURST_MEDIAN_S,
    }
    if per_cr is not None:
        out["cpu_le_quarter_of_per_cr"] = shared["cpu_s_total"] <= TARGET_CPU_SHARE * per_cr["cpu_s_total"]
        trickle, theirs = shared["latency_trickle_yield_s"]["median"], per_cr["latency_trickle_yield_s"]["median"]
        out["trickle_median_no_worse"] = (None if trickle is None or theirs is None
                                          else trickle <= theirs + TRICKLE_TOLERANCE_S)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: per-cr, shared")
    parser.add_argument("--namespaces", default="1,5", help="comma-separated: the waits spread over this many")
    parser.add_argument("--trickle", type=int, default=20, help="Backups let go one at a time before the burst")
    parser.add_argument("--trickle-interval", type=float, default=0.5, help="seconds between two of the trickle")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between all waiting and the release")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--names-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; allowed: {', '.join(VARIANTS)}")
    try:
        spreads = [int(n) for n in args.namespaces.split(",") if n]
    except ValueError:
        parser.error(f"--namespaces: {args.namespaces!r}; allowed: comma-separated whole numbers >= 1")
    if not spreads or min(spreads) < 1 or not 0 <= args.trickle < args.waits:
        parser.error("--namespaces: whole numbers >= 1; --trickle: from 0 to fewer than --waits")

    from tidb_sandbox.client import start_sandbox, stop_sandbox

    workdir = Path(tempfile.mkdtemp(prefix="bench-triggerer-"))
    sandbox = start_sandbox(workdir / "sandbox", "--no-azurite",
                            settings={"step_delay": 0.05, "backup_duration": 0.2})
    summary: dict[str, Any] = {"waits": args.waits, "trickle": args.trickle, "load_average": os.getloadavg()}
    try:
        for spread in spreads:
            runs: dict[str, Any] = {}
            for variant in variants:
                runs[variant] = _run_variant(args, sandbox, variant, spread, workdir)
                _print(f"{variant} {spread}ns", runs[variant])
            if "per-cr" in runs and "shared" in runs:
                runs["ratios_shared_to_per_cr"] = _ratios(runs["per-cr"], runs["shared"])
                print(f"ratios shared/per-cr, {spread} namespace(s): "
                      + ", ".join(f"{k} {v}" for k, v in runs["ratios_shared_to_per_cr"].items()))
            if spread == 1 and "shared" in runs:
                runs["targets"] = _targets(runs.get("per-cr"), runs["shared"])
                print("targets (shared, 1 namespace): " + ", ".join(f"{k} {v}" for k, v in runs["targets"].items()))
            summary[f"{spread}ns"] = runs
    finally:
        stop_sandbox(sandbox.process)
    summary["load_average_after"] = os.getloadavg()
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
