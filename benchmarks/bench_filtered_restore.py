"""How long a point-in-time restore of one table takes against the whole cluster's, on the sandbox.

A v1 cluster with `--seed-days` of history (snapshots, a log backup, a live workload); restore throughput set
(`restore_snapshot_rate` / `restore_log_rate`, bytes per second per TiKV, scaled down as sandbox/FIDELITY.md
says for KB-sized data); then the same restore point twice: the whole cluster into an empty target, and
`shop.orders` alone (`spec.tableFilter`, BR v8.5.5) into a target that holds other tables. Prints each
restore's `timeTaken` and the bytes it read; the last line is one JSON object. The sandbox scales a filtered
restore's snapshot and log bytes by the share of the filter's keys (FIDELITY row "Filtered PITR", inferred).

    .venv/bin/python benchmarks/bench_filtered_restore.py [--seed-days 1] [--snapshot-rate 2800] [--log-rate 300]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tidb_sandbox.client import running_sandbox

GROUP, VERSION, NAMESPACE = "pingcap.com", "v1alpha1", "bench"


def _seconds(go_duration: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", go_duration))


def _wait(read: Any, done: Any, timeout: float = 600.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout} s: {value}")
        time.sleep(0.2)


def _restore(api: Any, name: str, target: str, spec: dict[str, Any]) -> dict[str, Any]:
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "restores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Restore", "metadata": {"name": name},
        "spec": {"br": {"cluster": target}, "toolImage": "pingcap/br:v8.5.5", **spec}})
    return _wait(lambda: api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "restores", name),
                 lambda o: (o.get("status") or {}).get("phase") in ("Complete", "Failed"))["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-days", type=float, default=1.0)
    parser.add_argument("--snapshot-rate", type=float, default=2800.0, help="bytes/s per TiKV")
    parser.add_argument("--log-rate", type=float, default=300.0, help="bytes/s per TiKV")
    args = parser.parse_args()
    with running_sandbox(Path(tempfile.mkdtemp(prefix="bench-filtered-")) / "sandbox") as sandbox:
        config.load_kube_config(str(sandbox.kubeconfig))
        api = client.CustomObjectsApi()
        sandbox.create_cluster(NAMESPACE, "source", seed_days=args.seed_days, storage="s3", storage_root="source",
                               workload={"inserts_per_s": 10, "updates_per_s": 5, "deletes_per_s": 1})
        backups = api.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "backups")["items"]
        snapshots = sorted((b for b in backups if b["spec"].get("backupMode", "snapshot") == "snapshot"
                            and (b.get("status") or {}).get("phase") == "Complete"),
                           key=lambda b: int(b["status"]["commitTs"]))
        log = next(b for b in backups if b["spec"].get("backupMode") == "log")
        base = snapshots[-1]
        point = int(base["status"]["commitTs"]) + ((int(sandbox.tso()) - int(base["status"]["commitTs"])) // 2)
        storage = {k: log["spec"][k] for k in ("s3",) if k in log["spec"]}
        spec = {"restoreMode": "pitr", "pitrRestoredTs": str(point),
                "pitrFullBackupStorageProvider": {"s3": base["spec"]["s3"]}, **storage}
        sandbox.set_config(restore_snapshot_rate=args.snapshot_rate, restore_log_rate=args.log_rate)
        sandbox.create_cluster(NAMESPACE, "whole")
        sandbox.create_cluster(NAMESPACE, "holding", workload={
            "inserts_per_s": 40, "updates_per_s": 0, "deletes_per_s": 0,
            "tables": ["crm.accounts", "crm.events", "shop.customers"]})
        _wait(lambda: sandbox.call("GET", f"/clusters/{NAMESPACE}/holding")["rows"], lambda n: n >= 20)
        sandbox.stop_workload(NAMESPACE, "holding")
        figures: dict[str, Any] = {"seed_days": args.seed_days, "snapshot_rate": args.snapshot_rate,
                                   "log_rate": args.log_rate, "base_backup_size": int(base["status"]["backupSize"])}
        for label, target, extra in (("whole cluster", "whole", {}),
                                     ("shop.orders", "holding", {"tableFilter": ["shop.orders"]})):
            started = time.monotonic()
            status = _restore(api, label.replace(" ", "-").replace(".", "-"), target, {**spec, **extra})
            wall = time.monotonic() - started
            taken = _seconds(status.get("timeTaken") or "0s")
            print(f"{label}: {status['phase']}, timeTaken {status.get('timeTaken')} ({taken:.1f} s), wall {wall:.1f} s")
            figures[label] = {"phase": status["phase"], "time_taken_seconds": taken, "wall_seconds": round(wall, 1)}
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
