"""`check`'s task body: measure every assumption the DAGs make about one cluster, read-only, through the hooks, and
hand the values to `planning/check.py` for the rows. Shared by the check DAG and `python -m tidb_pitr check`.

The only write is one probe object under `<root>/.tidb-pitr-check/`, deleted again before the check ends. A check
that cannot measure (an error) is a FAILED row saying why; the other checks still run.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...config import ClusterConfig, StorageConfig
from ...cr.api import BACKUPS
from ...cr.inventory import inventory_of
from ...hooks.kubernetes import TidbOperatorHook, hook_for
from ...hooks.storage import BackupStorageHook
from ...planning.check import (
    FAILED,
    OK,
    ROLE_GRANTS,
    SCHEDULE_GRANTS,
    SCRATCH_PRIVILEGES,
    SECRET_REASONS,
    SOURCE_PRIVILEGES,
    TARGET_PRIVILEGES,
    WARNING,
    CheckRow,
    access_rows,
    check_note,
    cluster_resource,
    drill_gc_row,
    grants_row,
    line,
    log_backup_rows,
    needed_access,
    new_failures,
    observe_for,
    probed_access,
    schedule_rows,
    schema_rows,
    secret_row,
    skew_row,
    version_row,
)
from ...tso import tso_to_dt

log = logging.getLogger(__name__)

# The CR fields the DAGs read or write, per kind (a CRD older than the operator the DAGs expect lacks some).
FIELDS = {
    "Backup": ("spec.logSubcommand", "spec.logTruncateUntil", "status.commitTs", "status.logCheckpointTs",
               "status.logSubCommandStatuses"),
    "Restore": ("spec.restoreMode", "spec.pitrRestoredTs", "status.commitTs"),
    "CompactBackup": ("spec.startTs", "spec.endTs"),
}


def dag_kinds(cluster: ClusterConfig) -> list[str]:
    """The kinds of DAG the factory builds for this cluster (factory.dags_for_cluster, by name)."""
    kinds = ["log_guard", "restore", "rpo_alert"]
    if not cluster.schedule_managed:
        kinds += ["snapshot", "retention", "log_control"]
    if cluster.compaction:
        kinds.append("compaction")
    if cluster.drill:
        kinds.append("drill")
    if cluster.logical_backup:
        kinds += ["logical_backup", "logical_restore"]
    return kinds


def _guarded(name: str, measure: Callable[[], list[CheckRow]]) -> list[CheckRow]:
    """The rows of one check, or one FAILED row naming what could not be measured and why."""
    try:
        return measure()
    except Exception as exc:  # any failure to measure is itself the finding
        log.warning("check %s could not measure: %s", name, exc, exc_info=True)
        return [CheckRow(name, FAILED, f"could not be measured: {type(exc).__name__}: {_short(exc)}",
                         "fix what the error names, then run check again")]


def _short(exc: BaseException, room: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= room else text[:room - 1] + "…"


def run_checks(cluster: ClusterConfig, *, observe_seconds: float | None = None, probe_tag: str = "",
               sleep: Callable[[float], None] = time.sleep, log_before: LogReading | None = None) -> list[CheckRow]:
    """Every row for `cluster`, in the order: Kubernetes, log backup (and schedule), storage, SQL, notifiers.
    The log checkpoints are watched `observe_seconds` from `log_before` (read now when not given)."""
    hook = hook_for(cluster)
    rows = _guarded("kubernetes connection", lambda: [
        CheckRow("kubernetes connection", OK, f"API server {hook.server_version()}")])
    if rows[0].status == FAILED:
        return rows  # everything below asks the same server
    rows += _guarded("crd", lambda: _crd_rows(cluster, hook))
    rows += _guarded("rbac", lambda: _rbac_rows(cluster, hook))
    rows += _guarded("tidb cluster", lambda: _cluster_rows(cluster, hook))
    observe = (observe_for(cluster.waits.tracker_interval.total_seconds(),
                           cluster.waits.log_flush_interval.total_seconds())
               if observe_seconds is None else observe_seconds)
    rows += _guarded("log backup", lambda: _log_rows(cluster, hook, observe, sleep, log_before))
    if cluster.schedule_managed:
        rows += _guarded("backup schedule", lambda: _schedule_rows(cluster, hook))
    rows += _guarded("storage", lambda: storage_rows(cluster.storage, probe_tag))
    rows += _guarded("storage secret", lambda: _secret_rows(cluster, hook))
    versions: dict[str, str] = {}
    rows += _guarded("sql", lambda: _sql_rows(cluster, versions))
    if cluster.sql_conn_id in versions:  # a cluster object without spec.version: the source's SELECT VERSION()
        rows = [version_row(versions[cluster.sql_conn_id], compaction=cluster.compaction, source="SELECT VERSION()")
                if r.name == "tidb version" and r.value == "unknown" else r for r in rows]
    rows += _guarded("notifiers", lambda: notifier_rows(cluster))
    return rows


# --- Kubernetes -----------------------------------------------------------------------------------------------

def _field_present(schema: dict[str, Any], path: str) -> bool:
    node = schema
    for part in path.split("."):
        node = (node.get("properties") or {}).get(part)
        if not isinstance(node, dict):
            return False
    return True


def _crd_rows(cluster: ClusterConfig, hook: TidbOperatorHook) -> list[CheckRow]:
    group, version = hook.api_group.group, hook.api_group.version
    served = hook.served_schemas(group, version) or {}
    kinds = ["Backup", "Restore"] + (["CompactBackup"] if cluster.compaction else [])
    missing = {kind: ([f for f in FIELDS[kind] if not _field_present(served[kind], f)] if kind in served else None)
               for kind in kinds}
    return schema_rows(missing)


def _rbac_rows(cluster: ClusterConfig, hook: TidbOperatorHook) -> list[CheckRow]:
    group = hook.api_group.group
    needed = needed_access(dag_kinds(cluster), group, schedule=cluster.schedule_managed)
    probes = list(dict.fromkeys([*needed, *probed_access(group)]))
    granted = {probe: hook.may(probe[2], probe[0], probe[1], cluster.namespace) for probe in probes}
    reference = set(ROLE_GRANTS) | (set(SCHEDULE_GRANTS) if cluster.schedule_managed else set())
    return access_rows(needed, granted, reference)


def _cluster_rows(cluster: ClusterConfig, hook: TidbOperatorHook) -> list[CheckRow]:
    group, plural = cluster_resource(hook.api_group.group)
    obj = hook.get_object(group, "v1alpha1", plural, cluster.tidb_cluster, cluster.namespace)  # both groups' version
    what = f"{plural}.{group} {cluster.namespace}/{cluster.tidb_cluster}"
    if obj is None:
        return [CheckRow("tidb cluster", FAILED, f"{what} not found", "set tidb_cluster to the cluster object's name")]
    rows = []
    conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready")
    if group == "pingcap.com":  # TiDB Operator v1 waits for Ready before it runs a Backup
        is_ready = ready is not None and ready.get("status") == "True"
        rows.append(CheckRow("tidb cluster", OK if is_ready else FAILED,
                             f"{what} is {'Ready' if is_ready else 'not Ready'}"
                             + ("" if is_ready or ready is None else f": {ready.get('message', '')}"),
                             "" if is_ready else "TiDB Operator runs no Backup until it is Ready: fix the cluster"))
    else:
        rows.append(CheckRow("tidb cluster", OK, f"{what} exists"))
    rows.append(version_row(str((obj.get("spec") or {}).get("version") or "") or None, compaction=cluster.compaction))
    return rows


# --- the log backup -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogReading:
    """The cluster's live log backups (name, storage prefix) and, when exactly one, its checkpoint in the CR and in
    storage, read at `at` (epoch seconds). The check DAG reads one before its deferred wait and one after."""

    live: list[tuple[str, str | None]]
    cr_ts: int | None
    storage_ts: int | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"live": [list(pair) for pair in self.live], "cr_ts": self.cr_ts, "storage_ts": self.storage_ts,
                "at": self.at}

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> LogReading:
        return cls([(str(n), p) for n, p in body["live"]], body.get("cr_ts"), body.get("storage_ts"),
                   float(body["at"]))


def read_log(cluster: ClusterConfig, hook: TidbOperatorHook | None = None) -> LogReading:
    hook = hook or hook_for(cluster)
    inventory = inventory_of(hook.list(BACKUPS, cluster.namespace), cluster.tidb_cluster, cluster.namespace)
    live = inventory.live_logs()
    pairs = [(v.name, v.prefix) for v in live]
    if len(live) != 1:
        return LogReading(pairs, None, None, time.time())
    storage = BackupStorageHook(**cluster.storage.hook_kwargs())
    return LogReading(pairs, live[0].checkpoint_ts, storage.log_checkpoint(live[0].prefix or "") or None, time.time())


def _log_rows(cluster: ClusterConfig, hook: TidbOperatorHook, observe: float, sleep: Callable[[float], None],
              before: LogReading | None) -> list[CheckRow]:
    """`before` read at the watch's start (the DAG's first task, whose wait since then was deferred): only the
    rest of `observe`, if any, is slept here; without it (the command line) the whole of it."""
    before = before or read_log(cluster, hook)
    after = before
    watched = len(before.live) == 1 and observe > 0  # 0: the lags only, whether the checkpoints move is not asked
    if watched:
        sleep(max(0.0, before.at + observe - time.time()))
        after = read_log(cluster, hook)
        watched = after.live == before.live  # another log task meanwhile: its checkpoints are not comparable
    now = time.time()

    def lag(ts: int | None) -> float | None:
        return None if not ts else now - tso_to_dt(ts).timestamp()

    def moved(was: int | None, now_at: int | None) -> bool | None:
        return None if not watched or not was or not now_at else now_at > was

    return log_backup_rows(after.live, cluster.storage.root, cr_lag=lag(after.cr_ts),
                           storage_lag=lag(after.storage_ts), cr_advanced=moved(before.cr_ts, after.cr_ts),
                           storage_advanced=moved(before.storage_ts, after.storage_ts),
                           observed_for=after.at - before.at if watched else observe,
                           warn=cluster.rpo.warn.total_seconds(), critical=cluster.rpo.critical.total_seconds())


def _schedule_rows(cluster: ClusterConfig, hook: TidbOperatorHook) -> list[CheckRow]:
    from .guard_schedule import load_schedule, schedule_plan

    inventory = inventory_of(hook.list(BACKUPS, cluster.namespace), cluster.tidb_cluster, cluster.namespace)
    plan = schedule_plan(cluster, load_schedule(hook, cluster), inventory)
    return schedule_rows(plan["schedule"], plan["hazards"])


# --- storage --------------------------------------------------------------------------------------------------

def storage_rows(config: StorageConfig, probe_tag: str) -> list[CheckRow]:
    """The root lists; one probe object under `<root>/.tidb-pitr-check/` writes, reads back and deletes (retention
    deletes with the same credential). A step that fails is FAILED, naming the probe object if it stayed."""
    storage = BackupStorageHook(**config.hook_kwargs())
    where = storage.url(config.root)
    snapshots = storage.list_snapshot_prefixes(config.root)
    rows = [CheckRow("storage list", OK, f"listed {where}: {len(snapshots)} snapshot folder(s)")]
    name = f"probe-{probe_tag or 'manual'}-{secrets.token_hex(4)}"
    payload = f"tidb-pitr-airflow check {name}".encode()
    key = storage.probe_key(name)
    step = "write"
    try:
        storage.write_probe(name, payload)
        step = "read back"
        if storage.read_object(key) != payload:
            raise ValueError("the object read back differs from what was written")
        step = "delete"
        storage.delete_probe(name)
        if storage.exists(key):
            raise ValueError("the object is still there after its delete")
    except Exception as exc:
        left = ""
        if step != "write":
            try:
                storage.delete_probe(name)
            except Exception:  # the delete is what failed: the object stays, and the row says where
                left = f"; left behind: {storage.url(key)}"
        rows.append(CheckRow("storage probe", FAILED, f"{step} failed: {_short(exc)}{left}",
                             f"the storage credential ({config.conn_id or 'default chain'}) must list, "
                             "write, read and delete: retention deletes snapshots with it"))
        return rows
    rows.append(CheckRow("storage probe", OK, f"wrote, read back and deleted {storage.url(key)}"))
    return rows


def _secret_rows(cluster: ClusterConfig, hook: TidbOperatorHook) -> list[CheckRow]:
    """The Secret the CRs name: read when Airflow's identity may `get secrets`, else the operator's answer to the
    newest of this cluster's Backups naming it (Running or Complete: it made the Job; RetryFailed: why not)."""
    storage, namespace = cluster.storage, cluster.namespace
    secret = storage.secret_name
    if storage.provider not in ("s3", "azblob") or not secret:
        row = secret_row(storage.provider, secret, None, readable=False, evidence=None)
        return [row] if row else []
    readable = hook.may("get", "", "secrets", namespace)
    keys = hook.secret_keys(secret, namespace) if readable else None
    evidence = None
    if not readable:
        inventory = inventory_of(hook.list(BACKUPS, namespace), cluster.tidb_cluster, namespace)
        named = [v for v in [*inventory.snapshots, *inventory.logs]
                 if (v.storage.get(storage.provider) or {}).get("secretName") == secret
                 and (v.phase in ("Running", "Complete") or v.reason in SECRET_REASONS)]
        newest = max(named, key=lambda v: v.phase_since or v.created or datetime.min.replace(tzinfo=UTC),
                     default=None)
        if newest is not None:
            evidence = (newest.name, newest.phase, newest.reason, newest.message)
    row = secret_row(storage.provider, secret, keys, readable=readable, evidence=evidence)
    return [row] if row else []


# --- SQL ------------------------------------------------------------------------------------------------------

def _sql_needs(cluster: ClusterConfig) -> dict[str, tuple[list[str], list[str]]]:
    """Each sql_conn_id (the source's first) -> the global privileges its account needs, and what for."""
    needs: dict[str, tuple[list[str], list[str]]] = {}

    def need(conn_id: str | None, privileges: tuple[str, ...], why: str) -> None:
        if conn_id:
            held, reasons = needs.setdefault(conn_id, ([], []))
            held += [p for p in privileges if p not in held]
            reasons.append(why)

    need(cluster.sql_conn_id, SOURCE_PRIVILEGES, "the source's GC safe point (mysql.tidb), table sizes and the "
         "drill's reads")
    drill = cluster.drill_target()
    scratch = (drill.namespace or cluster.namespace, drill.name) if drill else None
    for target in cluster.restore_targets:
        if (target.namespace or cluster.namespace, target.name) == scratch:
            need(target.sql_conn_id, SCRATCH_PRIVILEGES, f"the drill empties {target.name} (DROP DATABASE)")
        else:
            need(target.sql_conn_id, TARGET_PRIVILEGES, f"the restore's empty-target check on {target.name} sees "
                 "only the schemas the account may read")
    return needs


def _sql_rows(cluster: ClusterConfig, versions: dict[str, str]) -> list[CheckRow]:
    """The SQL rows; `versions` gets each connection's `SELECT VERSION()`."""
    from ...hooks.sql import current_version_and_tso, own_grants

    if not cluster.sql_conn_id:
        return [CheckRow("clock skew", WARNING, "not measured: no sql_conn_id",
                         "set sql_conn_id so the worker's clock can be compared with PD's")]
    rows = []
    needs = _sql_needs(cluster)
    skew: float | None = None
    for conn_id in needs:
        try:
            before = time.time()
            version, tso = current_version_and_tso(conn_id)
            after = time.time()
        except Exception as exc:
            rows.append(CheckRow(f"sql {conn_id}", FAILED, f"cannot query: {_short(exc)}",
                                 "fix the Airflow connection (host, port, user, password)"))
            continue
        rows.append(CheckRow(f"sql {conn_id}", OK, f"connected: {version}"))
        versions[conn_id] = version
        privileges, why = needs[conn_id]
        rows += _guarded(f"sql grants {conn_id}", lambda c=conn_id, p=privileges, w=why: [
            grants_row(c, own_grants(c), p, "; ".join(w))])
        if conn_id == cluster.sql_conn_id:
            skew = tso_to_dt(tso).timestamp() - (before + after) / 2
    if skew is not None:
        rows.append(skew_row(skew))
    if cluster.drill is not None:
        rows += _guarded("drill gc", lambda: _drill_gc_rows(cluster))
    return rows


def _drill_gc_rows(cluster: ClusterConfig) -> list[CheckRow]:
    """The source's tidb_gc_life_time against the drill's comparison read (the drill's own plan, at a recent T)."""
    from ...hooks.sql import gc_state, table_sizes
    from ...planning.drill_gc import read_cost
    from .drill import COMPARISON_READS

    assert cluster.drill is not None and cluster.sql_conn_id
    conn_id = cluster.sql_conn_id
    cost = read_cost(table_sizes(conn_id, list(cluster.drill.tables)), cluster.drill.source_scan_rate,
                     cluster.drill.gc_headroom, passes=COMPARISON_READS)
    life = gc_state(conn_id).life_time
    return [drill_gc_row(life.total_seconds(), cost.needed.total_seconds(), cost.describe())]


# --- Airflow ----------------------------------------------------------------------------------------------------

def notifier_rows(cluster: ClusterConfig) -> list[CheckRow]:
    """Each notifier builds, and every connection its arguments name (`*conn_id`) exists: an alert that cannot
    be sent is found here, not on the day it is needed."""
    from airflow.sdk import BaseHook

    from ...runtime.notifiers import NotifierError, build_notifiers

    if not cluster.notifiers:
        return []
    try:
        build_notifiers(cluster)
    except NotifierError as exc:
        return [CheckRow("notifiers", FAILED, _short(exc), "fix the notifiers: entry in clusters.yaml")]
    rows = []
    for spec in cluster.notifiers:
        for key, conn_id in sorted(spec.args.items()):
            if not key.endswith("conn_id") or not isinstance(conn_id, str):
                continue
            try:
                BaseHook.get_connection(conn_id)
            except Exception as exc:  # the secrets backends' "not defined" and their own errors alike
                rows.append(CheckRow(f"notifier connection {conn_id}", FAILED, _short(exc),
                                     f"create the Airflow connection {conn_id!r} ({spec.class_path})"))
            else:
                rows.append(CheckRow(f"notifier connection {conn_id}", OK, f"defined ({spec.class_path})"))
    return rows or [CheckRow("notifiers", OK, f"{len(cluster.notifiers)} built")]


def paused_rows(cluster: ClusterConfig) -> list[CheckRow]:
    """The cluster's DAGs as Airflow's database has them: a paused one never runs on its schedule (WARNING). For the
    command line, which runs beside Airflow's configuration; a task in Airflow 3 has no database to ask."""
    ids = [cluster.dag_id(kind) for kind in [*dag_kinds(cluster), "check"]]
    try:
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session

        with create_session() as session:
            paused = {d.dag_id: bool(d.is_paused) for d in session.query(DagModel).filter(DagModel.dag_id.in_(ids))}
    except Exception as exc:  # no database configured here, or it does not answer
        return [CheckRow("dags unpaused", WARNING, f"not checked: Airflow's database did not answer: {_short(exc)}",
                         "run check where Airflow's configuration reaches its database, or look in the UI")]
    unknown = [d for d in ids if d not in paused]
    stopped = [d for d in ids if paused.get(d)]
    if not unknown and not stopped:
        return [CheckRow("dags unpaused", OK, f"all {len(ids)} DAGs of the cluster are unpaused")]
    parts = ([f"paused: {', '.join(stopped)}"] if stopped else []) + (
        [f"not in Airflow's database (not parsed yet): {', '.join(unknown)}"] if unknown else [])
    return [CheckRow("dags unpaused", WARNING, "; ".join(parts),
                     "unpause them (a paused DAG never runs on its schedule); a DAG not parsed: check the "
                     "dag-processor's import errors")]


# --- where the answer shows (the DAG's task) -------------------------------------------------------------------

CHECK_KEY = "tidb_pitr_check"  # XCom: {"rows": [...], "at": epoch seconds}; the next run compares its FAILED rows


def publish_check(cluster: ClusterConfig, context: Any, rows: list[CheckRow]) -> list[str]:
    """The rows as the run's note, an XCom, the `check_failed` gauge; the notifiers for each newly FAILED row.
    Returns the names of the FAILED rows."""
    from ...runtime.metrics import CHECK_FAILED, gauge
    from ...runtime.notes import publish_note
    from ...runtime.notifiers import notify

    ti = context["ti"]
    label = f"{cluster.namespace}/{cluster.name}"
    for row in rows:
        log.log(logging.WARNING if row.status != OK else logging.INFO, "%s", line(row))
    # map_indexes=-1: the newest prior run's one value; without it Airflow 3 answers every prior run's, a list.
    previous = ti.xcom_pull(task_ids=ti.task_id, key=CHECK_KEY, include_prior_dates=True, map_indexes=-1) or {}
    failed_before = [r.get("name") for r in previous.get("rows") or [] if r.get("status") == FAILED]
    ti.xcom_push(key=CHECK_KEY, value={"rows": [r.to_dict() for r in rows], "at": time.time()})
    publish_note(context, check_note(label, rows))
    failed = [r.name for r in rows if r.status == FAILED]
    gauge(CHECK_FAILED, len(failed), cluster)
    fresh = new_failures(rows, failed_before)
    if fresh:
        summary = f"check of {label}: newly FAILED: " + "; ".join(line(r) for r in fresh)
        failures = notify(cluster, context, "check_failed", summary, failed=[r.to_dict() for r in fresh])
        if failures:
            log.error("notifiers failed: %s", "; ".join(failures))
    return failed

