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
then they are released and all complete within a few seconds of each other. A plain watch in this (parent)
process records when each turned Complete, the reference clock. Measured per variant, each in a fresh child:

- memory per wait: (RSS with every trigger waiting - RSS of the idle runner) / waits, from /proc;
- CPU seconds of the child (start-up excluded), split into waiting and reacting;
- API connections held: ESTABLISHED sockets of the child to the sandbox's port, open files of the child;
- reaction latency: Complete (reference watch) -> the trigger yielded its event (median, p90, max), and
  -> the runner handed the event to its supervisor (the runner syncs about once a second);
- API requests at the sandbox (its counters) while the child ran, and the sandbox's CPU.

Variants: `per-cr` is the product (one list + one watch per wait, held open); `shared` is a prototype for
comparison only, not in the product: the same predicate behind Airflow 3.3's shared-stream API
(`BaseEventTrigger.shared_stream_key`), one namespace watch for all the waits of a namespace, each trigger
listing its CR once on its own and then filtering the shared stream (no deadline, no re-evaluation).

The last line is one JSON object with the figures of each variant and the ratios shared / per-cr.

    .venv/bin/python benchmarks/bench_triggerer.py [--waits 1000] [--variants per-cr,shared]
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
from collections.abc import AsyncIterator, Hashable
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
def _shared_trigger_class() -> type:
    """The shared-watch prototype (comparison only): our predicate behind Airflow's shared-stream API."""
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
    from tidb_pitr.hooks.kubernetes import AsyncTidbOperatorHook
    from tidb_pitr.triggers.custom_resource import CustomResourceTrigger
    from tidb_pitr.triggers.predicates import evaluate

    class SharedWatchTrigger(CustomResourceTrigger, BaseEventTrigger):
        def shared_stream_key(self) -> Hashable:
            return (self.kubernetes_conn_id, self.api_group, self.plural, self.namespace)

        @classmethod
        async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
            hook = AsyncTidbOperatorHook(kwargs["kubernetes_conn_id"], api_group=kwargs["api_group"])
            async with hook.connection() as api:
                while True:  # "yield forever, or raise"
                    items, version = await hook.list_all(api, kwargs["plural"], kwargs["namespace"])
                    for item in items:
                        yield {"type": "ADDED", "object": item}
                    try:
                        while True:
                            async for event in hook.watch(api, kwargs["plural"], kwargs["namespace"], version, 290):
                                obj = event.get("raw_object") or event.get("object")
                                if isinstance(obj, dict) and (obj.get("metadata") or {}).get("resourceVersion"):
                                    version = obj["metadata"]["resourceVersion"]
                                if event.get("type") != "BOOKMARK":
                                    yield {"type": event.get("type"), "object": obj}
                    except Exception as exc:
                        if getattr(exc, "status", None) != 410:
                            raise

        async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
            # The stream may have started long before this trigger: decide from the CR as it is now first.
            hook = AsyncTidbOperatorHook(self.kubernetes_conn_id, api_group=self.api_group)
            async with hook.connection() as api:
                obj, _ = await hook.list_one(api, self.plural, self.name, self.namespace)
            verdict = evaluate(self.kind, self.plural, obj, self.args)
            if verdict is None:
                async for raw in shared_stream:
                    obj = raw["object"]
                    if (obj.get("metadata") or {}).get("name") != self.name:
                        continue
                    current = None if raw["type"] == "DELETED" else obj
                    verdict = evaluate(self.kind, self.plural, current, self.args)
                    if verdict is not None:
                        obj = current
                        break
            if verdict is not None:
                yield self._verdict_event(verdict, obj)

    # The runner imports a trigger by its classpath: make this one a module attribute, as a class would be.
    SharedWatchTrigger.__module__ = __name__
    SharedWatchTrigger.__qualname__ = "SharedWatchTrigger"
    globals()["SharedWatchTrigger"] = SharedWatchTrigger
    return SharedWatchTrigger


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
    from tidb_pitr.triggers.custom_resource import CustomResourceTrigger

    os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": args.kubeconfig}})
    names = json.loads(Path(args.names_file).read_text())
    cls = _shared_trigger_class() if args.variant == "shared" else CustomResourceTrigger
    deadline = time.time() + 3600
    built = []
    for i, name in enumerate(names, start=1):
        # As TidbCrMixin.wait_for builds a snapshot wait with the default bounds (bench_wait.py does the same).
        trigger = cls(kubernetes_conn_id=CONN, api_group=GROUP, plural=PLURAL, namespace=args.namespace, name=name,
                      kind="terminal", deadline=deadline, args={"retry_failed_seconds": 600.0, "stuck_seconds": 1800.0},
                      reevaluate_every=150.0)
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

    async def main() -> dict[str, Any]:
        # Idle runner, imports done: the parent takes the baseline, then says go.
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.time()
        cpu_start = time.process_time()
        task = asyncio.create_task(runner.arun())
        await supervisor.done.wait()
        finished = time.time()
        cpu_end = time.process_time()
        runner.stop = True
        await asyncio.wait_for(task, timeout=30)
        by_id = supervisor.names
        return {"started": started, "finished": finished, "cpu_seconds": cpu_end - cpu_start,
                "yielded": {by_id[i]: t for i, t in runner.events.yielded.items() if i in by_id},
                "handed": {by_id[i]: t for i, t in supervisor.handed.items()},
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


def _run_variant(args: argparse.Namespace, sandbox: Any, variant: str, workdir: Path) -> dict[str, Any]:
    from kubernetes import client, config

    namespace = f"trig-{variant}"
    sandbox.create_cluster(namespace, "bench")
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sandbox.kubeconfig)))
    names = [f"snap-{i:04d}" for i in range(args.waits)]
    sandbox.set_faults(hang_backups=True)  # every Backup stays Running until released
    reference = _Reference(str(sandbox.kubeconfig), namespace, len(names))
    reference.start()
    for name in names:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body(namespace, "bench", name))
    _wait(lambda: len(reference.running) >= len(names), 300, "every Backup Running")

    names_file = workdir / f"{variant}-names.json"
    names_file.write_text(json.dumps(names))
    out = workdir / f"{variant}-result.json"
    log = open(workdir / f"{variant}-child.log", "wb")  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", "--variant", variant, "--namespace", namespace,
         "--kubeconfig", str(sandbox.kubeconfig), "--names-file", str(names_file), "--out", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env={
            **os.environ,
            # Every raw event of the namespace reaches every subscriber: 1000 CRs make ~5000 in a burst.
            "AIRFLOW__TRIGGERER__SHARED_STREAM_SUBSCRIBER_QUEUE_SIZE": str(max(1024, 20 * args.waits))})
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
        reference_watches = reference.watches
        sandbox_cpu0 = cpu_seconds(sandbox.process.pid)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        go = time.time()
        # Every trigger has listed its CR and the watches are open (per-cr: one each; shared: one in all).
        def waiting() -> bool:
            now = sandbox.request_counts()["byResource"]
            lists = now.get("list backups", 0) - before["byResource"].get("list backups", 0)
            watches = (now.get("watch backups", 0) - before["byResource"].get("watch backups", 0)
                       - (reference.watches - reference_watches))
            return lists >= len(names) + (variant == "shared") and watches >= (len(names) if variant == "per-cr"
                                                                                  else 1)
        _wait(waiting, 600, f"{len(names)} triggers waiting")
        all_waiting = time.time()
        time.sleep(args.settle)
        limit = fd_limit(pid)
        held = {"rss_kib": rss_kib(pid), "cpu": cpu_seconds(pid), "files": open_files(pid),
                "connections": connections_to(pid, port), "sandbox_rss_kib": rss_kib(sandbox.process.pid),
                "sandbox_files": open_files(sandbox.process.pid),
                "active_watches": sandbox.request_counts()["activeWatches"] - before["activeWatches"]}
        released = time.time()
        sandbox.set_faults(hang_backups=False)
        child.wait(timeout=600)
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
    complete = reference.complete
    yielded = [result["yielded"][n] - complete[n] for n in names if n in result["yielded"] and n in complete]
    handed = [result["handed"][n] - complete[n] for n in names if n in result["handed"] and n in complete]
    requests = {k: after["byResource"].get(k, 0) - before["byResource"].get(k, 0)
                for k in after["byResource"] if k.endswith(" backups")}
    requests["watch backups"] -= reference.watches - reference_watches
    requests = {k: v for k, v in requests.items() if v}
    waits = len(names)
    return {
        "waits": waits, "noticed": len(yielded), "failures": result["failures"], "events": result["statuses"],
        "rss_idle_mib": round(idle["rss_kib"] / 1024, 1), "rss_waiting_mib": round(held["rss_kib"] / 1024, 1),
        "rss_peak_mib": round(result["peak_rss_kib"] / 1024, 1),
        "kib_per_wait": round((held["rss_kib"] - idle["rss_kib"]) / waits, 1),
        "cpu_s_to_all_waiting": round(held["cpu"] - idle["cpu"], 2),
        "cpu_s_total": round(result["cpu_seconds"], 2),
        "seconds_to_all_waiting": round(all_waiting - go, 2),
        "connections_held": held["connections"], "open_files_waiting": held["files"], "open_files_limit": limit,
        "sandbox_watches_held": held["active_watches"], "sandbox_open_files_waiting": held["sandbox_files"],
        "sandbox_rss_mib": round(held["sandbox_rss_kib"] / 1024, 1), "sandbox_cpu_s": round(sandbox_cpu, 2),
        "api_requests": sum(requests.values()), "api_requests_by_kind": requests,
        "complete_spread_s": round(max(complete.values()) - min(complete.values()), 2),
        "complete_after_release_s": round(max(complete.values()) - released, 2),
        "latency_yield_s": {"median": round(statistics.median(yielded), 3), "p90": round(_pct(yielded, 0.9), 3),
                            "max": round(max(yielded), 3)},
        "latency_handed_s": {"median": round(statistics.median(handed), 3), "p90": round(_pct(handed, 0.9), 3),
                             "max": round(max(handed), 3)},
    }


def _print(variant: str, r: dict[str, Any]) -> None:
    ly, lh = r["latency_yield_s"], r["latency_handed_s"]
    print(f"{variant:7} {r['noticed']}/{r['waits']} noticed, events {r['events']}, {r['failures']} failed; "
          f"RSS idle {r['rss_idle_mib']} MiB -> waiting {r['rss_waiting_mib']} MiB = {r['kib_per_wait']} KiB/wait "
          f"(peak {r['rss_peak_mib']} MiB)")
    print(f"        CPU {r['cpu_s_to_all_waiting']}s to all waiting ({r['seconds_to_all_waiting']}s), "
          f"{r['cpu_s_total']}s in all; {r['connections_held']} connections to the API held, "
          f"{r['open_files_waiting']} open files (limit {r['open_files_limit']})")
    print(f"        sandbox: {r['sandbox_watches_held']} watches held, {r['sandbox_open_files_waiting']} open files, "
          f"{r['sandbox_cpu_s']}s CPU, {r['api_requests']} requests {r['api_requests_by_kind']}")
    print(f"        all Complete within {r['complete_spread_s']}s; latency Complete -> event: median {ly['median']}s "
          f"p90 {ly['p90']}s max {ly['max']}s; -> supervisor: median {lh['median']}s p90 {lh['p90']}s "
          f"max {lh['max']}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: per-cr, shared")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between all waiting and the release")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
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

    from tidb_sandbox.client import start_sandbox, stop_sandbox

    workdir = Path(tempfile.mkdtemp(prefix="bench-triggerer-"))
    sandbox = start_sandbox(workdir / "sandbox", "--no-azurite",
                            settings={"step_delay": 0.05, "backup_duration": 0.2})
    results: dict[str, Any] = {}
    try:
        for variant in variants:
            results[variant] = _run_variant(args, sandbox, variant, workdir)
            _print(variant, results[variant])
    finally:
        stop_sandbox(sandbox.process)
    summary: dict[str, Any] = {"waits": args.waits, **results}
    if "per-cr" in results and "shared" in results:
        ours, shared = results["per-cr"], results["shared"]
        summary["ratios_shared_to_per_cr"] = {
            "kib_per_wait": round(shared["kib_per_wait"] / max(ours["kib_per_wait"], 1e-9), 3),
            "connections_held": round(shared["connections_held"] / max(ours["connections_held"], 1), 4),
            "cpu_s_total": round(shared["cpu_s_total"] / max(ours["cpu_s_total"], 1e-9), 3),
            "api_requests": round(shared["api_requests"] / max(ours["api_requests"], 1), 3),
            "latency_yield_median": round(shared["latency_yield_s"]["median"]
                                          / max(ours["latency_yield_s"]["median"], 1e-9), 3),
        }
        print("ratios shared/per-cr: " + ", ".join(f"{k} {v}" for k, v in summary["ratios_shared_to_per_cr"].items()))
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
