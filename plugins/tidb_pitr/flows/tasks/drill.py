"""A restore drill's steps: choose T, read the source at T, restore through the restore planner, compare,
empty the scratch target, record. The restore DAG's `verify` uses the same reading and comparison.

Order matters for the comparison to be exact: the source is read at T right after the plan, while T is still
after its GC safe point, and only then restored; the target is read once the Restore is Complete.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.api import RESTORES
from ...cr.inventory import load_inventory
from ...cr.model import RestoreView, State
from ...hooks.kubernetes import hook_for
from ...hooks.sql import SourceNotReadable, drop_user_databases, gc_state, table_checksums, target_user_objects
from ...planning import PlanError, recoverable_window
from ...planning.drill import MODES, Comparison, GcState, TableSum, compare, pick_random, pick_recent, verifiable
from ...planning.notes import note_time, with_details
from ...runtime.metrics import DRILL_RTO, gauge
from ...runtime.notes import publish_note
from ...runtime.notifiers import NotifierError, check_notifiers, notify
from ...tso import tso_iso, tso_label
from ...units import format_duration
from .restore import RestoreRefused, plan_restore_for

log = logging.getLogger(__name__)
PASSED, FAILED, NOT_VERIFIED = "passed", "failed", "not verified"


def drill_target(cluster: ClusterConfig, params: dict[str, Any]) -> str:
    """`namespace/name` of the scratch target: the form's choice, else the configured one. Only a restore
    target marked `scratch: true` may be used, since the drill empties it."""
    assert cluster.drill is not None
    chosen = str(params.get("target_cluster") or cluster.drill.target).strip()
    key = chosen if "/" in chosen else f"{cluster.namespace}/{chosen}"
    allowed = cluster.scratch_choices()
    if key not in allowed:
        raise RestoreRefused(f"target_cluster {key} is not a scratch target (restore_targets with scratch: true); "
                             f"a drill empties its target afterwards, so only those are allowed: "
                             f"{', '.join(allowed) or 'none'}")
    return key


def _source_gc(cluster: ClusterConfig) -> GcState:
    try:
        return gc_state(str(cluster.sql_conn_id))
    except Exception as exc:  # the driver's own errors
        raise RestoreRefused(f"the source's GC safe point could not be read over SQL through {cluster.sql_conn_id!r}:"
                             f" {type(exc).__name__}: {exc}") from exc


def choose_time(cluster: ClusterConfig, mode: str, gc: GcState, rng: random.Random) -> int:
    assert cluster.drill is not None
    inventory = load_inventory(hook_for(cluster), cluster)
    window = recoverable_window(inventory.snapshots, inventory.logs)
    try:
        if mode == "random":
            return pick_random(window, rng)
        current = inventory.current_log()
        if current is None or not current.checkpoint_ts:
            raise PlanError(f"no running log backup with a checkpoint; the recoverable window is {window.brief()}")
        return pick_recent(window, current.checkpoint_ts, gc, margin=cluster.drill.margin,
                           headroom=cluster.drill.gc_headroom)
    except PlanError as exc:
        raise RestoreRefused(f"no drill time for mode {mode!r}: {exc}") from exc


def plan_drill(cluster: ClusterConfig, params: dict[str, Any], *, run: str, run_hash: str,
               rng: random.Random | None = None) -> dict[str, Any]:
    """Validate, choose T, plan the restore into the empty scratch target (which takes the restore lease)."""
    assert cluster.drill is not None
    mode = str(params.get("mode") or cluster.drill.mode)
    if mode not in MODES:
        raise RestoreRefused(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    target = drill_target(cluster, params)
    try:
        check_notifiers(cluster)
    except NotifierError as exc:
        raise RestoreRefused(str(exc)) from exc
    gc = _source_gc(cluster)
    if params.get("restore_tso"):
        ts, mode = int(str(params["restore_tso"])), "given"
    else:
        ts = choose_time(cluster, mode, gc, rng or random.Random())
    planned = plan_restore_for(cluster, {"restore_tso": str(ts), "target_cluster": target}, run=run,
                               run_hash=run_hash)
    readable = verifiable(ts, gc, cluster.drill.gc_headroom)
    configured = cluster.restore_target(planned["target_cluster"], planned["target_namespace"])
    assert configured is not None and configured.sql_conn_id  # drill_target allows scratch targets with SQL only
    planned["drill"] = {
        "mode": mode, "target": target,
        "gc": {"life_time_seconds": gc.life_time.total_seconds(), "safe_point": tso_iso(gc.safe_point_ts),
               "safe_point_ts": str(gc.safe_point_ts)},
    }
    planned["verify"] = {"tables": list(cluster.drill.tables), "verifiable": readable,
                         "source_conn_id": cluster.sql_conn_id, "target_conn_id": configured.sql_conn_id}
    why = "" if readable else (f"; T is older than the source's GC safe point {tso_iso(gc.safe_point_ts)} (plus "
                               f"{cluster.drill.gc_headroom}): its tables will be reported as not verified")
    planned["notes"].insert(0, f"drill ({mode}) to {tso_label(ts)} into {target}{why}")
    return planned


# --- reading and comparing -------------------------------------------------------------------------------

def read_source(conn_id: str, ts: int, rules: list[str], readable: bool) -> dict[str, Any]:
    """The source's tables and checksums as of `ts`, or why they could not be read."""
    if not readable:
        return {"read": False, "why": "T is older than the source's GC safe point", "tables": {}}
    try:
        sums = table_checksums(conn_id, rules, at_ts=ts)
    except SourceNotReadable as exc:
        return {"read": False, "why": f"the source's GC has passed T: {exc}", "tables": {}}
    log.info("Source as of %s: %d tables checksummed", tso_label(ts), len(sums))
    return {"read": True, "why": None, "tables": {name: s.to_dict() for name, s in sums.items()}}


def read_target(conn_id: str, rules: list[str]) -> dict[str, TableSum]:
    return table_checksums(conn_id, rules)


def verdict_of(source: dict[str, Any], target: dict[str, TableSum]) -> tuple[str, Comparison | None]:
    if not source["read"]:
        return NOT_VERIFIED, None
    comparison = compare({n: TableSum.from_dict(s) for n, s in source["tables"].items()}, target)
    return (PASSED if comparison.passed else FAILED), comparison


def verify_restore(conn_id: str, source: dict[str, Any], rules: list[str]) -> dict[str, Any]:
    """Compare the restored target with what the source held at T; AirflowFailException on any difference."""
    target = read_target(conn_id, rules)
    verdict, comparison = verdict_of(source, target)
    result = {"verdict": verdict, "target_tables": sorted(target),
              "comparison": comparison.to_dict() if comparison else None,
              "not_verified": sorted(target) if comparison is None else [],
              "why_not_verified": source.get("why")}
    if comparison is not None:
        log.info("Compared %d tables: %d equal, %d differ, %d missing, %d unexpected", comparison.compared,
                 len(comparison.matched), len(comparison.mismatched), len(comparison.missing),
                 len(comparison.unexpected))
    else:
        log.warning("Not verified (%s): %s", source.get("why"), ", ".join(sorted(target)) or "no tables")
    return result


def differs_line(comparison: dict[str, Any] | None) -> str:
    """The first differing tables in one line, from a `Comparison.to_dict()`."""
    return (comparison or {}).get("first_differences", "")


# --- emptying the scratch target -------------------------------------------------------------------------

def empty_scratch_target(cluster: ClusterConfig, planned: dict[str, Any] | None) -> dict[str, Any]:
    """Drop the user databases the drill restored, on a `scratch: true` target only; nothing when the drill
    created no Restore (a target refused as not empty keeps what it holds)."""
    if not planned:
        return {"emptied": False, "why": "the drill did not plan a restore: the target was not touched"}
    namespace, name = planned["target_namespace"], planned["target_cluster"]
    target = cluster.restore_target(name, namespace)
    if target is None or not target.scratch or not target.sql_conn_id:
        raise AirflowFailException(f"refusing to empty {namespace}/{name}: it is not a restore target marked "
                                   "scratch: true with a sql_conn_id")
    restore_name = planned["body"]["metadata"]["name"]
    obj = hook_for(cluster).get(RESTORES, restore_name, namespace)
    if obj is None:
        return {"emptied": False, "why": f"Restore {restore_name} was never created: nothing was restored"}
    view = RestoreView.from_cr(obj)
    if view.state in (State.PENDING, State.RUNNING):
        raise AirflowFailException(f"Restore {namespace}/{restore_name} is still {view.phase}: the scratch target is "
                                   "not emptied while BR writes into it; run the drill again once it has ended")
    dropped = drop_user_databases(target.sql_conn_id)
    left = target_user_objects(target.sql_conn_id)
    if left:
        raise AirflowFailException(f"{namespace}/{name} still holds {', '.join(left)} after dropping "
                                   f"{', '.join(dropped)}")
    log.info("Emptied scratch target %s/%s: dropped %s", namespace, name, ", ".join(dropped) or "nothing")
    return {"emptied": True, "dropped": dropped}


# --- the record ------------------------------------------------------------------------------------------

def _rto_seconds(dag_run: Any, restored: dict[str, Any] | None) -> float | None:
    """Trigger to Restore Complete: the run's start to the CR's timeCompleted."""
    if not restored or not restored.get("time_completed") or dag_run.start_date is None:
        return None
    completed = datetime.fromisoformat(restored["time_completed"])
    started = dag_run.start_date if dag_run.start_date.tzinfo else dag_run.start_date.replace(tzinfo=UTC)
    return max((completed - started).total_seconds(), 0.0)


def drill_record(cluster: ClusterConfig, planned: dict[str, Any] | None, restored: dict[str, Any] | None,
                 checked: dict[str, Any] | None, emptied: dict[str, Any] | None, failed: list[str],
                 dag_run: Any, refused: str | None = None) -> dict[str, Any]:
    """Everything the drill found, as the Asset event, the XCom and the run note carry it."""
    if not planned:
        return {"verdict": FAILED, "summary": refused or "Drill refused: the plan failed (see its log)",
                "failed_tasks": failed}
    plan = planned["plan"]
    rto = _rto_seconds(dag_run, restored)
    estimate = plan["estimate"]["seconds"]
    verdict = (checked or {}).get("verdict") or FAILED
    if failed:
        verdict = FAILED
    comparison = (checked or {}).get("comparison")
    record = {
        "verdict": verdict, "mode": planned["drill"]["mode"], "cluster": f"{cluster.namespace}/{cluster.name}",
        "target": planned["drill"]["target"], "restore_ts": str(planned["target_ts"]),
        "restore_time": planned["target_time"], "base_snapshot": plan["base"]["name"],
        "log_backup": plan["log"]["name"], "log_range": {"from": plan["base"]["commit_time"],
                                                          "to": planned["target_time"]},
        "restore": (restored or {}).get("name"), "restore_seconds": (restored or {}).get("duration_seconds"),
        "rto_seconds": rto, "estimated_seconds": estimate, "estimate_text": plan["estimate"]["text"],
        "rto_to_estimate": (rto / estimate) if rto is not None and estimate else None,
        "tables_compared": (comparison or {}).get("compared", 0),
        "tables": (checked or {}).get("target_tables", []),
        "mismatches": differs_line(comparison), "comparison": comparison,
        "not_verified": (checked or {}).get("not_verified", []),
        "why_not_verified": (checked or {}).get("why_not_verified"),
        "emptied": emptied, "failed_tasks": failed,
    }
    record["summary"] = _summary(record)
    return record


def _summary(record: dict[str, Any]) -> str:
    rto = record["rto_seconds"]
    timing = (f"RTO {format_duration(rto)} (run start to Restore Complete; restore estimated "
              f"{record['estimate_text']})" if rto is not None else "no RTO (the restore did not complete)")
    where = f"{record['cluster']} at {record['restore_time']} into {record['target']} from {record['base_snapshot']}"
    if record["verdict"] == PASSED:
        return f"Drill passed: {where}: {record['tables_compared']} tables equal to the source; {timing}"
    if record["verdict"] == NOT_VERIFIED:
        return (f"Drill restored but NOT VERIFIED: {where}: {len(record['not_verified'])} tables not compared "
                f"({record['why_not_verified']}); {timing}")
    why = record["mismatches"] or (f"failed tasks: {', '.join(record['failed_tasks'])}"
                                   if record["failed_tasks"] else "see the task logs")
    return f"Drill FAILED: {where}: {why}; {timing}"


def drill_note(cluster: ClusterConfig, record: dict[str, Any]) -> str:
    """The verdict first, then the point (in the cluster's time too) and the RTO; the summary below."""
    if not record.get("restore_ts"):  # refused at plan: the plan's note already says why
        return record["summary"]
    rto = record.get("rto_seconds")
    verdict = record["summary"].split(":", 1)[0]  # "Drill passed", "Drill FAILED", ...
    why = f"{record['mismatches'] or ', '.join(record['failed_tasks']) or 'see the task logs'}; " \
        if record["verdict"] == FAILED else ""
    head = (f"{verdict}: {why}{record['cluster']} to {note_time(int(record['restore_ts']), cluster.timezone)}, "
            f"RTO {format_duration(rto) if rto is not None else 'none'}")
    return with_details(head, record["summary"])


EVENT_FIELDS = ("verdict", "mode", "restore_time", "restore_ts", "base_snapshot", "log_backup", "target",
                "tables_compared", "mismatches", "rto_seconds", "estimated_seconds", "restore_seconds", "summary")


def publish_drill(cluster: ClusterConfig, context: Any, asset: Any, record: dict[str, Any], *,
                  notify_failure: bool) -> None:
    """The record as the run's note, an Asset event, the RTO metric; the notifiers when the drill failed."""
    log.info("%s", record["summary"])
    publish_note(context, drill_note(cluster, record))
    extra = {k: record.get(k) for k in EVENT_FIELDS}
    extra["not_verified"] = len(record.get("not_verified") or [])
    context["outlet_events"][asset].extra = extra
    gauge(DRILL_RTO, record.get("rto_seconds"), cluster)
    if notify_failure:
        failures = notify(cluster, context, "drill_failed", record["summary"],
                          **{k: record.get(k) for k in EVENT_FIELDS if k != "summary"})
        record["notifier_failures"] = failures
