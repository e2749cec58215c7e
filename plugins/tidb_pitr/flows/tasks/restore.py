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
from ...cr.api import BACKUPS, RESTORES
from ...cr.inventory import Inventory, load_inventory
from ...cr.leases import release_restore_lease, retention_lease, take_restore_lease
from ...cr.model import BackupView, RestoreView, State
from ...cr.names import restore_name
from ...hooks.kubernetes import TidbOperatorHook, hook_for
from ...hooks.sql import (
    SourceNotReadable,
    connection_login,
    gc_state,
    listed,
    server_version,
    tables_at,
    target_user_objects,
)
from ...hooks.storage import BackupStorageHook
from ...planning import PlanError, RestorePlan, plan_restore, recoverable_window
from ...planning.drill import select_tables, verifiable
from ...planning.notes import note_time, with_details
from ...planning.restore import RestoreRates
from ...planning.tables import (
    TablesPlan,
    br_filter,
    check_version,
    concurrent_refusal,
    parse_rules,
    plan_tables,
    release_version,
)
from ...runtime.context import failed_upstream
from ...runtime.metrics import RESTORE_SECONDS, gauge
from ...runtime.notes import NOTE_KEY, publish_note
from ...runtime.notifiers import NotifierError, notify
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
    if not raw:  # the form's default: never a cluster a user or the demo may already have filled
        raise RestoreRefused(f"target_cluster is empty: choose the empty cluster to restore into; "
                             f"{cluster.allowed_targets_text()}")
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
                             f"{cluster.namespace}/{cluster.name}; {cluster.allowed_targets_text()}")
    return namespace, name


def _earlier_restores(hook: TidbOperatorHook, namespace: str, name: str) -> list[RestoreView]:
    views = [RestoreView.from_cr(o) for o in hook.list(RESTORES, namespace)]
    return sorted((v for v in views if v.cluster == name), key=lambda v: (v.created or _EPOCH, v.name))


def _check_target(hook: TidbOperatorHook, cluster: ClusterConfig, namespace: str, name: str,
                  tables: TablesPlan | None = None, release: tuple[int, int, int] | None = None) -> list[RestoreView]:
    """The target exists and nothing restores into it now (but a filtered restore of other tables where BR v9
    allows it: planning/tables.py `concurrent_refusal`); returns the Restore CRs that went into it before."""
    group, version, plural = CLUSTER_RESOURCE[cluster.api_group]
    if hook.get_object(group, version, plural, name, namespace) is None:
        raise RestoreRefused(f"target_cluster {namespace}/{name} not found ({plural}.{group}): create the "
                             "empty TiDB cluster to restore into first")
    earlier = _earlier_restores(hook, namespace, name)
    running = [(r.name, r.table_filter) for r in earlier if r.state in (State.PENDING, State.RUNNING)]
    refusal = concurrent_refusal(release, tables, running)
    if refusal:
        raise RestoreRefused(f"target_cluster {namespace}/{name} {refusal}")
    return earlier


def _failed_restore(earlier: list[RestoreView]) -> RestoreView | None:
    """The newest earlier restore into the target when it failed: BR writes progressively, so what it wrote
    before failing stays in the target."""
    return earlier[-1] if earlier and earlier[-1].state == State.FAILED else None


def _holds(namespace: str, name: str, found: list[str], earlier: list[RestoreView]) -> str:
    failed = _failed_restore(earlier)
    held = (f"; it holds a failed restore's data: Restore {failed.namespace}/{failed.name} {failed.phase}"
            f"{': ' + failed.message if failed.message else ''}" if failed else "")
    return f"target_cluster {namespace}/{name} is not empty: it holds {listed(found)}{held}"


def target_sql_conn(cluster: ClusterConfig, namespace: str, name: str) -> str | None:
    """The configured target's sql_conn_id, None when it has none (or is not configured)."""
    configured = cluster.restore_target(name, namespace)
    return configured.sql_conn_id if configured else None


def check_target_empty(cluster: ClusterConfig, namespace: str, name: str,
                       earlier: list[RestoreView] | None = None) -> str:
    """Refuse a target holding user data, over SQL, before any CR exists; returns what the plan says. Without a
    sql_conn_id a BR restore goes on with a warning: BR's own fresh-cluster check refuses later."""
    conn_id = target_sql_conn(cluster, namespace, name)
    if not conn_id:
        return (f"WARNING: target {namespace}/{name} has no sql_conn_id in clusters.yaml: not checked for user "
                "data; BR will fail the restore later (ErrDatabasesAlreadyExisted) if it is not empty")
    return _checked_empty(conn_id, namespace, name, earlier, "a restore needs an empty cluster (after the Restore CR "
                          "exists BR would fail with ErrDatabasesAlreadyExisted); empty it or choose another target")


def check_logical_target(cluster: ClusterConfig, namespace: str, name: str,
                         earlier: list[RestoreView] | None = None) -> str:
    """A Lightning restore only into a target checked empty over SQL: Lightning's tidb backend has no empty-table
    check (it inserts the dump's rows into tables that exist until the first duplicate key, and what went in
    stays), so nothing but this check keeps a dump from merging into data."""
    conn_id = target_sql_conn(cluster, namespace, name)
    if not conn_id:
        raise RestoreRefused(f"target_cluster {namespace}/{name} has no sql_conn_id in clusters.yaml (restore_targets)"
                             ": a logical restore needs it to check the target is empty, because Lightning's tidb "
                             "backend has no empty-table check and would merge the dump's rows into tables that "
                             "already exist; add sql_conn_id for this target")
    return _checked_empty(conn_id, namespace, name, earlier, "Lightning's tidb backend has no empty-table check: it "
                          "would insert the dump's rows into those tables until the first duplicate key and leave "
                          "them there; empty it or choose another target")


def _checked_empty(conn_id: str, namespace: str, name: str, earlier: list[RestoreView] | None, why: str) -> str:
    """What the plan says of a target found empty over SQL; refused, saying `why` emptiness matters, when not."""
    found = _user_objects(conn_id, namespace, name)
    if found:
        raise RestoreRefused(f"{_holds(namespace, name, found, earlier or [])}; {why}")
    return f"target {namespace}/{name} checked over SQL ({conn_id}): no user databases"


def _user_objects(conn_id: str, namespace: str, name: str) -> list[str]:
    try:
        return target_user_objects(conn_id)
    except Exception as exc:  # the driver's own errors: unreachable, access denied, ...
        raise RestoreRefused(f"target_cluster {namespace}/{name} could not be checked over SQL through connection "
                             f"{conn_id!r}: {type(exc).__name__}: {exc}; fix the connection") from exc


def restore_rules(params: dict[str, Any]) -> list[str]:
    """The `tables` field as BR table-filter rules ([] restores the whole cluster), refused naming the field."""
    try:
        return parse_rules(params.get("tables"))
    except PlanError as exc:
        raise RestoreRefused(str(exc)) from exc


def target_release(cluster: ClusterConfig, hook: TidbOperatorHook, namespace: str,
                   name: str) -> tuple[tuple[int, int, int] | None, str]:
    """The target's TiDB release, over SQL (VERSION()) when it has a sql_conn_id, else from the cluster object's
    spec.version (the image BR runs from when the Restore names no toolImage); with where it was read."""
    conn_id = target_sql_conn(cluster, namespace, name)
    if conn_id:
        try:
            text = server_version(conn_id)
            return release_version(text), f"VERSION() {text!r} over {conn_id}"
        except Exception as exc:  # the driver's own errors: the cluster object may still say
            log.info("VERSION() not read through %s: %s", conn_id, exc)
    group, version, plural = CLUSTER_RESOURCE[cluster.api_group]
    obj = hook.get_object(group, version, plural, name, namespace) or {}
    spec_version = str((obj.get("spec") or {}).get("version") or "")
    return (release_version(spec_version) if spec_version else None), f"{plural} spec.version {spec_version!r}"


def source_tables_at(cluster: ClusterConfig, target_ts: int) -> tuple[list[str] | None, str]:
    """The source's user tables as of T over SQL (None when it has no sql_conn_id or the GC has passed T), and
    what the plan says of it. A connection that fails otherwise is refused: the filter could not be checked."""
    if not cluster.sql_conn_id:
        return None, ("source has no sql_conn_id: the tables restored are whatever matches at the restore time "
                      "(a filter that matches nothing restores nothing)")
    try:
        return tables_at(cluster.sql_conn_id, target_ts), f"source tables at T read over SQL ({cluster.sql_conn_id})"
    except SourceNotReadable as exc:
        return None, (f"WARNING: the source cannot be read at T any more ({exc}): the tables restored are whatever "
                      "matches at the restore time")
    except Exception as exc:  # the driver's own errors
        raise RestoreRefused(f"tables: the source's tables at the restore time could not be read through "
                             f"{cluster.sql_conn_id!r}: {type(exc).__name__}: {exc}; fix the connection") from exc


def plan_filtered(cluster: ClusterConfig, hook: TidbOperatorHook, namespace: str, name: str, target_ts: int,
                  rules: list[str]) -> tuple[TablesPlan, tuple[int, int, int] | None, list[str]]:
    """A filtered restore's checks before any CR: the target's TiDB (v8.5.5+), the source's tables at T that the
    rules select (none is refused), and none of them in the target (over SQL); the notes the plan prints."""
    release, read_from = target_release(cluster, hook, namespace, name)
    try:
        notes = [f"{check_version(release, f'{namespace}/{name}')} ({read_from})"]
        source, source_note = source_tables_at(cluster, target_ts)
        conn_id = target_sql_conn(cluster, namespace, name)
        held = _user_objects(conn_id, namespace, name) if conn_id else None
        tables = plan_tables(rules, source, held)
    except PlanError as exc:
        raise RestoreRefused(str(exc)) from exc
    notes.append(source_note)
    notes.append(f"target {namespace}/{name} checked over SQL ({conn_id}): holds none of the tables" if conn_id else
                 f"WARNING: target {namespace}/{name} has no sql_conn_id: not checked for these tables; BR refuses "
                 "after the Restore CR exists (ErrTablesAlreadyExisted) if it holds one")
    notes.append(tables.describe())
    return tables, release, notes


def check_target_log_backup(hook: TidbOperatorHook, namespace: str, name: str) -> None:
    """Refuse a target that runs its own log backup (a log Backup CR for it in its namespace, not yet stopped),
    before the Restore CR: BR before v9 fails every restore into it (`checkTaskExists`: "log backup task is
    running"), v9 every whole-cluster snapshot restore (`checkTaskCompat`)."""
    for view in (BackupView.from_cr(o) for o in hook.list(BACKUPS, namespace)):
        if (view.is_log and (view.cluster_namespace or namespace, view.cluster) == (namespace, name)
                and not view.state.terminal and not view.deleting):
            raise RestoreRefused(f"target_cluster {namespace}/{name} runs its own log backup: Backup {namespace}/"
                                 f"{view.name} ({view.phase or 'no status'}); BR refuses to restore into a cluster "
                                 "with a log backup task (before v9 'log backup task is running', v9 for a "
                                 "whole-cluster restore); stop that log backup or choose another target")


# The accounts a full restore leaves as the target had them: BR's `--reset-sys-users` default (tidb
# br/pkg/task/restore.go `FlagResetSysUsers`); every other account becomes the source's or is gone.
KEPT_ACCOUNTS = frozenset({"root", "cloud_admin"})


def target_account_note(cluster: ClusterConfig, namespace: str, name: str) -> str | None:
    """A warning when the target's sql_conn_id logs in as another user than root: a full restore copies the
    source's privilege tables (BR `--with-sys-table`, default true) and resets only root, so that account is
    replaced by the source's or disappears."""
    conn_id = target_sql_conn(cluster, namespace, name)
    if not conn_id:
        return None
    try:
        login = connection_login(conn_id)
    except Exception as exc:  # an unknown connection is reported by the SQL check itself
        log.info("Connection %s not read for its login: %s", conn_id, exc)
        return None
    if not login or login in KEPT_ACCOUNTS:
        return None
    return (f"WARNING: target {namespace}/{name} is reached through {conn_id!r} as user {login!r}, not root: a "
            "full restore replaces the target's accounts with the source's (BR restores mysql.user and resets "
            f"only root), so after the restore {login!r} exists only as the source has it")


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
          volume: tuple[int, int] | str | None = None, table_filter: list[str] | None = None) -> tuple[RestorePlan, bool, tuple[int, int] | str]:
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
              "service_account": cluster.service_account, "rates": rates, "table_filter": table_filter or []}
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
                     run_hash: str = "", scratch_allowed: bool = False) -> dict[str, Any]:
    """Validate, check the target and plan; every refusal carries the recoverable window. A scratch target (the
    drill's, which it empties afterwards) only with `scratch_allowed` (the drill): never for a user's restore."""
    hook = hook_for(cluster)
    inventory = load_inventory(hook, cluster)
    try:
        return _plan_restore_for(cluster, hook, inventory, params, run=run, run_hash=run_hash,
                                 scratch_allowed=scratch_allowed)
    except RestoreRefused as exc:
        message = str(exc)
        window = recoverable_window(inventory.snapshots, inventory.logs)
        if "recoverable window" not in message:
            message = f"{message}; the recoverable window is {window.brief()}"
        refused = RestoreRefused(message)
        refused.window = (() if window.earliest_ts is None or window.latest_ts is None
                          else (window.earliest_ts, window.latest_ts))
        raise refused from None


def _refuse_scratch(cluster: ClusterConfig, params: dict[str, Any]) -> None:
    namespace, name = _target(cluster, params)
    configured = cluster.restore_target(name, namespace)
    if configured is not None and configured.scratch:
        raise RestoreRefused(f"target_cluster {namespace}/{name} is a scratch cluster: drills only (the drill drops "
                             f"its user databases afterwards); {cluster.allowed_targets_text()}")


def _plan_restore_for(cluster: ClusterConfig, hook: TidbOperatorHook, inventory: Inventory, params: dict[str, Any],
                      *, run: str, run_hash: str, scratch_allowed: bool = False) -> dict[str, Any]:
    target_ts = parse_target_time(params)
    rules = restore_rules(params)
    namespace, target = _target(cluster, params)
    if not scratch_allowed:
        _refuse_scratch(cluster, params)
    now = datetime.now(UTC)
    if target_ts > dt_to_tso(now):
        raise RestoreRefused(f"restore_time {tso_iso(target_ts)} is in the future (now is "
                             f"{now.isoformat(timespec='seconds')})")
    dry_run = bool(params.get("dry_run"))
    name = restore_name(cluster.name, tso_to_dt(target_ts).strftime("%Y%m%d%H%M%S"), run_hash or "manual")
    table_filter = br_filter(rules)
    plan, wait, volume = _plan(cluster, inventory, params, target_ts, namespace, target, name,
                               table_filter=table_filter)
    tables, release, table_notes = (plan_filtered(cluster, hook, namespace, target, target_ts, rules) if rules
                                    else (None, None, []))
    earlier = _check_target(hook, cluster, namespace, target, tables, release)
    check_target_log_backup(hook, namespace, target)
    # A filtered restore goes into a target that may hold other data and restores no system table (so no account).
    target_check = "; ".join(table_notes) if rules else check_target_empty(cluster, namespace, target, earlier)
    accounts = None if rules else target_account_note(cluster, namespace, target)
    checking = _verify_plan(cluster, params, namespace, target, target_ts, rules)  # refusals before the lease
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
        plan, wait, volume = _plan(cluster, inventory, params, target_ts, namespace, target, name, volume,
                                   table_filter)
    notes = [*plan.notes, target_check, *([accounts] if accounts else []), *([checking["note"]] if checking else [])]
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
            "tables": tables.to_dict() if tables else None,
            "earlier_restores": [{"name": v.name, "phase": v.phase, "message": v.message} for v in earlier]}


def compare_limits(cluster: ClusterConfig) -> dict[str, Any]:
    """How many tables the comparison reads at once and for how long each, from the drill's settings (their
    defaults when the cluster has no drill: a restore's `verify` compares the same way)."""
    fields = DrillConfig.model_fields
    parallel = cluster.drill.compare_parallel if cluster.drill else fields["compare_parallel"].default
    timeout = cluster.drill.compare_timeout if cluster.drill else fields["compare_timeout"].default
    return {"parallel": int(parallel), "timeout_seconds": timeout.total_seconds()}


def _verify_plan(cluster: ClusterConfig, params: dict[str, Any], namespace: str, target: str,
                 target_ts: int, rules: list[str] | None = None) -> dict[str, Any] | None:
    """With `verify`: the connections to compare through, and whether the source can still be read at T. A
    filtered restore compares only the tables its rules select, on both sides: the target's others are its own."""
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
    what = f"the tables {', '.join(rules)} select" if rules else "every user table"
    note = (f"verify: {what} will be compared with the source as of the restore time" if readable else
            f"verify: the restore time is older than the source's GC safe point {tso_iso(gc.safe_point_ts)}: the "
            "tables cannot be compared and will be reported as not verified")
    assert configured is not None
    return {"tables": list(rules) if rules else ["*.*"], "verifiable": readable, "source_conn_id": cluster.sql_conn_id,
            "target_conn_id": configured.sql_conn_id, "note": note, **compare_limits(cluster)}


def release_restore(cluster: ClusterConfig, run_hash: str) -> None:
    hook = hook_for(cluster)
    for view in load_inventory(hook, cluster).logs:
        release_restore_lease(hook, view, run_hash)


def _verified_text(checked: dict[str, Any]) -> str:
    verdict = checked.get("verdict")
    if verdict == "passed":
        return (f"; verified: {checked['comparison']['compared']} tables equal to the source "
                f"({checked['comparison'].get('how')})")
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


def _partly_written(cluster: ClusterConfig, hook: TidbOperatorHook, planned: dict[str, Any]) -> str | None:
    """What a Restore CR that failed left in its target: BR creates tables and ingests their data as it goes, so
    a failure after the start leaves tables behind. Counted over SQL when the target has a sql_conn_id."""
    name, namespace = planned["body"]["metadata"]["name"], planned["target_namespace"]
    obj = hook.get(RESTORES, name, namespace)
    if obj is None or RestoreView.from_cr(obj).state != State.FAILED:
        return None
    target = planned["target_cluster"]
    configured = cluster.restore_target(target, namespace)
    if configured is None or not configured.sql_conn_id:
        return (f"target {namespace}/{target} may be partly written (no sql_conn_id to check it); empty it before "
                "the next restore")
    try:
        found = target_user_objects(configured.sql_conn_id)
    except Exception as exc:  # the driver's own errors: the report says it could not look
        return (f"target {namespace}/{target} may be partly written (not checked: {type(exc).__name__}: {exc}); "
                "empty it before the next restore")
    tables = [o for o in found if "." in o]
    rules = (planned.get("tables") or {}).get("rules") or []
    if rules:  # a filtered restore: the target's other tables are its own, only the selected ones are BR's
        written = select_tables(tables, rules)
        return (f"target partly written: {', '.join(written)}; drop them before the next restore of these tables"
                if written else None)
    if not found:
        return None
    return f"target partly written: {len(tables)} tables; empty it before the next restore"


def _notify(cluster: ClusterConfig, context: Any, event: str, summary: str) -> None:
    """The cluster's notifiers, if any; a notifier that cannot be built is logged, never hides the failure."""
    try:
        failures = notify(cluster, context, event, summary)
    except NotifierError as exc:
        log.error("%s", exc)
        return
    for failure in failures:
        log.error("notifier failed: %s", failure)


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
        hook = hook_for(cluster)
        line = f"Failed: {_restore_failure(hook, planned)} (failed tasks: {', '.join(failed)})"
        partly = _partly_written(cluster, hook, planned)
        line += f"; {partly}" if partly else ""
        publish_note(context, with_details(line, line))
        _notify(cluster, context, "restore_failed", line)
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
               "verify": checked.get("verdict", "not requested"),
               "tables": (planned.get("tables") or {}).get("rules") or []}
    took_text = format_duration(took) if took is not None else "an unknown time"
    versus = f"estimated {estimate['text']}" + (f"; actual/estimate {ratio:.2f}" if ratio is not None else "")
    what = f"tables {', '.join(summary['tables'])} of " if summary["tables"] else ""
    line = (f"Restored {what}{cluster.namespace}/{cluster.name} to {tso_label(int(planned['target_ts']))} into "
            f"{summary['target']} from {summary['base_snapshot']} in {took_text} ({versus})"
            f"{_verified_text(checked)}")
    log.info("%s", line)
    verified = {"passed": "verified", "not verified": "NOT VERIFIED"}.get(summary["verify"], "not verified: not asked")
    headline = (f"Restored {'tables ' + ', '.join(summary['tables']) + ' ' if summary['tables'] else ''}to {note_time(int(planned['target_ts']), cluster.timezone)} into {summary['target']} "
                f"in {took_text}, {verified}")
    publish_note(context, with_details(headline, line))
    gauge(RESTORE_SECONDS, took, cluster)
    return summary
