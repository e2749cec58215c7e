"""What a BR restore does to and demands of its target cluster beyond the data: the refusal of a target that runs
its own log backup, the partial state a failed restore leaves and BR's checkpoint resume over it.

Upstream (pingcap/tidb, `br/`):
- `pkg/task/restore.go` `RunRestore` calls the log-task check before anything else and annotates its error with
  "failed to check task exists". Before v9 the check is `checkTaskExists` (`pkg/task/stream.go`): any log task on
  the target fails every restore. From v9 it is `checkConflictingLogBackup` / `checkTaskCompat`: a PITR
  (`restore point`) proceeds and records its table IDs for the task; an unfiltered (whole-cluster) snapshot
  restore is refused with the compat message.
- `pkg/task/restore.go` `runSnapshotRestore`: with `UseCheckpoint` (default true) an existing checkpoint of the same
  task (same target, same backup and restore point) makes `checkpointFirstRun` false, and
  `snap_client.NeedCheckFreshCluster(explicitFilter, firstRun)` then skips `CheckTargetClusterFresh`: the rerun
  writes over what the failed run left. Tables are created and their data ingested progressively, so a failure
  part-way leaves the tables (and rows) written so far.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..data.mvcc import Change
from ..data.schema import parse_key
from ..sql.tidb import DEFAULT_RELEASE
from .clusters import TIDBCLUSTER, SimCluster
from .context import Context

COMPAT_FROM = (9, 0)  # the first BR with checkConflictingLogBackup / checkTaskCompat
# berrors.ErrKVIngestFailed (`br/pkg/errors/errors.go`): the failure a restore hits part-way when TiKV refuses
# an ingest; what fault `fail_restore_after` fails the restore with.
INGEST_FAILED = "[BR:KV:ErrKVIngestFailed]ingest sst failed"


def br_release(ctx: Context, spec: dict[str, Any], target: SimCluster) -> str:
    """The BR the restore Job runs: the tag of `spec.toolImage`, else the target cluster's `spec.version`
    (v1 `makeRestoreJob` builds the BR image from the TidbCluster's version when no tag is given)."""
    image = str(spec.get("toolImage") or "")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    if tag:
        return tag
    if target.resource == TIDBCLUSTER:
        obj = ctx.store.find(ctx.rt("pingcap.com", "tidbclusters"), target.namespace, target.name) or {}
        version = (obj.get("spec") or {}).get("version")
        if version:
            return str(version)
    return DEFAULT_RELEASE


def release_tuple(release: str) -> tuple[int, int]:
    """"v8.5.2" -> (8, 5); anything unreadable counts as the default release."""
    found = re.match(r"v?(\d+)\.(\d+)", release) or re.match(r"v?(\d+)\.(\d+)", DEFAULT_RELEASE)
    assert found is not None
    return int(found.group(1)), int(found.group(2))


def log_task_conflict(ctx: Context, target: SimCluster, spec: dict[str, Any]) -> str | None:
    """BR's message when the target runs a log backup task of its own, or None when BR goes on."""
    task = next((t for t in ctx.kernel.tasks() if t.cluster == (target.namespace, target.name)), None)
    if task is None:
        return None
    if release_tuple(br_release(ctx, spec, target)) < COMPAT_FROM:
        return (f"failed to check task exists: log backup task is running: {task.name}, please stop the task "
                "before restore, and after PITR operation finished, create log-backup task again and create a "
                "full backup on this cluster")
    if spec.get("restoreMode") == "pitr":
        return None  # v9: a PITR records its table IDs for the running task and proceeds
    return ("failed to check task exists: you want to restore a whole cluster, you may use `-f` or "
            "`restore table|database` to specify the tables to restore to continue: log backup task is running: "
            f"{task.name}, and isn't compatible with your restore.You may check the extra information to get rid "
            "of this. If that doesn't work, you may stop the task before restore, and after the restore operation "
            "finished, create log-backup task again and create a full backup on this cluster.")


def checkpoint_key(spec: dict[str, Any]) -> str:
    """What names BR's checkpoint task: where the backup is read from and the restore point."""
    keep = ("restoreMode", "pitrRestoredTs", "s3", "gcs", "azblob", "local", "pitrFullBackupStorageProvider",
            "logRestoreStartTs")
    return json.dumps({k: spec.get(k) for k in keep}, sort_keys=True, default=str)


def first_tables(rows: dict[str, Any], fraction: float) -> dict[str, Any]:
    """The part of `rows` a restore has written when it fails after `fraction` of its tables (in key order): those
    tables' definitions and rows, and their databases' definitions."""
    tables = sorted({(p.database, p.table) for k in rows if (p := parse_key(k)) is not None and p.table})
    chosen = set(tables[:math.floor(len(tables) * min(max(fraction, 0.0), 1.0))])
    kept: dict[str, Any] = {}
    for key, value in rows.items():
        parts = parse_key(key)
        if parts is None:
            continue
        if (parts.database, parts.table) in chosen or (parts.table is None
                                                       and any(db == parts.database for db, _ in chosen)):
            kept[key] = value
    return kept


def written_tables(rows: dict[str, Any]) -> int:
    return len({(p.database, p.table) for k in rows if (p := parse_key(k)) is not None and p.table})


def write_missing(target: SimCluster, rows: dict[str, Any], ts: int) -> None:
    """A resumed restore: what the failed run wrote stays; the rest goes in at `ts`."""
    current = target.data.rows_now()
    target.data.apply(Change(ts, key, row) for key, row in sorted(rows.items()) if current.get(key) != row)
