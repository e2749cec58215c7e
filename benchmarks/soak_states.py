"""The model-based soak (`make soak-states`): N sequences of M steps of the world's state machine
(tests/pitr/model/world.py: user actions, the schedule, the sandbox's faults, time), every invariant checked after
each step, on a manual-clock sandbox of its own and Airflow's `dag.test()` of the real DAGs.

Prints each sequence's progress; on a violation hypothesis shrinks the sequence and prints it as a replayable
program (`state = SoakMachine()` then one call per step); the last line is one JSON object: sequences, steps,
simulated days, invariant checks, violations by invariant, rule coverage.

    .venv/bin/python benchmarks/soak_states.py [--sequences 50] [--steps 40] [--seed 1] [--chunk 10]
        [--minutes M] [--no-shrink]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--chunk", type=int, default=10, help="sequences per seed (a sandbox of its own each)")
    parser.add_argument("--minutes", type=float, default=0, help="start no new chunk after this long (0: no limit)")
    args = parser.parse_args()

    from airflow_stack import copy_migrated_db

    copy_migrated_db(HOME / "airflow.db")
    from tests.pitr.model.world import STATS, figures, run_soak

    started = time.monotonic()
    failure, seeds = None, []
    # Chunks of --chunk sequences, each from its own seed (seed, seed + 1, ...), until --sequences ran or --minutes
    # passed: the figures add up across chunks; the first failing chunk ends the soak with its sequence.
    while STATS.sequences < args.sequences and failure is None:
        if args.minutes and time.monotonic() - started > args.minutes * 60:
            print(f"[soak] the {args.minutes} minutes are up after {STATS.sequences} sequences", flush=True)
            break
        seeds.append(args.seed + len(seeds))
        failure = run_soak(Path(tempfile.mkdtemp(prefix="soak-states-sandbox-")), sequences=min(
            args.chunk, args.sequences - STATS.sequences), steps=args.steps, seed=seeds[-1],
            shrink=not args.no_shrink, progress=lambda line: print(line, flush=True), keep_stats=True)
    result = figures(started)
    result.update(seeds=seeds, requested={"sequences": args.sequences, "steps": args.steps},
                  failing_sequence=failure)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if not result["violations"] and failure is None else 1


if __name__ == "__main__":
    sys.exit(main())
