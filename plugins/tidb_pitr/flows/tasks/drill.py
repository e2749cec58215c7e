"""A restore drill's steps: choose T, read the source at T, restore through the restore planner, compare,
empty the scratch target, record. The restore DAG's `verify` uses the same reading and comparison.

Order matters for the comparison to be exact: the source is read at T right after the plan, while T is still
after its GC safe point, and only then restored; the target is read once the Restore is Complete.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig
from ...cr.api import RESTORES
from ...cr.inventory import load_inventory
from ...cr.model import RestoreView, State
from ...hooks.kubernetes import hook_for
from ...hooks.sql import (
    SourceNotReadable,
    connection_login,
    drop_tables,
    drop_user_databases,
    gc_state,
    source_now_ts,
    table_checksums,
    table_sizes,
    target_user_objects,
)
from ...planning import PlanError, recoverable_window
from ...planning.drill import (
    MODES,
    Comparison,
    GcState,
    TableSum,
    compare,
    pick_random,
    pick_recent,
    select_tables,
)
from ...planning.drill_gc import ReadCost, SourceGc, check_readable, read_cost
from ...planning.notes import note_time, with_details
from ...runtime.metrics import DRILL_RTO, gauge
from ...runtime.notes import publish_note
from ...runtime.notifiers import NotifierError, check_notifiers, notify
from ...tso import tso_iso, tso_label
from ...units import format_duration
from .restore import KEPT_ACCOUNTS, RestoreRefused, compare_limits, plan_restore_for, restore_rules

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
        # The GC check is the comparison's, sized from the source's tables (source_read_plan).
        return pick_recent(window, current.checkpoint_ts, gc, margin=cluster.drill.margin,
                           headroom=cluster.drill.gc_headroom, check_gc=False)
    except PlanError as exc:
        raise RestoreRefused(f"no drill time for mode {mode!r}: {exc}") from exc


def _check_target_login(target: str, conn_id: str) -> None:
    """The drill reads the restored target through its sql_conn_id after the restore: an account the restore
    replaces with the source's (every one but root and cloud_admin) may no longer log in, and the drill could
    not verify; refused before the restore, naming the account."""
    login = connection_login(conn_id)
    if login and login not in KEPT_ACCOUNTS:
        raise RestoreRefused(
            f"scratch target {target} is read through {conn_id!r} as user {login!r}: a full restore replaces every "
            f"account of the target except {', '.join(sorted(KEPT_ACCOUNTS))} with the source's (BR restores "
            "mysql.user), so the drill could not log in to verify; give the target's sql_conn_id the root account")


def plan_drill(cluster: ClusterConfig, params: dict[str, Any], *, run: str, run_hash: str,
               rng: random.Random | None = None) -> dict[str, Any]:
    """Validate, choose T, plan the restore into the empty scratch target (which takes the restore lease)."""
    assert cluster.drill is not None
    mode = str(params.get("mode") or cluster.drill.mode)
    if mode not in MODES:
        raise RestoreRefused(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    target = drill_target(cluster, params)
    namespace, name = target.split("/", 1)
    scratch = cluster.restore_target(name, namespace)
    assert scratch is not None and scratch.sql_conn_id  # drill_target allows scratch targets with SQL only
    _check_target_login(target, scratch.sql_conn_id)
    try:
        check_notifiers(cluster)
    except NotifierError as exc:
        raise RestoreRefused(str(exc)) from exc
    gc = _source_gc(cluster)
    if params.get("restore_tso"):
        ts, mode = int(str(params["restore_tso"])), "given"
    else:
        ts = choose_time(cluster, mode, gc, rng or random.Random())
    rules = restore_rules({"tables": params["restore_tables"] if "restore_tables" in params
                           else cluster.drill.restore_tables})
    compared = rules or list(cluster.drill.tables)  # a drill of chosen tables compares exactly those
    cost, readable, unreadable_why = source_read_plan(cluster, gc, ts, mode, compared)
    planned = plan_restore_for(cluster, {"restore_tso": str(ts), "target_cluster": target, "tables": rules},
                               run=run, run_hash=run_hash, scratch_allowed=True)
    configured = cluster.restore_target(planned["target_cluster"], planned["target_namespace"])
    assert configured is not None and configured.sql_conn_id  # drill_target allows scratch targets with SQL only
    planned["drill"] = {
        "mode": mode, "target": target,
        "gc": {"life_time_seconds": gc.life_time.total_seconds(), "safe_point": tso_iso(gc.safe_point_ts),
               "safe_point_ts": str(gc.safe_point_ts)},
        "source_read": cost.to_dict(), "restore_tables": rules,
    }
    planned["verify"] = {"tables": compared, "verifiable": readable,
                         "source_conn_id": cluster.sql_conn_id, "target_conn_id": configured.sql_conn_id,
                         **compare_limits(cluster)}
    why = "" if readable else f"; {unreadable_why}: its tables will be reported as not verified"
    what = f" of tables {', '.join(rules)}" if rules else ""
    planned["notes"].insert(0, f"drill ({mode}){what} to {tso_label(ts)} into {target}{why}")
    return planned


COMPARISON_READS = 2  # full reads of each source table at T per drill (hooks/sql.py `table_checksums`)


def source_read_plan(cluster: ClusterConfig, gc: GcState, ts: int, mode: str,
                     tables: list[str] | None = None) -> tuple[ReadCost, bool, str]:
    """What the comparison will read on the source, and whether the source keeps `ts` readable that long:
    (cost, readable, why not). A `recent` T the GC would pass before the read ends is refused here, before any
    restore, with the numbers (raises RestoreRefused); a `random` or given T is restored and reported as not
    verified, as an old T always was."""
    assert cluster.drill is not None
    conn_id = str(cluster.sql_conn_id)
    try:
        source = SourceGc(gc.life_time, gc.safe_point_ts, source_now_ts(conn_id))
        # Two full reads of each table at T: ADMIN CHECKSUM TABLE, then the row fingerprint (table_checksums).
        cost = read_cost(table_sizes(conn_id, tables or list(cluster.drill.tables)), cluster.drill.source_scan_rate,
                         cluster.drill.gc_headroom, passes=COMPARISON_READS)
    except Exception as exc:  # the driver's own errors
        raise RestoreRefused(f"the source's tables and clock could not be read over SQL through {conn_id!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
    log.info("Source read for the comparison: %s; T stays readable for %s", cost.describe(),
             format_duration(source.room(ts)))
    try:
        check_readable(ts, source, cost, _log_checkpoint(cluster) if source.room(ts) < cost.needed else None)
    except PlanError as exc:
        if mode == "recent":
            raise RestoreRefused(f"no drill time for mode 'recent': {exc}") from exc
        return cost, False, str(exc)
    return cost, True, ""


def _log_checkpoint(cluster: ClusterConfig) -> int | None:
    """The running log backup's checkpoint, to tell whether it holds the source's GC (None without one)."""
    current = load_inventory(hook_for(cluster), cluster).current_log()
    return current.checkpoint_ts if current is not None and current.checkpoint_ts else None


# --- reading and comparing -------------------------------------------------------------------------------

def read_source(conn_id: str, ts: int, rules: list[str], readable: bool, *, parallel: int = 4,
                timeout_seconds: float | None = None) -> dict[str, Any]:
    """The source's tables as of `ts` (checksums, IDs, row fingerprints), or why they could not be read."""
    if not readable:
        return {"read": False, "why": "T is older than the source's GC safe point", "tables": {}}
    started = time.monotonic()
    try:
        sums = table_checksums(conn_id, rules, at_ts=ts, parallel=parallel, timeout=timeout_seconds)
    except SourceNotReadable as exc:
        return {"read": False, "why": f"the source's GC has passed T: {exc}", "tables": {}}
    seconds = time.monotonic() - started
    rows = sum(s.rows or 0 for s in sums.values())
    log.info("Source as of %s: %d tables read (checksum and row fingerprint), %d rows in %.2f s (%.0f rows/s)",
             tso_label(ts), len(sums), rows, seconds, rows / seconds if seconds > 0 else 0.0)
    return {"read": True, "why": None, "tables": {name: s.to_dict() for name, s in sums.items()},
            "rows": rows, "seconds": round(seconds, 3)}


def read_target(conn_id: str, rules: list[str], *, parallel: int = 4,
                timeout_seconds: float | None = None) -> dict[str, TableSum]:
    return table_checksums(conn_id, rules, parallel=parallel, timeout=timeout_seconds)


def verdict_of(source: dict[str, Any], target: dict[str, TableSum]) -> tuple[str, Comparison | None]:
    """Failed on any difference; not verified when a table was compared by nothing a changed value breaks."""
    if not source["read"]:
        return NOT_VERIFIED, None
    comparison = compare({n: TableSum.from_dict(s) for n, s in source["tables"].items()}, target)
    if comparison.failed:
        return FAILED, comparison
    return (NOT_VERIFIED if comparison.unverified else PASSED), comparison


def verify_restore(conn_id: str, source: dict[str, Any], rules: list[str], *, parallel: int = 4,
                   timeout_seconds: float | None = None) -> dict[str, Any]:
    """Compare the restored target with what the source held at T; AirflowFailException on any difference."""
    target = read_target(conn_id, rules, parallel=parallel, timeout_seconds=timeout_seconds)
    verdict, comparison = verdict_of(source, target)
    unverified = [t for t, _ in comparison.unverified] if comparison else sorted(target)
    why = source.get("why")
    if comparison is not None and comparison.unverified:
        why = "; ".join(f"{t}: {w}" for t, w in comparison.unverified[:3])
    result = {"verdict": verdict, "target_tables": sorted(target),
              "comparison": comparison.to_dict() if comparison else None,
              "not_verified": unverified, "why_not_verified": why}
    if comparison is not None:
        log.info("Compared %d tables (%s): %d equal, %d differ, %d missing, %d unexpected, %d not verified",
                 comparison.compared, comparison.how(), len(comparison.matched), len(comparison.mismatched),
                 len(comparison.missing), len(comparison.unexpected), len(comparison.unverified))
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
    rules = (planned.get("drill") or {}).get("restore_tables") or []
    if rules:
        # A drill of chosen tables: the plan found none of them in the target, so each one there now is the
        # drill's; the scratch cluster's other data stays.
        restored = select_tables((o for o in target_user_objects(target.sql_conn_id) if "." in o), rules)
        dropped = drop_tables(target.sql_conn_id, restored)
        left = select_tables((o for o in target_user_objects(target.sql_conn_id) if "." in o), rules)
    else:
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
        "compared_how": (comparison or {}).get("how") or "not compared",
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
        return (f"Drill passed: {where}: {record['tables_compared']} tables equal to the source "
                f"({record['compared_how']}); {timing}")
    if record["verdict"] == NOT_VERIFIED:
        return (f"Drill restored but NOT VERIFIED: {where}: {len(record['not_verified'])} tables not compared "
                f"({record['why_not_verified']}); {timing}")
    why = record["mismatches"] or (f"failed tasks: {', '.join(record['failed_tasks'])}"
                                   if record["failed_tasks"] else "see the task logs")
    return f"Drill FAILED: {where}: {why} (compared: {record.get('compared_how') or 'not compared'}); {timing}"


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
                "tables_compared", "compared_how", "mismatches", "rto_seconds", "estimated_seconds",
                "restore_seconds", "summary")


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
