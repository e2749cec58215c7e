"""The restore run's validation and plan: every refusal happens here, before any Restore CR exists.

A restore and retention keep out of each other's way through leases on the live log backup CR: the restore
writes its own (naming its base), then reads retention's; while a retention run holds its lease the
restore waits (up to `waits.retention_wait`) and then refuses.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ...config import ClusterConfig, DrillConfig
from ...cr.api import RESTORES
from ...cr.inventory import Inventory, load_inventory
from ...cr.leases import release_restore_lease, retention_lease, take_restore_lease
from ...cr.model import BackupView, RestoreView, State
from ...cr.names import restore_name
from ...hooks.kubernetes import TidbOperatorHook, hook_for
from ...hooks.sql import gc_state, listed, target_user_objects
from ...hooks.storage import BackupStorageHook
from ...planning import PlanError, RestorePlan, plan_restore, recoverable_window
from ...planning.drill import verifiable
from ...planning.notes import note_time, with_details
from ...planning.restore import RestoreRates
from ...runtime.context import failed_upstream
from ...runtime.metrics import RESTORE_SECONDS, gauge
from ...runtime.notes import NOTE_KEY, publish_note
from ...tso import dt_to_tso, parse_cr_ts, parse_user_time, tso_iso, tso_label, tso_to_dt
from ...units import format_duration

log = logging.getLogger(__name__)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CLUSTER_RESOURCE = {"pingcap.com": ("pingcap.com", "v1alpha1", "tidbclusters"),
                    "br.pingcap.com": ("core.pingcap.com", "v1alpha1", "clusters")}
RETENTION_POLL = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESTORE_LEASE_HOLD = timedelta(hours=30)  # longer than a restore's wait; a dead run's lease ends


class RestoreRefused(AirflowFailException):
    """A restore request that is refused before anything changes; the message names the field. `window` holds
    the recoverable window's (earliest, latest) TSOs once read, `()` when there is none, for the run's note."""

    window: tuple[int, ...] | None = None


def parse_target_time(params: dict[str, Any]) -> int:
    when, tso = params.get("restore_time"), params.get("restore_tso")
    if bool(when) == bool(tso):
        raise RestoreRefused("give exactly one of restore_time (a date and time with its timezone, e.g. "
                             "2026-11-21T05:30:00Z) and restore_tso (a TSO); got "
                             f"restore_time={when!r}, restore_tso={tso!r}")
    try:
        return parse_user_time(str(when), field="restore_time") if when else parse_user_time(str(tso),
                                                                                            field="restore_tso")
    except ValueError as exc:
        raise RestoreRefused(str(exc)) from exc


def _target(cluster: ClusterConfig, params: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) from `target_cluster` ("namespace/name" as the form's list gives it, or a name, with
    `target_namespace` or the source's namespace)."""
    raw = str(params.get("target_cluster") or "").strip()
    namespace, _, name = raw.rpartition("/")
    namespace = namespace or str(params.get("target_namespace") or "").strip() or cluster.namespace
    for field, value in (("target_cluster", name), ("target_namespace", namespace)):
        if not _DNS_LABEL.match(value):
            raise RestoreRefused(f"{field} must be a Kubernetes name (lower-case letters, digits and '-'); "
                                 f"got {value!r}")
    if (namespace, name) == (cluster.namespace, cluster.tidb_cluster):
        raise RestoreRefused(f"target_cluster {namespace}/{name} is the source cluster: a restore goes into a "
                             "separate, empty cluster, never in place")
    if not cluster.restore_target_allowed(name, namespace):
        raise RestoreRefused(f"target_cluster {namespace}/{name} is not an allowed restore target for "
                             f"{cluster.namespace}/{cluster.name}; allowed: {', '.join(cluster.target_choices())}")
    return namespace, name


def _earlier_restores(hook: TidbOperatorHook, namespace: str, name: str) -> list[RestoreView]:
    views = [RestoreView.from_cr(o) for o in hook.list(RESTORES, namespace)]
    return sorted((v for v in views if v.cluster == name), key=lambda v: (v.created or _EPOCH, v.name))


def _check_target(hook: TidbOperatorHook, cluster: ClusterConfig, namespace: str, name: str) -> list[RestoreView]:
    """The target exists and nothing restores into it now; returns the Restore CRs that went into it before."""
    group, version, plural = CLUSTER_RESOURCE[cluster.api_group]
    if hook.get_object(group, version, plural, name, namespace) is None:
        raise RestoreRefused(f"target_cluster {namespace}/{name} not found ({plural}.{group}): create the "
                             "empty TiDB cluster to restore into first")
    earlier = _earlier_restores(hook, namespace, name)
    running = [r.name for r in earlier if r.state in (State.PENDING, State.RUNNING)]
    if running:
        raise RestoreRefused(f"target_cluster {namespace}/{name} already has a restore in progress: "
                             f"{', '.join(running)}")
    return earlier


def check_target_empty(cluster: ClusterConfig, namespace: str, name: str) -> str:
    """Refuse a target holding user data, over SQL, before any CR exists; returns what the plan says."""
    configured = cluster.restore_target(name, namespace)
    conn_id = configured.sql_conn_id if configured else None
    if not conn_id:
        return (f"WARNING: target {namespace}/{name} has no sql_conn_id in clusters.yaml: not checked for user "
                "data; BR will fail the restore later (ErrDatabasesAlreadyExisted) if it is not empty")
    try:
        found = target_user_objects(conn_id)
    except Exception as exc:  # the driver's own errors: unreachable, access denied, ...
        raise RestoreRefused(f"target_cluster {namespace}/{name} could not be checked over SQL through connection "
                             f"{conn_id!r}: {type(exc).__name__}: {exc}; fix the connection (or remove "
                             "sql_conn_id to skip the check)") from exc
    if found:
        raise RestoreRefused(f"target_cluster {namespace}/{name} is not empty: it holds {listed(found)}; a "
                             "restore needs an empty cluster (after the Restore CR exists BR would fail with "
                             "ErrDatabasesAlreadyExisted, Lightning on tables that already hold rows); empty it "
                             "or choose another target")
    return f"target {namespace}/{name} checked over SQL ({conn_id}): no user databases"


def _retention_holder(inventory: Inventory) -> str | None:
    now = datetime.now(UTC)
    for view in inventory.logs:
        lease = retention_lease(view)
        if lease is not None and lease.active(now):
            return f"retention run {lease.run} (lease on {view.name} until {lease.until.isoformat()})"
    return None


def _log_volume(cluster: ClusterConfig, log: BackupView, start_ts: int, end_ts: int) -> tuple[int, int] | str:
    """(bytes, files) of log data to replay, from storage; or why it could not be read."""
    if not log.prefix:
        return f"log backup {log.name} has no storage prefix"
    try:
        volume = BackupStorageHook(**cluster.storage.hook_kwargs()).log_volume(log.prefix, start_ts, end_ts)
    except Exception as exc:  # any storage error only makes the estimate incomplete
        return f"storage not readable: {type(exc).__name__}: {exc}"
    return volume.bytes, volume.files


def _plan(cluster: ClusterConfig, inventory: Inventory, params: dict[str, Any], target_ts: int,
          namespace: str, target: str, name: str,
          volume: tuple[int, int] | str | None = None) -> tuple[RestorePlan, bool, tuple[int, int] | str]:
    """The plan, whether to wait for the checkpoint, and the log volume (read from storage unless given)."""
    now = datetime.now(UTC)
    current = inventory.current_log()
    logs = list(inventory.logs)
    wait = False
    if current is not None and current.checkpoint_ts and target_ts > current.checkpoint_ts:
        # Recent but not yet in the log: wait for the checkpoint, if the log backup is healthy and close.
        behind = (now - tso_to_dt(target_ts)).total_seconds()
        healthy = current.state == State.RUNNING and not current.error_paused
        if healthy and behind <= cluster.rpo.critical.total_seconds():
            wait = True
            logs = [dataclasses.replace(v, checkpoint_ts=target_ts) if v is current else v for v in logs]
        else:
            raise RestoreRefused(f"restore_time {tso_iso(target_ts)} is after the log checkpoint "
                                 f"{tso_iso(current.checkpoint_ts)} and the log backup is {current.phase}")
    rates = RestoreRates(snapshot=cluster.restore_rates.snapshot_gb_per_hour * 1e9,
                         log=cluster.restore_rates.log_gb_per_hour * 1e9)
    common = {"target_cluster": target, "target_namespace": namespace, "source_cluster": cluster.tidb_cluster,
              "source_namespace": cluster.namespace, "group": cluster.group(), "tikv_count": cluster.tikv_count,
              "base_override": params.get("base_snapshot") or None, "name": name,
              "service_account": cluster.service_account, "rates": rates}
    try:
        plan = plan_restore(target_ts, inventory.snapshots, logs, **common)
        if volume is None:
            volume = _log_volume(cluster, plan.log, plan.base.commit_ts or 0, target_ts)
        plan = plan_restore(target_ts, inventory.snapshots, logs, **common, log_volume=volume)
    except PlanError as exc:
        raise RestoreRefused(str(exc)) from exc
    return plan, wait, volume


def _describe_restore(view: RestoreView) -> str:
    point = view.pitr_restored_ts or "latest"
    with_ts = parse_cr_ts(point) if point.isdigit() else None
    shown = tso_label(with_ts) if with_ts else point
    return f"{view.name}: {view.phase or 'no status'} (to {shown}{', ' + view.message if view.message else ''})"


def plan_restore_for(cluster: ClusterConfig, params: dict[str, Any], *, run: str = "",
                     run_hash: str = "") -> dict[str, Any]:
    """Validate, check the target and plan; every refusal carries the recoverable window."""
    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    try:
        return _plan_restore_for(cluster, hook, inventory, params, run=run, run_hash=run_hash)
    except RestoreRefused as exc:
        message = str(exc)
        window = recoverable_window(inventory.snapshots, inventory.logs)
        if "recoverable window" not in message:
            message = f"{message}; the recoverable window is {window.brief()}"
        refused = RestoreRefused(message)
        refused.window = (() if window.earliest_ts is None or window.latest_ts is None
                          else (window.earliest_ts, window.latest_ts))
        raise refused from None


def _plan_restore_for(cluster: ClusterConfig, hook: TidbOperatorHook, inventory: Inventory, params: dict[str, Any],
                      *, run: str, run_hash: str) -> dict[str, Any]:
    target_ts = parse_target_time(params)
    namespace, target = _target(cluster, params)
    now = datetime.now(UTC)
    if target_ts > dt_to_tso(now):
        raise RestoreRefused(f"restore_time {tso_iso(target_ts)} is in the future (now is "
                             f"{now.isoformat(timespec='seconds')})")
    dry_run = bool(params.get("dry_run"))
    name = restore_name(cluster.name, tso_to_dt(target_ts).strftime("%Y%m%d%H%M%S"), run_hash or "manual")
    plan, wait, volume = _plan(cluster, inventory, params, target_ts, namespace, target, name)
    earlier = _check_target(hook, cluster, namespace, target)
    target_check = check_target_empty(cluster, namespace, target)
    checking = _verify_plan(cluster, params, namespace, target, target_ts)  # refusals before the lease
    deadline = time.monotonic() + cluster.waits.retention_wait.total_seconds()
    while True:
        holder = _retention_holder(inventory)
        if holder is None and not dry_run and run_hash:
            # Ours first (naming the base), then look at retention's again: one of the two sees the other.
            lease_on = inventory.current_log() or plan.log
            take_restore_lease(hook, lease_on, run_hash, run, base=plan.base.name, start_ts=plan.base.commit_ts or 0,
                               target=f"{namespace}/{target}", hold=RESTORE_LEASE_HOLD)
            inventory = load_inventory(hook, cluster)
            holder = _retention_holder(inventory)
            if holder is not None:
                release_restore_lease(hook, next(v for v in inventory.logs if v.name == lease_on.name), run_hash)
        if holder is None:
            break
        if dry_run or time.monotonic() >= deadline:
            raise RestoreRefused(f"a retention run is deleting or truncating this cluster's backups: {holder}; "
                                 "restore after it has finished")
        log.info("Waiting for %s to finish before restoring", holder)
        time.sleep(RETENTION_POLL)
        inventory = load_inventory(hook, cluster)
        plan, wait, volume = _plan(cluster, inventory, params, target_ts, namespace, target, name, volume)
    notes = [*plan.notes, target_check, *([checking["note"]] if checking else [])]
    notes.append(f"earlier restores into {namespace}/{target}: " + ("; ".join(_describe_restore(v) for v in earlier)
                                                                 if earlier else "none"))
    notes.append(f"recoverable window: {plan.window.brief()}")
    if dry_run:
        notes.append("DRY RUN: nothing will be created")
    for note in notes:
        log.info("plan: %s", note)
    summary = plan.to_dict()
    log.info("Restore CR %s/%s%s: %s", namespace, name, " (not created: dry run)" if dry_run else "", plan.body)
    return {"target_ts": target_ts, "target_time": tso_iso(target_ts), "target_cluster": target,
            "target_namespace": namespace, "log_backup": plan.log.name, "log_prefix": plan.log.prefix,
            "wait_for_checkpoint": wait, "body": plan.body, "plan": summary, "dry_run": dry_run,
            "notes": notes, "target_check": target_check, "verify": checking,
            "earlier_restores": [{"name": v.name, "phase": v.phase, "message": v.message} for v in earlier]}


def _verify_plan(cluster: ClusterConfig, params: dict[str, Any], namespace: str, target: str,
                 target_ts: int) -> dict[str, Any] | None:
    """With `verify`: the connections to compare through, and whether the source can still be read at T."""
    if not params.get("verify"):
        return None
    configured = cluster.restore_target(target, namespace)
    missing = [field for field, value in (("sql_conn_id (of the cluster)", cluster.sql_conn_id),
                                          (f"restore_targets {namespace}/{target} sql_conn_id",
                                           configured.sql_conn_id if configured else None)) if not value]
    if missing:
        raise RestoreRefused(f"verify needs {' and '.join(missing)} in clusters.yaml: both sides are compared "
                             "over SQL")
    try:
        gc = gc_state(str(cluster.sql_conn_id))
    except Exception as exc:  # the driver's own errors
        raise RestoreRefused(f"verify: the source's GC safe point could not be read through "
                             f"{cluster.sql_conn_id!r}: {type(exc).__name__}: {exc}") from exc
    headroom = (cluster.drill.gc_headroom if cluster.drill
                else DrillConfig.model_fields["gc_headroom"].default)  # one default, the drill's
    readable = verifiable(target_ts, gc, headroom)
    note = ("verify: every user table will be compared with the source as of the restore time" if readable else
            f"verify: the restore time is older than the source's GC safe point {tso_iso(gc.safe_point_ts)}: the "
            "tables cannot be compared and will be reported as not verified")
    assert configured is not None
    return {"tables": ["*.*"], "verifiable": readable, "source_conn_id": cluster.sql_conn_id,
            "target_conn_id": configured.sql_conn_id, "note": note}


def release_restore(cluster: ClusterConfig, run_hash: str) -> None:
    hook = hook_for(cluster)
    for view in load_inventory(hook, cluster).logs:
        release_restore_lease(hook, view, run_hash)


def _verified_text(checked: dict[str, Any]) -> str:
    verdict = checked.get("verdict")
    if verdict == "passed":
        return f"; verified: {checked['comparison']['compared']} tables equal to the source"
    if verdict == "not verified":
        return f"; NOT VERIFIED ({checked.get('why_not_verified')}): {len(checked['not_verified'])} tables not compared"
    return ""


def _restore_failure(hook: TidbOperatorHook, planned: dict[str, Any]) -> str:
    """The Restore CR's own verdict, for a failed run: `Restore ns/name Failed (reason): message`."""
    name, namespace = planned["body"]["metadata"]["name"], planned["target_namespace"]
    obj = hook.get(RESTORES, name, namespace)
    if obj is None:
        return f"Restore {namespace}/{name} was not created"
    view = RestoreView.from_cr(obj)
    why = f" ({view.reason})" if view.reason else ""
    return f"Restore {namespace}/{name} {view.phase or 'without status'}{why}: {view.message or 'no message'}"


def restore_report(cluster: ClusterConfig, context: Any) -> dict[str, Any]:
    """The run's outcome in one line (also its note), estimate against actual; fails when the restore did."""
    ti = context["ti"]
    planned = ti.xcom_pull(task_ids="plan")
    if not planned:
        # Refused at plan. This closing task must fail too: Airflow decides a run's state by its leaves, and a
        # skipped `report` would make a refused restore a green run.
        refused = ti.xcom_pull(task_ids="plan", key=NOTE_KEY) or "plan failed (see its log)"
        raise AirflowFailException(f"the restore did not start: {refused}")
    failed = failed_upstream(context)
    if failed:
        line = f"Failed: {_restore_failure(hook_for(cluster), planned)} (failed tasks: {', '.join(failed)})"
        publish_note(context, with_details(line, line))
        raise AirflowFailException(line)
    restored = ti.xcom_pull(task_ids="restore")
    if not restored:
        return {"dry_run": True, "plan": planned["plan"]}
    checked = ti.xcom_pull(task_ids="verify") or {}
    estimate = planned["plan"]["estimate"]
    took = restored["duration_seconds"]
    ratio = (took / estimate["seconds"]) if took is not None and estimate["seconds"] else None
    summary = {"restore_point": planned["target_time"], "restore_ts": str(planned["target_ts"]),
               "target": f"{planned['target_namespace']}/{planned['target_cluster']}",
               "base_snapshot": planned["plan"]["base"]["name"], "restore": restored["name"],
               "duration_seconds": took, "estimated_seconds": estimate["seconds"],
               "estimate_complete": estimate["complete"], "actual_to_estimate": ratio,
               "verify": checked.get("verdict", "not requested")}
    took_text = format_duration(took) if took is not None else "an unknown time"
    versus = f"estimated {estimate['text']}" + (f"; actual/estimate {ratio:.2f}" if ratio is not None else "")
    line = (f"Restored {cluster.namespace}/{cluster.name} to {tso_label(int(planned['target_ts']))} into "
            f"{summary['target']} from {summary['base_snapshot']} in {took_text} ({versus})"
            f"{_verified_text(checked)}")
    log.info("%s", line)
    verified = {"passed": "verified", "not verified": "NOT VERIFIED"}.get(summary["verify"], "not verified: not asked")
    headline = (f"Restored to {note_time(int(planned['target_ts']), cluster.timezone)} into {summary['target']} "
                f"in {took_text}, {verified}")
    publish_note(context, with_details(headline, line))
    gauge(RESTORE_SECONDS, took, cluster)
    return summary
