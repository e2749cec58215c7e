"""Realistic history: N past days of writes, a snapshot every two days, and a log backup covering them.

Everything is real: the rows have MVCC versions at past TSOs, the snapshots and the log are objects in
storage written in BR's layout, and the CRs carry the status TiDB Operator would have written.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import clock
from .data.tso import dt_to_tso
from .data.workload import seed_history
from .operator.common import backup_path, go_duration, humanize_bytes
from .options import SEED_BUCKET, SEED_CONTAINER, SEED_REGION
from .storage import br_layout
from .storage.locations import open_location

if TYPE_CHECKING:  # typing only: app imports this module, not the other way round
    from .app import Sandbox
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


def _secret_for(sandbox: Sandbox, kind: str) -> dict[str, str] | None:
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


async def seed_history_for(sandbox: Sandbox, cluster: SimCluster, *, days: float, storage: str,
                           root: str | None = None) -> dict[str, Any]:
    now = clock.now()
    start = now - timedelta(days=days)
    root = root or cluster.name
    rng = random.Random(sandbox.rng.random())
    seed_history(cluster.data, sandbox.alloc, start, now, ops_per_hour=OPS_PER_HOUR, rng=rng)
    group = "br.pingcap.com" if cluster.resource.startswith("clusters.core") else "pingcap.com"
    secret = _secret_for(sandbox, storage)
    br = {"cluster": cluster.name, "clusterNamespace": cluster.namespace}

    # The log backup task started before the first snapshot and has flushed hourly ever since.
    log_start = start + timedelta(minutes=10)
    log_spec = storage_spec(sandbox, storage, f"{root}/log-backup")
    log_location = open_location(log_spec, secret, sandbox.endpoints)
    start_ts = dt_to_tso(log_start)
    await clock.to_thread(br_layout.start_log, log_location, start_ts=start_ts,
                            cluster_id=cluster.data.cluster_id, task_name=f"{cluster.name}-log-backup")
    flushes = []
    previous, at = start_ts, log_start + LOG_FLUSH_EVERY
    while at < now:
        flush_ts = dt_to_tso(at)
        flushes.append((cluster.data.changes_between(previous, flush_ts), flush_ts))
        previous, at = flush_ts, at + LOG_FLUSH_EVERY
    # A running task flushes every few seconds: its last flush, and the checkpoint, are about now.
    flush_ts = max(dt_to_tso(now), previous + 1)
    flushes.append((cluster.data.changes_between(previous, flush_ts), flush_ts))
    previous = flush_ts
    await clock.to_thread(br_layout.flush_log_history, log_location, flushes, stores=sandbox.config.stores)
    checkpoint = previous

    snapshots = []
    for at in snapshot_times(log_start, now):
        stamp = at.strftime("%Y%m%d%H%M%S")
        name = f"{cluster.name}-snapshot-{stamp}"  # the DAGs' names: <cluster>-snapshot-<stamp> ...
        commit_ts = dt_to_tso(at)
        spec = storage_spec(sandbox, storage, f"{root}/snapshot-{stamp}")  # ... at <root>/snapshot-<stamp>
        location = open_location(spec, secret, sandbox.endpoints)
        info = await clock.to_thread(br_layout.write_snapshot, location, cluster.data.rows_at(commit_ts),
                                       commit_ts=commit_ts, cluster_id=cluster.data.cluster_id,
                                       stores=sandbox.config.stores)
        snapshots.append((name, at, commit_ts, spec, info.size))

    # CRs last and without awaiting in between, so the operator sees each one complete at once.
    backups = sandbox.store.type_for(group, "backups")
    labels = {**MANAGED_BY, "app.kubernetes.io/instance": cluster.name, "tidb-pitr-airflow/cluster": cluster.name}
    for name, at, commit_ts, spec, size in snapshots:
        body = {"metadata": {"name": name, "labels": {**labels, "app.kubernetes.io/component": "snapshot",
                                                      "tidb-pitr-airflow/flow": "snapshot"}},
                "spec": {"backupType": "full", "backupMode": "snapshot", "cleanPolicy": "Delete", "br": br, **spec}}
        sandbox.store.create(backups, cluster.namespace, body, creation_timestamp=_rfc(at))
        taken = timedelta(minutes=20)
        status = {
            "phase": "Complete", "backupPath": backup_path(spec), "commitTs": str(commit_ts),
            "conditions": _conditions(group, ["Scheduled", "Prepare", "Running", "Complete"], at),
            "timeStarted": _rfc(at), "timeCompleted": _rfc(at + taken),
            "timeTaken": go_duration(taken.total_seconds()), "backupSize": size,
            "backupSizeReadable": humanize_bytes(size),
        }
        _write_status(sandbox, backups, cluster.namespace, name, status)
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
    sandbox.kernel.adopt(cluster, log_name, f"{cluster.namespace}/{log_name}", log_location, start_ts, checkpoint)
    # ... and the operator has been tracking it since its log-start was scheduled.
    if getattr(sandbox, "operator", None) is not None:
        sandbox.operator.logs.tracker.start(backups, cluster.namespace, log_name)
    return {"snapshots": [s[0] for s in snapshots], "logBackup": log_name, "logStartTs": start_ts,
            "checkpoint": checkpoint}


def _write_status(sandbox: Sandbox, rt: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    obj = sandbox.store.get(rt, namespace, name)
    obj["status"] = status
    sandbox.store.update(rt, namespace, name, obj, subresource="status" if rt.status_subresource else None)
