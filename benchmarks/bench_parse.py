"""DAG parse time for 1, 10 and 100 clusters in the config, against a one-DAG baseline file.

Each measurement runs in a fresh interpreter that has already imported Airflow's parser (as the
dag-processor's parsing process has), then times the DagBag fill of the DAG folder, as
`airflow dags report` would. The last line is one JSON object with the figures.

    .venv/bin/python benchmarks/bench_parse.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROBE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
elapsed = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
stats = {str(s.file): s.duration.total_seconds() for s in bag.dagbag_stats}
print(json.dumps({"total": elapsed, "per_file": stats, "dags": len(bag.dag_ids)}))
"""
BASELINE_DAG = '''"""Baseline: one airflow DAG with one task."""
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("baseline", start_date=datetime(2026, 1, 1), schedule=None):
    EmptyOperator(task_id="noop")
'''


def _config(n: int, path: Path) -> None:
    example = yaml.safe_load((ROOT / "include" / "clusters.yaml").read_text())
    template = dict(example["clusters"][0])
    clusters = []
    for i in range(n):
        cluster = {**template, "name": f"db{i:03d}", "namespace": f"tidb-{i % 10}", "compaction": i % 2 == 0}
        cluster["storage"] = {**template.get("storage", {}), "root": f"db{i:03d}"} if "storage" in template else None
        clusters.append({k: v for k, v in cluster.items() if v is not None})
    path.write_text(yaml.safe_dump({**{k: v for k, v in example.items() if k != "clusters"}, "clusters": clusters}))


def _measure(folder: Path, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(folder)], env=env, capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is reported")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    env = {**os.environ, "AIRFLOW_HOME": str(work / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])}
    baseline_dir = work / "baseline"
    baseline_dir.mkdir()
    (baseline_dir / "baseline_dag.py").write_text(BASELINE_DAG)
    baseline = statistics.median(float(_measure(baseline_dir, env)["total"]) for _ in range(args.repeat))
    print(f"baseline (one DAG, one task): {baseline:.3f} s")
    result: dict[str, object] = {"baseline_seconds": round(baseline, 4), "sizes": {}}
    for n in (1, 10, 100):
        config = work / f"clusters-{n}.yaml"
        _config(n, config)
        runs = [_measure(ROOT / "dags", {**env, "TIDB_PITR_CONFIG": str(config)}) for _ in range(args.repeat)]
        total = statistics.median(float(r["total"]) for r in runs)
        per_file = {Path(f).name: round(statistics.median(float(r["per_file"][f]) for r in runs), 4)
                    for f in runs[0]["per_file"]}
        dags = runs[0]["dags"]
        print(f"{n:3d} clusters: {dags:4d} DAGs, total {total:.3f} s, per file {per_file}, "
              f"{total / baseline:.1f}x the baseline")
        result["sizes"][str(n)] = {"dags": dags, "total_seconds": round(total, 4), "per_file_seconds": per_file,
                                   "ratio_to_baseline": round(total / baseline, 2)}
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
