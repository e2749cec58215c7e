"""`make demo` / `make demo-check`: the whole project on the sandbox, driven through Airflow's REST API.

Starts the sandbox (cluster test1/demo1 with 40 days of history and a live workload, two empty restore targets
test1/demo1-restore and test1/demo1-restore-ui), starts Airflow as `airflow standalone` would (SQLite,
LocalExecutor, triggerer), every server on 127.0.0.1, with connections to the sandbox (see
scripts/airflow_stack.py), then switches the DAGs on one by one and waits for each: the log backup guard, a
snapshot and retention each run once, as the scheduler starts them when they are unpaused; then a restore to a
time inside the window into demo1-restore. It prints a summary: the recoverable window before and after
retention, what was truncated and deleted, the restore point, whether the restored rows equal the source at that
point, and how to restore from the UI into demo1-restore-ui, which is left empty for that. Last, one restore
drill into the scratch cluster demo1-scratch (the run the scheduler starts when the drill DAG is unpaused, or a
triggered one when no slot has passed): its verdict (every table's row fingerprint, and ADMIN CHECKSUM where BR
kept the table ID, against the source as of the drill's time), how it compared, and its RTO against the plan's
estimate. (A drill into a scratch cluster that has allocated table IDs before, where BR gives every table a new
ID, is tests/pitr/e2e/test_drills.py's.) Then `check` once (its DAG, triggered): every row it measured, the
failed first.

`--check` (make demo-check) exits when done: 0 only when every step succeeded and the rows match; its
last line is one JSON object. Without it the UI stays up until Ctrl-C, which stops everything started.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_stack import (
    CLUSTER,
    NAMESPACE,
    ROOT,
    TARGET,
    UI_TARGET,
    AirflowApi,
    Stack,
    run_seconds,
    running_stack,
    window_now,
    window_times,
)

SCHEDULED = ("log_guard", "snapshot", "retention")


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def run_scheduled(api: AirflowApi, dag: str) -> tuple[str, dict[str, Any]]:
    """Unpause a scheduled DAG and follow the run the scheduler starts then (its latest slot, catchup=False).

    Triggering one as well would make two runs, the second with nothing left to do (retention twice)."""
    api.unpause(dag)
    run_id = api.wait_scheduled_run(dag)
    how = "started by the scheduler on unpause"
    if run_id is None:  # no slot has passed since start_date: run it by hand
        run_id, how = api.trigger(dag), "triggered"
    say(f"{dag}: run {run_id} ({how})")
    return run_id, _finish(api, dag, run_id)


def run_triggered(api: AirflowApi, dag: str, conf: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    say(f"{dag}: triggering with {json.dumps(conf)}")
    run_id = api.trigger(dag, conf)
    return run_id, _finish(api, dag, run_id)


def _finish(api: AirflowApi, dag: str, run_id: str) -> dict[str, Any]:
    run = api.wait_run(dag, run_id)
    say(f"  {dag}: {run['state']} in {run_seconds(run):.1f} s")
    return run


def retention_result(api: AirflowApi, dag: str, run_id: str) -> tuple[list[str], str | None, int]:
    """What the retention run did, and how many retention runs there are (there should be one)."""
    plan = api.xcom(dag, run_id, "plan") or {}
    deleted = [d["backup_name"] or d["prefix"] for d in plan.get("deletions", [])]
    return deleted, plan.get("truncate_until"), len(api.runs(dag))


def scenario(stack: Stack) -> dict[str, Any]:
    api = stack.api
    ids = {k: stack.dag_id(k) for k in (*SCHEDULED, "restore", "drill")}
    api.wait_dags(list(ids.values()))
    window_before = window_now(stack)
    say(f"recoverable window before anything runs: {json.dumps(_window(window_before))}")
    api.unpause(ids["restore"])  # no schedule: runs only when triggered
    # The RPO watcher: its trigger waits in the triggerer and runs it only when the checkpoint lag crosses a level.
    api.unpause(stack.dag_id("rpo_alert"))
    states: dict[str, str] = {}
    seconds: dict[str, float] = {}
    runs: dict[str, str] = {}
    for kind in SCHEDULED:  # in order: retention needs the new snapshot, and only then is it switched on
        runs[kind], run = run_scheduled(api, ids[kind])
        states[kind], seconds[kind] = run["state"], run_seconds(run)
        if run["state"] != "success":
            break
    if any(state != "success" for state in states.values()) or len(states) < len(SCHEDULED):
        return {"ok": False, "states": states, "window_before": _window(window_before)}

    snapshot = api.xcom(ids["snapshot"], runs["snapshot"], "snapshot")
    deleted, truncated, retention_runs = retention_result(api, ids["retention"], runs["retention"])
    window_after = api.xcom(ids["retention"], runs["retention"], "finish") or window_now(stack)

    earliest = int((window_after.get("earliest") or {}).get("ts") or 0)
    latest = int((window_after.get("latest") or {}).get("ts") or 0)
    restore_ts = random.randint(earliest, latest) if earliest and latest else 0
    rest_run, run = run_triggered(api, ids["restore"], {"restore_tso": str(restore_ts),
                                                        "target_cluster": f"{NAMESPACE}/{TARGET}"})
    states["restore"], seconds["restore"] = run["state"], run_seconds(run)
    report = api.xcom(ids["restore"], rest_run, "report") or {}
    source = stack.sandbox.call("GET", f"/clusters/{NAMESPACE}/{CLUSTER}/rows?asOf={restore_ts}&rows=false")
    restored = stack.sandbox.call("GET", f"/clusters/{NAMESPACE}/{TARGET}/rows?rows=false")
    match = source["digest"] == restored["digest"] and source["count"] == restored["count"]
    drill = run_drill(api, ids["drill"])
    states["drill"], seconds["drill"] = drill.pop("state"), drill.pop("seconds")
    check_rows, states["check"], seconds["check"] = run_check(api, stack.dag_id("check"))
    ok = all(state == "success" for state in states.values()) and drill.get("verdict") == "passed"
    return {"ok": bool(ok and match and deleted and truncated), "states": states, "rows_match": match,
            "drill": drill, "check": check_rows,
            "rows_compared": source["count"], "window_before": _window(window_before),
            "window_after": _window(window_after), "truncated_until": truncated, "deleted": deleted,
            "retention_runs": retention_runs,
            "snapshot": snapshot and {k: snapshot.get(k) for k in ("name", "commit_ts", "backup_path")},
            "restore_point": {"ts": str(restore_ts), "time": report.get("restore_point")},
            "restore_seconds": {"actual": report.get("duration_seconds"), "estimated": report.get("estimated_seconds")},
            "restore_digest": {"source": source["digest"], "restored": restored["digest"]},
            "dag_run_seconds": {k: round(v, 1) for k, v in seconds.items()}}


def run_drill(api: AirflowApi, dag: str) -> dict[str, Any]:
    """One drill into the scratch cluster: the run the scheduler starts on unpause (or a triggered one)."""
    run_id, run = run_scheduled(api, dag)
    record = api.xcom(dag, run_id, "record") or {}
    return {"state": run["state"], "seconds": run_seconds(run), "verdict": record.get("verdict"),
            "summary": record.get("summary"), "tables_compared": record.get("tables_compared"),
            "compared_how": record.get("compared_how"), "mismatches": record.get("mismatches"),
            "rto_seconds": record.get("rto_seconds"), "estimated_seconds": record.get("estimated_seconds"),
            "restore_time": record.get("restore_time")}


def run_check(api: AirflowApi, dag: str) -> tuple[list[dict[str, str]], str, float]:
    """One run of the check DAG: its rows (FAILED first), its state and seconds. The demo's Airflow talks to the
    sandbox as its admin, not through include/rbac.yaml's Role, so the access rows warn of grants beyond it.

    The run the scheduler starts on unpause, with the DAG's default watch of the checkpoints (the demo's
    clusters.yaml gives its sandbox's flush interval, so a few seconds): triggering one as well made two runs."""
    run_id, run = run_scheduled(api, dag)
    count = len(api.runs(dag))
    say(f"{dag}: checked once, in the run the scheduler started" if count == 1
        else f"{dag}: {count} runs of the check DAG, one expected")
    found = api.xcom(dag, run_id, "check", key="tidb_pitr_check") or {}
    return list(found.get("rows") or []), run["state"], run_seconds(run)


def _window(window: dict[str, Any] | None) -> dict[str, Any] | None:
    if not window:
        return None
    return {"earliest": window.get("earliest"), "latest": window.get("latest")}


def summary(result: dict[str, Any]) -> None:
    say("=" * 72)
    if "window_after" not in result:
        say(f"stopped early: DAG run states {json.dumps(result['states'])}")
        say("=" * 72)
        return
    say(f"recoverable window before retention: {json.dumps(result['window_before'])}")
    say(f"recoverable window after retention:  {json.dumps(result['window_after'])}")
    from tidb_pitr.tso import tso_label

    until = result["truncated_until"]
    say(f"retention ({result['retention_runs']} run): log truncated until "
        f"{tso_label(int(until)) if until else 'nothing'}; snapshots deleted: {result['deleted']}")
    say(f"new snapshot: {json.dumps(result['snapshot'])}")
    say(f"restore point: {json.dumps(result['restore_point'])}")
    took = result["restore_seconds"]
    if took["actual"] is not None and took["estimated"] is not None:
        say(f"the restore took {took['actual']:.1f} s; the plan estimated {took['estimated']:.1f} s from the "
            "snapshot's size and the log volume in storage")
    say(f"restored rows {'EQUAL' if result['rows_match'] else 'DIFFER FROM'} the source at that point "
        f"({result['rows_compared']} rows compared)")
    drill = result["drill"]
    say(f"drill into the scratch cluster: {drill['verdict'] or 'no verdict'}, compared "
        f"{drill['compared_how'] or 'nothing'}: {drill['summary'] or 'the drill did not record'}")
    if drill["rto_seconds"] is not None:
        say(f"drill RTO {drill['rto_seconds']:.1f} s (run start to Restore Complete); the plan estimated the "
            f"restore at {drill['estimated_seconds']:.1f} s")
    rows = result["check"]
    failed = sum(row.get("status") == "FAILED" for row in rows)
    say(f"check ({len(rows)} rows, {failed} FAILED; python -m tidb_pitr check --cluster {NAMESPACE}/{CLUSTER} "
        "prints the same from a shell):")
    for row in rows:
        say(f"  {row.get('status', '?'):7} {row.get('name')}: {row.get('value')}"
            + (f" -> {row['action']}" if row.get("action") else ""))
    say(f"DAG run seconds: {json.dumps(result['dag_run_seconds'])}")
    say("=" * 72)


def _both_zones(when: datetime) -> str:
    local = when.astimezone()
    utc = f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return utc if local.utcoffset() == when.utcoffset() else f"{local:%Y-%m-%d %H:%M:%S %Z} ({utc})"


def how_to_restore_from_ui(stack: Stack) -> None:
    """What to click for a restore of one's own: the DAG, the target left empty for it, the window now."""
    window = window_times(window_now(stack))
    say(f"The TiDB PITR page ({stack.url}/plugin/tidb-pitr, also under the nav's TiDB PITR entry) draws the "
        "window: click inside its green band to restore to that time.")
    say(f"Or restore from the DAG's form: open {stack.dag_url('restore')} and press Trigger;")
    say(f"  Target cluster: pick \"{stack.target_label(UI_TARGET)}\": it is empty "
        f"({TARGET} now holds the demo's restore and would be refused);")
    if window is None:
        say("  no recoverable window right now: run the log guard DAG first")
        return
    earliest, latest = window
    say(f"  Restore to: a time from {_both_zones(earliest)} to {_both_zones(latest)}")
    say("  (the end moves on with the live log backup; the picker takes your UI's timezone)")


def wait_for_ctrl_c(stack: Stack) -> None:
    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    while not stop["now"] and stack.process.poll() is None:
        time.sleep(0.5)


def fresh_workdir(path: Path) -> Path:
    workdir = path.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)  # a demo starts from scratch every time
    workdir.mkdir(parents=True)
    return workdir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="run the scenario, print JSON, exit (no UI left up)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8080")))
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = parser.parse_args()
    workdir = fresh_workdir(args.workdir)
    # A plain `kill` ends us through the same cleanup as Ctrl-C: nothing started is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result: dict[str, Any] | None = None
    code = 1
    try:
        with running_stack(workdir, args.port, say) as stack:
            # The UI is up now: a user can log in and watch the scenario's runs as they happen.
            say(f"Airflow UI: {stack.url}  login: admin / {stack.password}  (the scenario runs now, about 4 minutes)")
            result = scenario(stack)
            summary(result)
            code = 0 if result["ok"] else 1
            if args.check:
                return code  # the JSON line is printed after shutdown, so that it is the last line
            how_to_restore_from_ui(stack)
            say(f"Airflow UI: {stack.url}  login: admin / {stack.password}")
            say(f"kubectl --kubeconfig {stack.sandbox.kubeconfig} get backup -A -o wide")
            say("Ctrl-C stops Airflow and the sandbox")
            wait_for_ctrl_c(stack)
        return code
    finally:
        say("stopped Airflow and the sandbox")
        if args.check:
            print(json.dumps(result or {"ok": False, "error": "the scenario did not finish"}, sort_keys=True),
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
