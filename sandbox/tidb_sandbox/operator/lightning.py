"""TiDB Lightning restores (v1 `Restore` with `to:` and no `br`): Scheduled -> Running -> Complete | Failed.

Follows backup-manager's `import` (`cmd/backup-manager/app/import/manager.go`, `import.go`, release-1.6): the
Job downloads `spec.s3.path` (`GetBackupDataPath`; the `.tgz` a Dumpling Backup's `backupPath` names), unpacks
it, reads the commit TS from `metadata`, runs Lightning (`--backend=tidb`) against `to:`, and completes with
`commitTs`, `timeStarted`, `timeCompleted`. Each step fails with its own reason and message.
"""

from __future__ import annotations

import posixpath
from functools import partial
from itertools import count
from typing import Any

from .. import clock
from ..data.mvcc import Change
from ..data.schema import parse_key
from ..k8s.crd import ResourceType
from ..storage import dumpling_layout
from .clusters import SimCluster
from .common import job_reads_spec, now, sleep
from .context import Context, StorageFailure, storage_block
from .export import LOGICAL_STORAGE, Access, connect_error, resolve_host
from .volumes import quantity_bytes, write_error

ROOT = "/backup"  # constants.BackupRootPath: where the Job puts what it downloads


def insert_in_order(target: SimCluster, rows: dict[str, Any], ts: int) -> str | None:
    """Lightning v8.5 with `--backend=tidb` (the operator's image, `loadTidbClusterData` in `import.go`): no
    empty-table precheck (`lightning/pkg/importer/check_info.go` `checkTableEmpty` returns nil for the tidb
    backend), `conflict.strategy` unset means error on duplicate (`pkg/lightning/config` `Conflict.adjust`), so
    the rows are plain INSERTs. Databases and tables that exist are kept as they are (inferred: the schema
    importer creates only missing ones); rows go in in key order, and the first whose key is taken fails the task
    with TiDB's 1062, leaving every row written before it. Returns Lightning's error, or None when all went in."""
    current = target.data.rows_now()
    written = []
    problem = None
    for key, value in sorted(rows.items()):
        parts = parse_key(key)
        if key in current:
            if parts is None or not parts.is_row:
                continue  # the database or table is there already
            # Lightning wraps the statement's error in ErrRestoreTable ("restore table %s failed"), inferred.
            problem = (f"[Lightning:Restore:ErrRestoreTable]restore table `{parts.database}`.`{parts.table}` "
                       f"failed: Error 1062 (23000): Duplicate entry '{value.get('id')}' for key "
                       f"'{parts.table}.PRIMARY'")
            break
        written.append(Change(ts, key, value))
    target.data.apply(written)
    return problem


def _split_path(kind: str, path: str) -> tuple[str, str, str]:
    """`s3://bucket/dir/backup-x.tgz` (or without the scheme) -> (bucket, dir, file)."""
    rest = path.split("://", 1)[1] if "://" in path else path
    bucket, _, key = rest.partition("/")
    return bucket, posixpath.dirname(key), posixpath.basename(key)


async def run_import(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    condition = partial(ctx.set_condition, rt, namespace, name)
    spec = await job_reads_spec(ctx, rt, namespace, name)
    if spec is None:
        return
    block = storage_block(spec)
    kind = next(iter(block)) if block else "unknown"
    if kind not in LOGICAL_STORAGE:  # makeImportJob: RetryFailed upstream, the Job is never made
        condition("RetryFailed", "UnsupportedStorageType", f"restore {namespace}/{name}, unsupported storage "
                                                           f"type {kind}")
        return
    conf = block[kind]
    raw = conf.get("path") or ""
    backup_path = raw if raw.startswith(f"{kind}://") else f"{kind}://{raw}"
    started = clock.monotonic()
    time_started = now()
    condition("Running")
    bucket, prefix, file = _split_path(kind, backup_path)
    local = posixpath.join(ROOT, backup_path.split("://", 1)[1])
    try:
        location = ctx.open_storage(namespace, {kind: {**conf, "bucket": bucket, "prefix": prefix}})
        data = await ctx.io(location.get, file)
    except StorageFailure as err:
        condition("Failed", "DownloadBackupDataFailed", f"download backup {backup_path} data failed, err: "
                                                        f"{err.message}")
        return
    except Exception as err:
        message = getattr(err, "message", err)
        condition("Failed", "DownloadBackupDataFailed",
                  f"download backup {backup_path} data failed, err: cluster {namespace}/{name}, execute rclone "
                  f"copyto command for download backup data {backup_path} failed, errMsg: {message}, "
                  "err: exit status 3")
        return
    room = quantity_bytes(str(spec.get("storageSize") or ""))
    if room is not None and len(data) > room:  # rclone copyto onto the PVC
        condition("Failed", "DownloadBackupDataFailed",
                  f"download backup {backup_path} data failed, err: cluster {namespace}/{name}, execute rclone "
                  f"copyto command for download backup data {backup_path} failed, errMsg: {write_error(local)}, "
                  "err: exit status 1")
        return
    folder = file.removesuffix(dumpling_layout.ARCHIVE_EXTENSION)
    try:
        files = dumpling_layout.unarchive(data, folder)
    except ValueError as err:
        condition("Failed", "UnarchiveBackupDataFailed", f"unarchive backup {local} data failed, err: {err}")
        return
    if room is not None and len(data) + sum(len(content) for content in files.values()) > room:
        # The archive stays on the PVC while it is unpacked beside it.
        spilled = posixpath.join(posixpath.dirname(local), sorted(files)[-1])
        condition("Failed", "UnarchiveBackupDataFailed", f"unarchive backup {local} data failed, err: "
                                                         f"{write_error(spilled)}")
        return
    unpacked = posixpath.join(posixpath.dirname(local), folder)
    if dumpling_layout.METADATA not in files:
        condition("Failed", "GetCommitTsFailed", f"file {unpacked}/metadata does not exist or is not regular file")
        return
    try:
        commit_ts = dumpling_layout.commit_ts_from_metadata(files[dumpling_layout.METADATA].decode())
    except ValueError as err:
        condition("Failed", "GetCommitTsFailed", str(err))
        return
    access = Access.of(ctx, namespace, spec.get("to") or {})
    target = resolve_host(ctx, namespace, access.host)
    problem = connect_error(ctx, access, target)
    rows: dict[str, Any] = {}
    if problem is None:
        try:
            rows = dumpling_layout.load_dump(files, count(1000, 2))
        except (ValueError, KeyError) as err:
            problem = f"[Lightning:Restore:ErrRestoreTable]restore table failed: {err}"
    if problem is None and target is not None:
        # No empty-table precheck with the tidb backend: rows go in, in order, until the first duplicate key.
        problem = insert_in_order(target, rows, ctx.alloc.next())
    if problem is not None or target is None:
        # Upstream prints the args as they are, the password too (import.go `loadTidbClusterData`).
        args = (f"[--status-addr=0.0.0.0:8289 --backend=tidb --server-mode=false --log-file=- "
                f"--tidb-user={access.user} --tidb-password={access.password} --tidb-host={access.host} --d={unpacked} "
                f"--tidb-port={access.port}]")
        condition("Failed", "LoaderBackupDataFailed",
                  f"loader backup {local} data failed, err: cluster {namespace}/{name}, execute loader command "
                  f"{args} failed, output: Error: {problem}\n, err: exit status 1")
        return
    await sleep(ctx.config.restore_duration - (clock.monotonic() - started))
    condition("Complete", timeStarted=time_started, timeCompleted=now(), commitTs=commit_ts)
