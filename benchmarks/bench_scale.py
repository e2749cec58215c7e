"""100 clusters on the production-shaped stack: one 10-minute slot of every guard, and 100 snapshots at once.

scripts/production_stack.py stands up docker-compose.yaml's shape without Docker (CeleryExecutor over
PostgreSQL and Redis; api-server, scheduler, dag-processor, triggerer and Celery workers as processes of their
own) against the sandbox, with `--clusters` clusters in its clusters.yaml (test1/demo1, test1/demo1-002, ...,
each with `--seed-days` of history: a log backup and snapshots) and short sandbox durations.

Once every DAG is parsed, the guard (log_guard, every 10 minutes) and snapshot DAGs of every cluster are
unpaused together through the REST API (two bulk PATCHes): the scheduler starts the latest slot's run of each,
catchup being off, so `--clusters` guard runs and `--clusters` snapshot runs (deferrable: each waits for its
Backup in the triggerer) start at once. With `--next-slot`, the guards' next 10-minute slot is measured as
well: the scheduler starts all of them at the slot boundary by itself.

Measured, sampling every `--sample-seconds` from /proc (psutil) and the sandbox's request counters:
- CPU seconds (and mean cores) and RSS (peak) of the scheduler's and the triggerer's process trees, and of the
  dag-processor, the api-server, the workers (their task processes come and go: a lower bound) and the sandbox;
- Kubernetes API requests per minute at the sandbox: mean over the run and the busiest minute, by verb;
- the triggerer's ESTABLISHED connections to the sandbox's API (peak) and the deferred task instances (peak);
- time from the start (the unpause, or the slot boundary) to the last guard run finished and to the last
  snapshot run finished, through the REST API's run end dates; run states.
The last line is one JSON object with those figures. Not a pass/fail timer: a 2-core machine shared with other
work gives slower figures than a real deployment.

    .venv/bin/python benchmarks/bench_scale.py [--clusters 100] [--seed-days 2] [--next-slot]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "plugins")]  # the sandbox is installed (pip install -e sandbox)
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"),
                                           *filter(None, [os.environ.get("PYTHONPATH")])])

SLOT = timedelta(minutes=10)  # the guard's schedule (flows/guard.py)
# Short jobs, as the tests' stack has them, but backups long enough that all snapshots wait at the same time.
# Log checkpoints every 10 s, not 2: 100 clusters' log tasks would otherwise write 50 files a second to moto.
SETTINGS = {"backup_duration": 30, "restore_duration": 2, "truncate_duration": 5, "compact_duration": 5,
            "checkpoint_interval": 10, "step_delay": 0.5, "tracker_interval": 0.6, "storage_checkpoint_lag": 0.3}
# The REST API's page limit (100 by default) would cut the lists of 500 DAGs and 100 runs: a benchmark setting.
# Tasks wait in Celery's queue for a free slot here, minutes at 100 clusters: the production queued timeout,
# not the fault tests' 90 s, which would take them back from the queue and, the third time, fail them.
EXTRA_ENV = {"AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000", "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
             "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "120"}
FINISHED = ("success", "failed")


# -- processes ----------------------------------------------------------------------------------------------
def tree(pid: int) -> list[Any]:
    """The process and its live descendants (psutil), or [] when it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system, live processes only) and RSS in KiB of a process tree."""
    import psutil

    cpu, rss = 0.0, 0
    for proc in tree(pid):
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss // 1024
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


def connections_to(pid: int, port: int) -> int:
    import psutil

    count = 0
    for proc in tree(pid):
        try:
            count += sum(1 for c in proc.net_connections(kind="tcp")
                         if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port)
        except psutil.NoSuchProcess:
            continue
    return count


class Sampler(threading.Thread):
    """Every `interval` seconds: CPU and RSS of each named process tree, the sandbox's request counters, the
    triggerer's connections to the sandbox, the deferred task instances."""

    def __init__(self, stack: Any, interval: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.interval = stack, interval
        self.samples: list[dict[str, Any]] = []
        self.halt = threading.Event()
        self.port = int(stack.sandbox.url.rsplit(":", 1)[1])

    def pids(self) -> dict[str, list[int]]:
        stack = self.stack
        return {"scheduler": [stack.components["scheduler"].process.pid],
                "triggerer": [t.process.pid for t in stack.triggerers if t.alive()],
                "dag-processor": [stack.components["dag-processor"].process.pid],
                "api-server": [stack.components["api-server"].process.pid],
                "workers": [w.process.pid for w in stack.worker_list if w.alive()],
                "sandbox": [stack.sandbox.process.pid]}

    def sample(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"t": time.time(), "procs": {}}
        for name, pids in self.pids().items():
            usage = [tree_usage(pid) for pid in pids]
            entry["procs"][name] = {"cpu": sum(u[0] for u in usage), "rss_kib": sum(u[1] for u in usage)}
        entry["triggerer_connections"] = sum(connections_to(pid, self.port) for pid in self.pids()["triggerer"])
        counts = self.stack.sandbox.request_counts()
        entry["requests"] = counts["total"]
        entry["requests_by_verb"] = counts["byVerb"]
        entry["watches"] = counts["activeWatches"]
        try:
            deferred = self.stack.call("GET", "/api/v2/dags/~/dagRuns/~/taskInstances?state=deferred&limit=1",
                                       timeout=30)
            entry["deferred"] = deferred["total_entries"]
        except Exception:  # noqa: BLE001 - a busy api-server: this sample goes without
            entry["deferred"] = None
        return entry

    def run(self) -> None:
        while not self.halt.is_set():
            started = time.monotonic()
            self.samples.append(self.sample())
            self.halt.wait(max(0.0, self.interval - (time.monotonic() - started)))


def process_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = samples[0], samples[-1]
    wall = last["t"] - first["t"]
    out: dict[str, Any] = {}
    for name in first["procs"]:
        cpu = last["procs"][name]["cpu"] - first["procs"][name]["cpu"]
        rss = [s["procs"][name]["rss_kib"] for s in samples]
        out[name] = {"cpu_s": round(max(cpu, 0.0), 1), "mean_cores": round(max(cpu, 0.0) / max(wall, 1e-9), 3),
                     "rss_peak_mib": round(max(rss) / 1024, 1), "rss_end_mib": round(rss[-1] / 1024, 1)}
    return out


def request_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = samples[0], samples[-1]
    minutes = (last["t"] - first["t"]) / 60
    busiest = 0.0
    for i, start in enumerate(samples):  # the busiest 60 s between two samples at least a minute apart
        for end in samples[i + 1:]:
            if end["t"] - start["t"] >= 60:
                busiest = max(busiest, (end["requests"] - start["requests"]) * 60 / (end["t"] - start["t"]))
                break
    by_verb = {verb: n - first["requests_by_verb"].get(verb, 0) for verb, n in last["requests_by_verb"].items()}
    return {"total": last["requests"] - first["requests"],
            "per_minute_mean": round((last["requests"] - first["requests"]) / max(minutes, 1e-9), 1),
            "per_minute_busiest": round(busiest, 1),
            "by_verb": {k: v for k, v in sorted(by_verb.items()) if v},
            "watches_peak": max(s["watches"] for s in samples),
            "triggerer_connections_peak": max(s["triggerer_connections"] for s in samples),
            "deferred_peak": max((s["deferred"] or 0) for s in samples)}


# -- runs ---------------------------------------------------------------------------------------------------
def parse_time(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def list_runs(stack: Any, dag_ids: list[str], after: datetime) -> list[dict[str, Any]]:
    """Runs of those DAGs that ran after `after` (one POST /dags/~/dagRuns/list, pages of 1000)."""
    runs: list[dict[str, Any]] = []
    while True:
        page = stack.call("POST", "/api/v2/dags/~/dagRuns/list", {
            "dag_ids": dag_ids, "page_limit": 1000, "page_offset": len(runs),
            "start_date_gte": after.isoformat()})
        runs += page["dag_runs"]
        if len(runs) >= page["total_entries"] or not page["dag_runs"]:
            return runs


def first_runs(stack: Any, dag_ids: list[str], after: datetime) -> list[dict[str, Any]]:
    """The first run of each DAG that started after `after`."""
    first: dict[str, dict[str, Any]] = {}
    for run in sorted(list_runs(stack, dag_ids, after), key=lambda r: r["start_date"] or ""):
        first.setdefault(run["dag_id"], run)
    return list(first.values())


def wait_runs(stack: Any, dag_ids: list[str], after: datetime, timeout: float,
              say: Any) -> list[dict[str, Any]]:
    """One finished run per DAG (the first that started after `after`), or whatever there is at the timeout
    or at Ctrl-C (the figures are then of the runs that finished; the unfinished ones are counted by state)."""
    deadline = time.monotonic() + timeout
    last_said = 0.0
    try:
        while True:
            runs = first_runs(stack, dag_ids, after)
            done = [r for r in runs if r["state"] in FINISHED]
            if len(done) == len(dag_ids) or time.monotonic() > deadline:
                return runs
            if time.monotonic() - last_said > 60:
                say(f"  {len(runs)}/{len(dag_ids)} runs started, {len(done)} finished")
                last_said = time.monotonic()
            time.sleep(5)
    except KeyboardInterrupt:
        say("  interrupted: reporting the runs as they are")
        return first_runs(stack, dag_ids, after)


def run_figures(runs: list[dict[str, Any]], expected: int, since: float) -> dict[str, Any]:
    states: dict[str, int] = {}
    for run in runs:
        states[run["state"]] = states.get(run["state"], 0) + 1
    ended = [t for r in runs if r["state"] in FINISHED and (t := parse_time(r["end_date"])) is not None]
    started = [t for r in runs if (t := parse_time(r["start_date"])) is not None]
    durations = [parse_time(r["end_date"]) - parse_time(r["start_date"]) for r in runs
                 if r["state"] in FINISHED and r["start_date"] and r["end_date"]]
    return {"expected": expected, "runs": len(runs), "states": states,
            "to_last_started_s": round(max(started) - since, 1) if started else None,
            "to_last_finished_s": round(max(ended) - since, 1) if ended else None,
            "run_seconds_median": round(statistics.median(durations), 1) if durations else None,
            "run_seconds_max": round(max(durations), 1) if durations else None}


def unpause(stack: Any, pattern: str) -> int:
    """Every DAG whose id contains `pattern`, in one bulk PATCH; how many it changed."""
    answer = stack.call("PATCH", f"/api/v2/dags?dag_id_pattern={pattern}&limit=1000&update_mask=is_paused",
                        {"is_paused": False})
    return int(answer.get("total_entries", len(answer.get("dags", []))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--seed-days", type=float, default=2.0, help="days of history of every cluster")
    parser.add_argument("--backup-seconds", type=float, default=SETTINGS["backup_duration"],
                        help="how long each snapshot Backup runs in the sandbox")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=8, help="task slots per Celery worker")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--next-slot", action="store_true",
                        help="also measure the guards' next 10-minute slot, started by the scheduler alone")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds to wait for each wave of runs; then (or at Ctrl-C) figures of what ended")
    args = parser.parse_args()

    from production_stack import ProductionStack

    def say(message: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)

    settings = {**SETTINGS, "backup_duration": args.backup_seconds}
    stack_started = time.monotonic()
    with ProductionStack(clusters=args.clusters, seed_days=args.seed_days, settings=settings,
                         workers=args.workers, worker_concurrency=args.concurrency, extra_env=EXTRA_ENV,
                         say=say) as stack:
        from tidb_pitr.config import load_config

        stack_seconds = time.monotonic() - stack_started
        config = load_config(stack.config)
        guards = [c.dag_id("log_guard") for c in config.clusters]
        snapshots = [c.dag_id("snapshot") for c in config.clusters]
        say(f"waiting for {len(guards) + len(snapshots)} DAGs to be parsed")
        parse_started = time.monotonic()
        stack.wait_dags(guards + snapshots, timeout=1800)
        parse_seconds = time.monotonic() - parse_started
        sampler = Sampler(stack, args.sample_seconds)
        sampler.samples.append(sampler.sample())
        sampler.start()
        time.sleep(max(2 * args.sample_seconds, 10))  # an idle baseline before the load

        start = datetime.now(UTC)
        unpaused = unpause(stack, "log_guard") + unpause(stack, "snapshot")
        say(f"unpaused {unpaused} DAGs: {len(guards)} guard and {len(snapshots)} snapshot runs should start")
        guard_runs = wait_runs(stack, guards, start - timedelta(seconds=1), args.timeout, say)
        wave_end = time.time()
        snapshot_runs = wait_runs(stack, snapshots, start - timedelta(seconds=1), args.timeout, say)
        waves: dict[str, Any] = {"unpause": {
            "guards": run_figures(guard_runs, len(guards), start.timestamp()),
            "snapshots": run_figures(snapshot_runs, len(snapshots), start.timestamp())}}
        say(f"first wave: guards {waves['unpause']['guards']}, snapshots {waves['unpause']['snapshots']}")
        samples_first = list(sampler.samples)
        if args.next_slot:
            now = datetime.now(UTC)
            boundary = datetime.fromtimestamp((now.timestamp() // SLOT.total_seconds() + 1) * SLOT.total_seconds(),
                                              UTC)
            say(f"waiting for the next guard slot at {boundary:%H:%M:%S}")
            time.sleep(max(0.0, (boundary - datetime.now(UTC)).total_seconds()))
            slot_runs = wait_runs(stack, guards, boundary - timedelta(seconds=1), args.timeout, say)
            waves["next_slot"] = {"guards": run_figures(slot_runs, len(guards), boundary.timestamp())}
            say(f"next slot: guards {waves['next_slot']['guards']}")
        sampler.halt.set()
        sampler.join(60)
        samples = sampler.samples
    result = {
        "clusters": args.clusters, "seed_days": args.seed_days, "backup_seconds": args.backup_seconds,
        "workers": args.workers, "concurrency": args.concurrency,
        "stack_start_s": round(stack_seconds, 1), "dags_parsed_s": round(parse_seconds, 1),
        "first_wave_s": round(wave_end - start.timestamp(), 1),
        "waves": waves,
        "processes_first_wave": process_figures([s for s in samples_first if s["t"] >= start.timestamp() - 1]
                                                or samples_first),
        "processes_all": process_figures(samples),
        "api_requests_first_wave": request_figures([s for s in samples_first if s["t"] >= start.timestamp() - 1]
                                                   or samples_first),
        "api_requests_all": request_figures(samples),
    }
    for name, figures in result["processes_first_wave"].items():
        print(f"{name:13} CPU {figures['cpu_s']:7.1f}s ({figures['mean_cores']:.2f} cores)  "
              f"RSS peak {figures['rss_peak_mib']:7.1f} MiB  end {figures['rss_end_mib']:7.1f} MiB")
    req = result["api_requests_first_wave"]
    print(f"sandbox API: {req['total']} requests, {req['per_minute_mean']}/min mean, {req['per_minute_busiest']}/min "
          f"busiest minute, {req['by_verb']}; watches peak {req['watches_peak']}, triggerer connections peak "
          f"{req['triggerer_connections_peak']}, deferred task instances peak {req['deferred_peak']}")
    for wave, kinds in waves.items():
        for kind, figures in kinds.items():
            print(f"{wave:9} {kind:9} {figures['runs']}/{figures['expected']} runs {figures['states']}; "
                  f"last started after {figures['to_last_started_s']}s, last finished after "
                  f"{figures['to_last_finished_s']}s; run median {figures['run_seconds_median']}s "
                  f"max {figures['run_seconds_max']}s")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
