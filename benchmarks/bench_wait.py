"""Reaction latency and API load: our watch-based trigger vs. a 10 s polling baseline, side by side.

N snapshot Backups are created at random times in each of two namespaces (same times in both); each
completes `--backup-seconds` after creation. In namespace A our `CustomResourceTrigger` waits for each
one; in namespace B a poke-style loop GETs each CR every `--poll-seconds` (a provider-style sensor).
A plain watch on both namespaces records when each CR really turned Complete. Reported: the median
reaction latency (Complete -> waiter noticed) and API requests per waiter-minute of each, and ratios.
The last line is one JSON object with those figures.

    .venv/bin/python benchmarks/bench_wait.py [--crs 20] [--backup-seconds 150] [--spread 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins")]  # the sandbox is installed (pip install -e sandbox)
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from kubernetes import client, config, watch  # noqa: E402
from tidb_pitr.triggers.custom_resource import CustomResourceTrigger  # noqa: E402
from tidb_sandbox.client import start_sandbox, stop_sandbox  # noqa: E402

CONN = "bench_k8s"


def _body(cluster: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": {"name": name},
            "spec": {"backupType": "full", "br": {"cluster": cluster},
                     "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1",
                            "bucket": "my-bucket", "prefix": f"bench/{name}"}}}


def _observe_complete(kubeconfig: str, namespaces: list[str], names: set[str], out: dict[tuple[str, str], float],
                      stop_at: float) -> None:
    """The reference clock: a plain watch records when each CR turned Complete."""
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    while time.time() < stop_at and len(out) < len(names) * len(namespaces):
        stream = watch.Watch().stream(api.list_cluster_custom_object, "pingcap.com", "v1alpha1", "backups",
                                      timeout_seconds=30)
        for event in stream:
            obj = event["object"]
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if key[0] in namespaces and (obj.get("status") or {}).get("phase") == "Complete" and key not in out:
                out[key] = time.time()


async def _ours(ns: str, name: str, deadline: float, seen: dict[str, float]) -> None:
    # As TidbCrMixin.wait_for builds it with the default bounds: a look every 150 s at a CR that did not
    # change, so that a hopeless RetryFailed (or no status at all) ends the wait after 10 minutes.
    trigger = CustomResourceTrigger(kubernetes_conn_id=CONN, api_group="pingcap.com", plural="backups",
                                    namespace=ns, name=name, kind="terminal", deadline=deadline, watch_timeout=290,
                                    args={"retry_failed_seconds": 600.0, "stuck_seconds": 1800.0},
                                    reevaluate_every=150.0)
    async for event in trigger.run():
        if event.payload["status"] == "success":
            seen[name] = time.time()


async def _poller(api: Any, ns: str, name: str, interval: float, deadline: float, seen: dict[str, float]) -> None:
    offset = random.uniform(0, interval)  # pollers start out of phase, like sensors started at random
    await asyncio.sleep(offset)
    while time.time() < deadline:
        obj = await asyncio.to_thread(api.get_namespaced_custom_object, "pingcap.com", "v1alpha1", ns, "backups", name)
        if (obj.get("status") or {}).get("phase") == "Complete":
            seen[name] = time.time()
            return
        await asyncio.sleep(interval)


async def _run(args: argparse.Namespace, sandbox: Any) -> dict[str, Any]:
    kubeconfig = str(sandbox.kubeconfig)
    os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": kubeconfig}})
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    ours_ns, base_ns = "bench-watch", "bench-poll"
    for ns in (ours_ns, base_ns):
        sandbox.create_cluster(ns, "bench", workload={"inserts_per_s": 5, "updates_per_s": 5, "deletes_per_s": 1})
    names = [f"snap-{i:03d}" for i in range(args.crs)]
    offsets = sorted(random.uniform(0, args.spread) for _ in names)
    deadline = time.time() + args.spread + args.backup_seconds + 120
    complete_at: dict[tuple[str, str], float] = {}
    observer = asyncio.create_task(asyncio.to_thread(_observe_complete, kubeconfig, [ours_ns, base_ns], set(names),
                                                     complete_at, deadline))
    await asyncio.sleep(1.0)
    sandbox.call("DELETE", "/audit")
    ours_seen: dict[str, float] = {}
    base_seen: dict[str, float] = {}
    waiters: list[asyncio.Task[Any]] = []
    started = time.time()
    wait_started: dict[str, float] = {}
    for name, offset in zip(names, offsets, strict=True):
        await asyncio.sleep(max(0.0, started + offset - time.time()))
        for ns in (ours_ns, base_ns):
            await asyncio.to_thread(api.create_namespaced_custom_object, "pingcap.com", "v1alpha1", ns, "backups",
                                    _body("bench", name))
        wait_started[name] = time.time()
        waiters.append(asyncio.create_task(_ours(ours_ns, name, deadline, ours_seen)))
        waiters.append(asyncio.create_task(_poller(api, base_ns, name, args.poll_seconds, deadline, base_seen)))
    await asyncio.gather(*waiters)
    ended = {"ours": max(ours_seen.values()), "poll": max(base_seen.values())}
    audit = sandbox.audit()
    await observer

    def figures(ns: str, seen: dict[str, float], label: str) -> dict[str, float]:
        latencies = [seen[n] - complete_at[(ns, n)] for n in names if n in seen and (ns, n) in complete_at]
        requests = [e for e in audit if e["namespace"] == ns and e["resource"] == "backups"
                    and e["verb"] in ("get", "list", "watch")]
        waiter_minutes = sum(seen.get(n, ended[label]) - wait_started[n] for n in names) / 60
        return {"median_latency_s": round(statistics.median(latencies), 3),
                "p90_latency_s": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 3),
                "requests": len(requests), "waiter_minutes": round(waiter_minutes, 2),
                "requests_per_waiter_minute": round(len(requests) / waiter_minutes, 3), "noticed": len(latencies)}

    ours = figures(ours_ns, ours_seen, "ours")
    poll = figures(base_ns, base_seen, "poll")
    return {"crs": args.crs, "backup_seconds": args.backup_seconds, "poll_seconds": args.poll_seconds,
            "ours": ours, "poll": poll,
            "latency_ratio_ours_to_poll": round(ours["median_latency_s"] / max(poll["median_latency_s"], 1e-9), 4),
            "requests_ratio_ours_to_poll": round(ours["requests_per_waiter_minute"]
                                                 / max(poll["requests_per_waiter_minute"], 1e-9), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crs", type=int, default=20)
    parser.add_argument("--backup-seconds", type=float, default=150.0, help="how long each backup runs")
    parser.add_argument("--spread", type=float, default=60.0, help="CRs are created at random times in this span")
    parser.add_argument("--poll-seconds", type=float, default=10.0, help="the baseline's poll interval")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-wait-"))
    sandbox = start_sandbox(workdir, "--no-azurite", settings={"backup_duration": args.backup_seconds,
                                                                "step_delay": 0.2, "checkpoint_interval": 5})
    try:
        result = asyncio.run(_run(args, sandbox))
    finally:
        stop_sandbox(sandbox.process)
    for label in ("ours", "poll"):
        r = result[label]
        print(f"{label:5} median latency {r['median_latency_s']:.3f}s  p90 {r['p90_latency_s']:.3f}s  "
              f"{r['requests']} requests over {r['waiter_minutes']} waiter-minutes = "
              f"{r['requests_per_waiter_minute']:.3f}/waiter-minute  ({r['noticed']}/{args.crs} noticed)")
    print(f"ratios ours/poll: latency {result['latency_ratio_ours_to_poll']}, "
          f"requests {result['requests_ratio_ours_to_poll']}")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
