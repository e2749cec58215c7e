"""The model-based soak (`make soak-states`): N sequences of M steps of the world's state machine
(tests/pitr/model/world.py: user actions, the schedule, the sandbox's faults, time), every invariant checked after
each step, on a manual-clock sandbox of its own and Airflow's `dag.test()` of the real DAGs.

Prints each sequence's progress; on a violation hypothesis shrinks the sequence and prints it as a replayable
program (`state = SoakMachine()` then one call per step); the last line is one JSON object: sequences, steps,
simulated days, invariant checks, violations by invariant, rule coverage.

    .venv/bin/python benchmarks/soak_states.py [--sequences 50] [--steps 40] [--seed 1] [--chunk 25]
        [--minutes M] [--no-shrink] [--jobs 2]

--jobs N runs N soaks side by side (each its own process, sandbox and Airflow DB; job j from seed + 1000 j) and adds
their figures up: a soak mostly waits on its sandbox and Airflow, so two fill a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "scripts")]  # tests.pitr.model; airflow_stack
HOME = Path(tempfile.mkdtemp(prefix="soak-states-airflow-"))
os.environ.update({"AIRFLOW_HOME": str(HOME), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
                   "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                   "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                   "AIRFLOW__TIDB_PITR__MIN_DEFERRAL_SECONDS": "0",
                   # dag.test() prints every task's log: thousands of lines a sequence would hide the progress
                   "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=50)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-shrink", action="store_true", help="report the first failing sequence as it ran")
    parser.add_argument("--chunk", type=int, default=25,
                        help="sequences per seed (a sandbox each; hypothesis starts each seed with 2-3 trivial ones)")
    parser.add_argument("--minutes", type=float, default=0, help="start no new sequence after this long (0: no limit)")
    parser.add_argument("--jobs", type=int, default=1, help="soaks side by side, their figures added up")
    args = parser.parse_args()
    if args.jobs > 1:
        return side_by_side(args)

    from airflow_stack import copy_migrated_db

    copy_migrated_db(HOME / "airflow.db")
    from tests.pitr.model.world import STATS, figures, run_soak

    started = time.monotonic()
    failure, seeds = None, []
    # Chunks of --chunk sequences, each from its own seed (seed, seed + 1, ...), until --sequences ran or --minutes
    # passed: the figures add up across chunks; the first failing chunk ends the soak with its sequence.
    stop_after = started + args.minutes * 60 if args.minutes else None
    while STATS.sequences < args.sequences and failure is None:
        if stop_after is not None and time.monotonic() > stop_after:
            print(f"[soak] the {args.minutes} minutes are up after {STATS.sequences} sequences", flush=True)
            break
        seeds.append(args.seed + len(seeds))
        failure = run_soak(Path(tempfile.mkdtemp(prefix="soak-states-sandbox-")), sequences=min(
            args.chunk, args.sequences - STATS.sequences), steps=args.steps, seed=seeds[-1],
            shrink=not args.no_shrink, progress=lambda line: print(line, flush=True), keep_stats=True,
            stop_after=stop_after)
    result = figures(started)
    result.update(seeds=seeds, requested={"sequences": args.sequences, "steps": args.steps},
                  failing_sequence=failure)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if not result["violations"] and failure is None else 1


def side_by_side(args: argparse.Namespace) -> int:
    """Run `args.jobs` soaks at once, each on its share of the sequences and seeds of its own; their progress
    prefixed by job, then one JSON object adding their figures up."""
    started = time.monotonic()
    share = math.ceil(args.sequences / args.jobs)
    jobs: list[subprocess.Popen[str]] = []
    for job in range(args.jobs):
        command = [sys.executable, __file__, "--sequences", str(share), "--steps", str(args.steps),
                   "--seed", str(args.seed + 1000 * job), "--chunk", str(args.chunk), "--minutes", str(args.minutes)]
        jobs.append(subprocess.Popen([*command, *(["--no-shrink"] if args.no_shrink else [])], text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT))
    results: list[dict[str, Any] | None] = [None] * args.jobs

    def relay(job: int) -> None:
        for line in jobs[job].stdout or ():
            if line.startswith('{"benchmark": "soak_states"'):
                results[job] = json.loads(line)
            else:
                print(f"[job {job}] {line}", end="", flush=True)

    relays = [threading.Thread(target=relay, args=(job,)) for job in range(args.jobs)]
    for thread in relays:
        thread.start()
    for thread, process in zip(relays, jobs, strict=True):
        process.wait()
        thread.join()
    print(json.dumps(add_up([r for r in results if r is not None], args, started,
                            missing=results.count(None)), sort_keys=True), flush=True)
    return 0 if all(p.returncode == 0 for p in jobs) and None not in results else 1


def add_up(results: list[dict[str, Any]], args: argparse.Namespace, started: float, *, missing: int) -> dict[str, Any]:
    """One soak's figures from several: counts summed, violations and rule coverage by name, the first failure."""
    total: dict[str, Any] = {"benchmark": "soak_states", "jobs": args.jobs, "jobs_without_figures": missing,
                             "requested": {"sequences": args.sequences, "steps": args.steps},
                             "wall_seconds": round(time.monotonic() - started, 1)}
    for key in ("sequences", "steps", "invariant_checks", "window_checks", "dag_runs"):
        total[key] = sum(r[key] for r in results)
    total["simulated_days"] = round(sum(r["simulated_days"] for r in results), 2)
    for key in ("violations", "rule_coverage"):
        counted: Counter[str] = Counter()
        for r in results:
            counted.update(r[key])
        total[key] = dict(sorted(counted.items()))
    total["violation_examples"] = {k: v for r in results for k, v in r["violation_examples"].items()}
    total["seeds"] = [seed for r in results for seed in r["seeds"]]
    total["failing_sequence"] = next((r["failing_sequence"] for r in results if r["failing_sequence"]), None)
    return total


if __name__ == "__main__":
    sys.exit(main())
