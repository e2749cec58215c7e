"""Realistic history: N past days of writes, a snapshot every two days, and a log backup covering them.

Everything is real: the rows have MVCC versions at past TSOs, the snapshots and the log are objects in
storage written in BR's layout, and the CRs carry the status TiDB Operator would have written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import clock
from .data.tso import dt_to_tso, tso_to_dt
from .data.workload import seed_history
from .operator.common import backup_path, go_duration, humanize_bytes
from .options import SEED_BUCKET, SEED_CONTAINER, SEED_REGION
from .storage import br_layout
from .storage.locations import open_location

if TYPE_CHECKING:  # typing only: app imports this module, not the other way round
    from .app import Sandbox
    from .data.mvcc import ClusterData
    from .operator.clusters import SimCluster

# Labels the tidb_pitr DAGs put on the CRs they own (with `tidb-pitr-airflow/cluster` and `.../flow` below);
# seeded history looks as if they had made it, with the configuration's cluster name equal to the cluster's.
MANAGED_BY = {"app.kubernetes.io/managed-by": "tidb-pitr-airflow"}
SNAPSHOT_EVERY = timedelta(days=2)
OPS_PER_HOUR = 30.0
# A real TiKV flushes every 3 min (`log-backup.max-flush-interval`); seeded history flushes hourly, so every hour
# folder holds files as the product's log-volume estimate expects. That is most of a seed's cost: each flush is a
# meta and one data file per store, 12 days about 1,160 PUTs to moto (measured: ~2.7 ms of moto's CPU and ~1.8 ms
# of boto3's in this process each), about 90% of a 12-day seed's 4-5 s; the rest (history, snapshots) ~0.5 s.
LOG_FLUSH_EVERY = timedelta(hours=1)
LOG_START_AFTER = timedelta(minutes=10)  # the log task starts this long after the history does
# Storage kinds whose seeds are cloned from a template: S3 (moto copies inside its own process) and local volumes
# (files). Azurite has no such path: a copy through its API costs what seeding does, so azblob seeds afresh.
CLONABLE_STORAGE = ("s3", "local")
STORAGE_KINDS = ("s3", "azblob", "local")


def storage_spec(sandbox: Sandbox, kind: str, prefix: str) -> dict[str, Any]:
    """The storage part of a CR spec for the sandbox's seed bucket, container or volume."""
    if kind == "s3":
        return {"s3": {"provider": "aws", "secretName": "s3-secret", "region": SEED_REGION,
                       "bucket": SEED_BUCKET, "prefix": prefix}}
    if kind == "azblob":
        return {"azblob": {"secretName": "azblob-secret", "container": SEED_CONTAINER, "prefix": prefix}}
    if kind == "local":
        return {"local": {"prefix": prefix,
                          "volume": {"name": "backup-volume", "persistentVolumeClaim": {"claimName": "backup-pvc"}},
                          "volumeMount": {"name": "backup-volume", "mountPath": "/backup"}}}
    raise ValueError(f"storage must be one of s3, azblob, local; got {kind!r}")


def secret_for(sandbox: Sandbox, kind: str) -> dict[str, str] | None:
    return {"s3": sandbox.s3_secret(), "azblob": sandbox.azure_secret()}.get(kind)


def _rfc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(group: str, phases: list[str], at: datetime) -> list[dict[str, Any]]:
    conds = []
    for phase in phases:
        cond: dict[str, Any] = {"type": phase, "status": "True", "lastTransitionTime": _rfc(at)}
        if group == "br.pingcap.com":
            cond.update(reason=phase, message="")
        conds.append(cond)
    return conds


def snapshot_times(start: datetime, end: datetime) -> list[datetime]:
    """Every two days at 00:00 UTC, from the first midnight at least an hour after `start`. A history too short
    for any such midnight (a day's, begun in the last hour before midnight UTC) still gets one snapshot, an hour
    after `start`: without it, every 1-day seed made between about 22:50 and 23:50 UTC had no window at all."""
    first = (start + timedelta(hours=1)).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    last = end - timedelta(minutes=5)
    times = []
    at = first
    while at < last:
        times.append(at)
        at += SNAPSHOT_EVERY
    if not times and start + timedelta(hours=1) < last:
        times.append(start + timedelta(hours=1))
    return times


@dataclass(frozen=True)
class SeededSnapshot:
    """One snapshot backup a seed wrote: when, at which TSO, and its size (what its CR's status reports)."""

    stamp: str  # <YYYYmmddHHMMSS> of `at`: the CR is <cluster>-snapshot-<stamp>, its prefix <root>/snapshot-<stamp>
    at: datetime
    commit_ts: int
    size: int


@dataclass(frozen=True)
class SeededHistory:
    """What a seed wrote to storage for a cluster's history, besides its rows: the CRs are made from it."""

    log_start: datetime
    start_ts: int
    checkpoint: int  # the log task's global checkpoint: its last flush
    snapshots: tuple[SeededSnapshot, ...]


async def write_history(sandbox: Sandbox, data: ClusterData, *, task_name: str, root: str, storage: str,
                        start: datetime, now: datetime) -> SeededHistory:
    """Rows from `start` to `now` into `data`; a log backup flushed hourly and a snapshot every two days, into
    storage under `root`. No CR and no live task: `register_history` adds those for a cluster."""
    seed_history(data, sandbox.alloc, start, now, ops_per_hour=OPS_PER_HOUR, rng=random.Random(sandbox.rng.random()))
    secret = secret_for(sandbox, storage)

    # The log backup task started before the first snapshot and has flushed hourly ever since.
    log_start = start + LOG_START_AFTER
    log_location = open_location(storage_spec(sandbox, storage, f"{root}/log-backup"), secret, sandbox.endpoints)
    start_ts = dt_to_tso(log_start)
    await clock.to_thread(br_layout.start_log, log_location, start_ts=start_ts,
                          cluster_id=data.cluster_id, task_name=task_name)
    checkpoint = await flush_hourly(sandbox, data, log_location, log_start, start_ts, now)

    snapshots = []
    for at in snapshot_times(log_start, now):
        stamp = at.strftime("%Y%m%d%H%M%S")
        commit_ts = dt_to_tso(at)
        location = open_location(storage_spec(sandbox, storage, f"{root}/snapshot-{stamp}"), secret,
                                 sandbox.endpoints)
        info = await clock.to_thread(br_layout.write_snapshot, location, data.rows_at(commit_ts),
                                     commit_ts=commit_ts, cluster_id=data.cluster_id, stores=sandbox.config.stores)
        snapshots.append(SeededSnapshot(stamp, at, commit_ts, info.size))
    return SeededHistory(log_start, start_ts, checkpoint, tuple(snapshots))


async def flush_hourly(sandbox: Sandbox, data: ClusterData, location: Any, log_start: datetime, after_ts: int,
                        now: datetime) -> int:
    """The flushes a task started at `log_start` made after `after_ts`: one on each whole hour since
    `log_start`, and a last one at `now` (a running task flushes every few seconds). Returns the checkpoint."""
    flushes = []
    previous = after_ts
    at = log_start + LOG_FLUSH_EVERY * (1 + max(0, (tso_to_dt(after_ts) - log_start) // LOG_FLUSH_EVERY))
    while at < now:
        flush_ts = dt_to_tso(at)
        if flush_ts > previous:
            flushes.append((data.changes_between(previous, flush_ts), flush_ts))
            previous = flush_ts
        at += LOG_FLUSH_EVERY
    flush_ts = max(dt_to_tso(now), previous + 1)
    flushes.append((data.changes_between(previous, flush_ts), flush_ts))
    await clock.to_thread(br_layout.flush_log_history, location, flushes, stores=sandbox.config.stores)
    return flush_ts


def register_history(sandbox: Sandbox, cluster: SimCluster, history: SeededHistory, *, storage: str, root: str,
                     now: datetime) -> dict[str, Any]:
    """The CRs TiDB Operator would hold for `history` of `cluster` (its storage already written under `root`),
    and its log task, live from the seeded checkpoint on."""
    group = "br.pingcap.com" if cluster.resource.startswith("clusters.core") else "pingcap.com"
    br = {"cluster": cluster.name, "clusterNamespace": cluster.namespace}
    log_spec = storage_spec(sandbox, storage, f"{root}/log-backup")
    log_start, start_ts, checkpoint = history.log_start, history.start_ts, history.checkpoint

    # CRs without awaiting in between, so the operator sees each one complete at once.
    backups = sandbox.store.type_for(group, "backups")
    labels = {**MANAGED_BY, "app.kubernetes.io/instance": cluster.name, "tidb-pitr-airflow/cluster": cluster.name}
    names = []
    for snapshot in history.snapshots:
        at, size = snapshot.at, snapshot.size
        name = f"{cluster.name}-snapshot-{snapshot.stamp}"  # the DAGs' names: <cluster>-snapshot-<stamp> ...
        spec = storage_spec(sandbox, storage, f"{root}/snapshot-{snapshot.stamp}")  # ... at <root>/snapshot-<stamp>
        body = {"metadata": {"name": name, "labels": {**labels, "app.kubernetes.io/component": "snapshot",
                                                      "tidb-pitr-airflow/flow": "snapshot"}},
                "spec": {"backupType": "full", "backupMode": "snapshot", "cleanPolicy": "Delete", "br": br, **spec}}
        sandbox.store.create(backups, cluster.namespace, body, creation_timestamp=_rfc(at))
        taken = timedelta(minutes=20)
        status = {
            "phase": "Complete", "backupPath": backup_path(spec), "commitTs": str(snapshot.commit_ts),
            "conditions": _conditions(group, ["Scheduled", "Prepare", "Running", "Complete"], at),
            "timeStarted": _rfc(at), "timeCompleted": _rfc(at + taken),
            "timeTaken": go_duration(taken.total_seconds()), "backupSize": size,
            "backupSizeReadable": humanize_bytes(size),
        }
        _write_status(sandbox, backups, cluster.namespace, name, status)
        names.append(name)
    log_name = f"{cluster.name}-log-backup"
    body = {"metadata": {"name": log_name, "labels": {**labels, "app.kubernetes.io/component": "log-backup",
                                                      "tidb-pitr-airflow/flow": "log-guard"}},
            "spec": {"backupMode": "log", "logSubcommand": "log-start", "br": br, **log_spec}}
    sandbox.store.create(backups, cluster.namespace, body, creation_timestamp=_rfc(log_start))
    log_status = {
        "phase": "Running", "backupPath": backup_path(log_spec), "commitTs": str(start_ts),
        "logCheckpointTs": str(checkpoint), "timeStarted": _rfc(log_start),
        "conditions": _conditions(group, ["Scheduled", "Prepare", "Running"], log_start),
        "logSubCommandStatuses": {"log-start": {
            "command": "log-start", "phase": "Complete", "timeStarted": _rfc(log_start),
            "timeCompleted": _rfc(log_start + timedelta(seconds=20)),
            "conditions": [{**c, "command": "log-start"}
                           for c in _conditions(group, ["Scheduled", "Prepare", "Running", "Complete"], log_start)]}},
    }
    if group != "br.pingcap.com":
        log_status["timeSynced"] = _rfc(now)
    _write_status(sandbox, backups, cluster.namespace, log_name, log_status)
    # The task lives on in TiKV and PD: it keeps flushing from the seeded checkpoint on.
    log_location = open_location(log_spec, secret_for(sandbox, storage), sandbox.endpoints)
    sandbox.kernel.adopt(cluster, log_name, f"{cluster.namespace}/{log_name}", log_location, start_ts, checkpoint)
    # ... and the operator has been tracking it since its log-start was scheduled.
    if getattr(sandbox, "operator", None) is not None:
        sandbox.operator.logs.tracker.start(backups, cluster.namespace, log_name)
    return {"snapshots": names, "logBackup": log_name, "logStartTs": start_ts, "checkpoint": checkpoint}


async def seed_history_for(sandbox: Sandbox, cluster: SimCluster, *, days: float, storage: str,
                           root: str | None = None, template: bool = True) -> dict[str, Any]:
    """`days` of history for a new, empty `cluster`, its storage under `root` (default: its name). With
    `template` (the default) and s3 or local storage, a clone of the session's template for this shape
    (seed_templates.py); otherwise, or for azblob, seeded afresh."""
    root = root or cluster.name
    if template and storage in CLONABLE_STORAGE:
        return await sandbox.seed_templates.clone_into(sandbox, cluster, days=days, storage=storage, root=root)
    now = clock.now()
    history = await write_history(sandbox, cluster.data, task_name=f"{cluster.name}-log-backup", root=root,
                                  storage=storage, start=now - timedelta(days=days), now=now)
    return register_history(sandbox, cluster, history, storage=storage, root=root, now=now)


def _write_status(sandbox: Sandbox, rt: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    obj = sandbox.store.get(rt, namespace, name)
    obj["status"] = status
    sandbox.store.update(rt, namespace, name, obj, subresource="status" if rt.status_subresource else None)
