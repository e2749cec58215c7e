"""How soon an RPO breach reaches a person: the event-driven alert vs. the 10-minute guard.

The sandbox's log checkpoint is frozen (fault `freeze_checkpoint`) and, per repetition, the time from the lag
crossing warn (the frozen checkpoint + warn) to the notifier's call (a local HTTP server records when the
HttpNotifier posts) is measured; then the checkpoint is thawed and the recovery alert awaited before the next.

Two modes:
- `airflow` (default): `airflow standalone` (SQLite; scheduler, dag-processor, triggerer, LocalExecutor) with
  the real DAG file: the asset watcher runs in the real triggerer, the scheduler starts `rpo_alert` on the
  asset event, the executor runs its task, which calls the notifier. This is the whole path. Several minutes,
  most of it Airflow starting (`make bench-alert`).
- `in-process`: the watcher's trigger made from its serialized form and run in this process, as the triggerer
  runs it, and each event handed to the alert DAG's `deliver` at once: the trigger and the notifier only,
  without the scheduler and the task start. About a minute.

The guard is not measured but computed from its schedule: it looks every 10 minutes, so a breach waits for
its next run, uniform over the interval (median 300 s, at worst 600 s), plus the run's own time, which is
measured once. (And at warn the guard only logs; it fails its run, which is what alerts, only at critical.)
The last line is one JSON object.

    .venv/bin/python benchmarks/bench_alert.py [--mode airflow|in-process] [--reps 5] [--warn 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "scripts")]  # the sandbox is installed (pip install -e sandbox)
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from tidb_sandbox.client import start_sandbox, stop_sandbox  # noqa: E402

NAMESPACE, NAME = "bench-rpo", "rpo1"
GUARD_INTERVAL = 600.0
ALERT_CONN = "bench_alerts"
# The sandbox's operator copies the checkpoint into the CR every second (TiDB Operator: every minute).
SANDBOX = {"checkpoint_interval": 0.5, "tracker_interval": 1.0, "step_delay": 0.2}


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append({"at": time.time(), "json": json.loads(body or b"null")})  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _webhook() -> HTTPServer:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    server.calls = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _cluster_config(args: argparse.Namespace, port: int) -> dict[str, Any]:
    notifier = {"class": "airflow.providers.http.notifications.HttpNotifier",
                "args": {"http_conn_id": ALERT_CONN, "endpoint": "/alert",
                         "json": {"level": "{{ tidb_pitr.level }}", "lag": "{{ tidb_pitr.lag_seconds }}",
                                  "checkpoint_time": "{{ tidb_pitr.checkpoint_time }}",
                                  "summary": "{{ tidb_pitr.summary }}"}}}
    return {"name": NAME, "namespace": NAMESPACE, "api_group": "pingcap.com", "kubernetes_conn_id": "sandbox_k8s",
            "storage": {"provider": "s3", "bucket": "my-bucket", "root": NAME, "region": "us-west-1",
                        "secret_name": "s3-secret", "conn_id": "sandbox_s3"},
            # Critical far away: each repetition measures one warn crossing, then its recovery.
            "rpo": {"warn": f"{args.warn:g}s", "critical": "1h"}, "notifiers": [notifier],
            "waits": {"tracker_interval": "1s", "start_grace": "5s"}}


def _connections(sandbox: Any, port: int) -> dict[str, str]:
    from airflow_stack import sandbox_connections

    conns = sandbox_connections(sandbox, {})
    conns[f"AIRFLOW_CONN_{ALERT_CONN.upper()}"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"})
    return conns


def _crossing(call: dict[str, Any], warn: float) -> float:
    checkpoint = datetime.fromisoformat(call["json"]["checkpoint_time"].replace("Z", "+00:00")).timestamp()
    return checkpoint + warn


def _wait_call(calls: list[dict[str, Any]], start: int, level: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in calls[start:] if c["json"].get("level") == level]
        if found:
            return found[0]
        time.sleep(0.05)
    raise TimeoutError(f"no {level} alert within {timeout:.0f}s")


def _repeat(args: argparse.Namespace, sandbox: Any, calls: list[dict[str, Any]],
            say: Callable[[str], None]) -> tuple[list[float], list[float]]:
    """(warm-up samples, samples): the first cycles are not counted, since the triggerer may list the watcher
    as its own some seconds before the trigger's first look (its first alert then comes late)."""
    samples = []
    for rep in range(args.warmup + args.reps):
        mark = len(calls)
        sandbox.set_faults(freeze_checkpoint=True)
        warn = _wait_call(calls, mark, "warn", args.warn + args.timeout)
        delay = warn["at"] - _crossing(warn, args.warn)
        samples.append(round(delay, 3))
        sandbox.set_faults(freeze_checkpoint=False)
        _wait_call(calls, mark, "recovered", args.timeout)
        label = f"warm-up {rep + 1}" if rep < args.warmup else f"repetition {rep + 1 - args.warmup}/{args.reps}"
        say(f"{label}: lag crossed warn, notifier called {delay:.3f}s later (lag then {warn['json']['lag']} s)")
        time.sleep(1.0)
    return samples[:args.warmup], samples[args.warmup:]


def _in_process(args: argparse.Namespace, sandbox: Any, server: HTTPServer, say: Callable[[str], None]) -> dict:
    from tidb_pitr.config import ClusterConfig
    from tidb_pitr.flows.rpo_alert import deliver, rpo_trigger
    from tidb_pitr.flows.tasks.guard import measure_rpo
    from tidb_pitr.triggers.rpo import RpoLagTrigger

    os.environ.update(_connections(sandbox, server.server_port))
    cluster = ClusterConfig.model_validate(_cluster_config(args, server.server_port))
    # As the triggerer makes it: the class from its path, with the kwargs the DAG processor stored.
    _, kwargs = rpo_trigger(cluster).serialize()
    trigger = RpoLagTrigger(**kwargs)
    samples: list[tuple[list[float], list[float]]] = []

    async def watch() -> None:
        async for event in trigger.run():
            # The alert DAG's own step, called at once: no scheduler, no task start in this mode.
            await asyncio.to_thread(deliver, cluster, {}, [event.payload])

    def drive() -> None:
        time.sleep(2.0)
        samples.append(_repeat(args, sandbox, server.calls, say))  # type: ignore[attr-defined]

    async def main() -> None:
        task = asyncio.create_task(watch())
        try:
            await asyncio.to_thread(drive)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    started = time.monotonic()
    measure_rpo(cluster)
    return {"warmup": samples[0][0], "samples": samples[0][1],
            "guard_run_seconds": round(time.monotonic() - started, 3),
            "guard_run_what": "the measure_rpo task body, in process"}


def _watcher_running(home: Path) -> bool:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT count(*) FROM trigger WHERE classpath LIKE '%RpoLagTrigger' "
                          "AND triggerer_id IS NOT NULL").fetchone()
    return bool(rows and rows[0])


def _airflow(args: argparse.Namespace, sandbox: Any, server: HTTPServer, workdir: Path,
             say: Callable[[str], None]) -> dict:
    import yaml
    from airflow_stack import AirflowApi, _start_airflow, airflow_env, free_port, read_password, run_seconds, stop_group

    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    config = workdir / "clusters.yaml"
    config.write_text(yaml.safe_dump({"clusters": [_cluster_config(args, server.server_port)]}))
    port = free_port()
    env = airflow_env(home, config, port, _connections(sandbox, server.server_port))
    say(f"starting airflow standalone (log: {home / 'standalone.log'})")
    began = time.monotonic()
    process = _start_airflow(home, env)
    try:
        api = AirflowApi(f"http://127.0.0.1:{port}", "admin", read_password(home, process))
        api.wait_healthy(process)
        api.login()
        alert, guard = f"tidb_{NAMESPACE}_{NAME}_rpo_alert", f"tidb_{NAMESPACE}_{NAME}_log_guard"
        api.wait_dags([alert, guard])
        api.unpause(alert)
        deadline = time.monotonic() + 300
        while not _watcher_running(home):
            if time.monotonic() > deadline:
                raise TimeoutError("the triggerer did not pick up the RPO watcher")
            time.sleep(1)
        say(f"Airflow up and the watcher running in the triggerer after {time.monotonic() - began:.0f}s")
        time.sleep(3.0)
        warmup, samples = _repeat(args, sandbox, server.calls, say)  # type: ignore[attr-defined]
        # Unpausing starts the latest slot's run (catchup=False): that one is timed, as the schedule runs it.
        api.unpause(guard)
        run_id = api.wait_scheduled_run(guard, timeout=120) or api.trigger(guard)
        run = api.wait_run(guard, run_id, timeout=300)
        return {"warmup": warmup, "samples": samples, "guard_run_seconds": round(run_seconds(run), 3),
                "guard_run_what": f"one log_guard DAG run ({run['state']}), start to end"}
    finally:
        stop_group(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("airflow", "in-process"), default="airflow")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="cycles before the counted ones")
    parser.add_argument("--warn", type=float, default=5.0, help="the warn threshold, seconds")
    parser.add_argument("--timeout", type=float, default=120.0, help="per alert, seconds")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-alert-"))

    def say(text: str) -> None:
        print(text, flush=True)

    server = _webhook()
    sandbox = start_sandbox(workdir / "sandbox", "--no-azurite", settings=SANDBOX)
    try:
        sandbox.create_cluster(NAMESPACE, NAME, seed_days=1, storage="s3", storage_root=NAME,
                               workload={"inserts_per_s": 5, "updates_per_s": 2, "deletes_per_s": 1})
        measured = (_in_process if args.mode == "in-process" else
                    lambda *a: _airflow(*a[:3], workdir, a[3]))(args, sandbox, server, say)
    finally:
        sandbox.clear_faults()
        stop_sandbox(sandbox.process)
        server.shutdown()
    samples, run = measured["samples"], measured["guard_run_seconds"]
    result = {
        "mode": args.mode, "reps": args.reps, "warn_seconds": args.warn,
        "event_median_s": round(statistics.median(samples), 3), "event_samples_s": samples,
        "event_warmup_samples_s": measured["warmup"],
        "guard_interval_s": GUARD_INTERVAL, "guard_run_s": run, "guard_run_what": measured["guard_run_what"],
        "guard_median_s": round(GUARD_INTERVAL / 2 + run, 3), "guard_worst_s": round(GUARD_INTERVAL + run, 3),
    }
    path = ("triggerer -> asset event -> scheduler -> rpo_alert task -> notifier" if args.mode == "airflow"
            else "trigger in process -> notifier (no scheduler, no task start)")
    say(f"event-driven ({path}): median {result['event_median_s']:.3f}s over {args.reps}; samples "
        f"{', '.join(f'{s:.3f}' for s in samples)} s (warm-up, not counted: "
        f"{', '.join(f'{s:.3f}' for s in measured['warmup']) or 'none'})")
    say(f"10-minute guard (computed, not measured): the next run is uniform over {GUARD_INTERVAL:.0f}s after the "
        f"crossing, plus the run ({run:.1f}s, {measured['guard_run_what']}): median {result['guard_median_s']:.0f}s, "
        f"worst {result['guard_worst_s']:.0f}s; at warn it only logs, it alerts (a failed run) at critical")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
