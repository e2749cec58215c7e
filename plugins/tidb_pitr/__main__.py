"""The command line: `python -m tidb_pitr check --cluster <namespace>/<name> [--json]`, the check DAG's rows without
Airflow's scheduler, against clusters.yaml (`--config`, else `$TIDB_PITR_CONFIG`, else include/clusters.yaml) and
the Airflow connections it names (from Airflow's metadata database or `AIRFLOW_CONN_*` variables, as any hook).

Exit codes, as Nagios reads them: 0 when nothing FAILED (warnings included), 2 when a row FAILED, 3 when the check
could not start (bad arguments, a broken config, no such cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

UNKNOWN = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tidb_pitr", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="verify every assumption the DAGs make about one cluster")
    check.add_argument("--cluster", required=True, help="namespace/name, as in clusters.yaml")
    check.add_argument("--config", help="clusters.yaml (default: $TIDB_PITR_CONFIG, else include/clusters.yaml)")
    check.add_argument("--json", action="store_true", help="one JSON object: the rows, the counts, the exit code")
    check.add_argument("--observe-seconds", type=float, default=None,
                       help="how long the log checkpoints must move in (default: the DAG's)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .config import config_path, load_config
    from .flows.tasks.check import paused_rows, run_checks
    from .planning.check import counts, exit_code, line, ordered

    namespace, _, name = args.cluster.rpartition("/")
    try:
        config = load_config(args.config or config_path())
    except Exception as exc:  # the loader's message names the file, the cluster and the field
        print(f"cannot read the config: {exc}", file=sys.stderr)
        return UNKNOWN
    found = [c for c in config.clusters if c.name == name and (not namespace or c.namespace == namespace)]
    if len(found) != 1:
        known = ", ".join(f"{c.namespace}/{c.name}" for c in config.clusters) or "none"
        print(f"--cluster {args.cluster!r}: {'no such cluster' if not found else 'ambiguous'} in the config; "
              f"allowed: {known}", file=sys.stderr)
        return UNKNOWN
    cluster = found[0]
    if args.observe_seconds is not None and args.observe_seconds < 0:
        print(f"--observe-seconds must be 0 or more, got {args.observe_seconds}", file=sys.stderr)
        return UNKNOWN
    rows = run_checks(cluster, observe_seconds=args.observe_seconds, probe_tag=f"cli-{int(time.time())}")
    rows += paused_rows(cluster)  # the DAG cannot ask Airflow's database; the command line can
    code = exit_code(rows)
    if args.json:
        print(json.dumps({"cluster": f"{cluster.namespace}/{cluster.name}", "counts": counts(rows),
                          "exit_code": code, "rows": [r.to_dict() for r in ordered(rows)]}))
    else:
        for row in ordered(rows):
            print(line(row))
        found_counts = counts(rows)
        print(f"{cluster.namespace}/{cluster.name}: " + ", ".join(f"{n} {s}" for s, n in found_counts.items()))
    return code


if __name__ == "__main__":
    sys.exit(main())
