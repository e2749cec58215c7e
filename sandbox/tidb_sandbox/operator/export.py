"""Dumpling backups (v1 `Backup` with `from:` and no `br`): Scheduled -> Prepare -> Running -> Complete | Failed.

The controller side follows `validateBackup` / `makeExportJob` (`pkg/backup/backup/backup_manager.go`,
`ValidateBackup` and `GenerateTidbPasswordEnv` in `pkg/backup/util/util.go`, release-1.6); the Job follows
backup-manager's `export` (`cmd/backup-manager/app/export/manager.go` and `export.go`): connect to TiDB
(retried every 5 s for 30 min, then `ConnectTidbFailed` with the poll's timeout message), Prepare, Running with
`backupPath` set, dump, read the commit TS from `metadata`, archive, upload through a `.tmp` object, Complete
with `backupSize`, `backupSizeReadable`, `commitTs`, `timeStarted`, `timeCompleted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import clock
from ..data.tso import tso_to_dt
from ..k8s.crd import ResourceType
from ..sql.credentials import PASSWORD_KEY, ROOT_USER, read_password
from ..storage import dumpling_layout
from .clusters import TIDBCLUSTER, SimCluster
from .common import V2_GROUP, humanize_bytes, job_reads_spec, now, sleep
from .context import Context, StorageFailure, storage_block
from .secrets import storage_secret_problem
from .snapshot import filter_rows
from .volumes import quantity_bytes, write_error

DEFAULT_PORT = 4000
ROOT = "/backup"  # constants.BackupRootPath: the Job's PVC
WAIT_TIMEOUT = "timed out waiting for the condition"  # k8s.io/apimachinery wait.ErrWaitTimeout
# defaultTableFilterOptions (cmd/backup-manager/app/util/util.go): Dumpling skips the system schemas.
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "metrics_schema", "inspection_schema")
LOGICAL_STORAGE = ("s3", "gcs")  # GetBackupPrefixName / GetBackupDataPath: the only kinds export/import take


def is_logical(spec: dict[str, Any]) -> bool:
    return not spec.get("br")


def validate_logical(rt: ResourceType, obj: dict[str, Any], access_field: str) -> str | None:
    """`ValidateBackup` / `ValidateRestore` without `br`: the access config and `storageSize`."""
    spec = obj.get("spec") or {}
    where = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
    if rt.group == V2_GROUP:  # v2 has no Dumpling or Lightning path
        return f".spec.br is required in spec of {where}"
    access = spec.get(access_field) or {}
    if not access.get("host"):
        return f"missing cluster config in spec of {where}"
    if not access.get("secretName"):
        return f"missing tidbSecretName config in spec of {where}"
    if not spec.get("storageSize"):
        return f"missing StorageSize config in spec of {where}"
    return None


def tidb_secret_problem(ctx: Context, namespace: str, name: str, secret_name: str) -> tuple[str, str] | None:
    """`GenerateTidbPasswordEnv` (its message says "backup" for restores too)."""
    data = ctx.secret_data(namespace, secret_name)
    if data is None:
        return ("GetTidbSecretFailed", f'backup {namespace}/{name} get tidb secret {secret_name} failed, '
                                       f'err: secret "{secret_name}" not found')
    if PASSWORD_KEY not in data:
        return ("KeyNotExist", f"backup {namespace}/{name}, tidb secret {secret_name} missing password key "
                               f"{PASSWORD_KEY}")
    return None


def admit_logical(ctx: Context, rt: ResourceType, obj: dict[str, Any], access_field: str) -> bool:
    """The controller before the Job: a missing TiDB or storage Secret is `RetryFailed`, requeued."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    condition = partial(ctx.set_condition, rt, namespace, name)
    problem = tidb_secret_problem(ctx, namespace, name, (spec.get(access_field) or {}).get("secretName", ""))
    if problem is None:
        problem = storage_secret_problem(ctx, namespace, storage_block(spec))
        if problem is not None:
            kind = "backup" if rt.plural == "backups" else "restore"
            problem = (problem[0], f"{kind} {namespace}/{name}, {problem[1]}")
    if problem:
        condition("RetryFailed", *problem)
        return False
    condition("Scheduled")
    return True


@dataclass(frozen=True)
class Access:
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def of(cls, ctx: Context, namespace: str, conf: dict[str, Any]) -> Access:
        secret = ctx.secret_data(namespace, conf.get("secretName") or "") or {}
        return cls(str(conf.get("host") or ""), int(conf.get("port") or DEFAULT_PORT),
                   str(conf.get("user") or ROOT_USER), secret.get(PASSWORD_KEY, ""))


def resolve_host(ctx: Context, namespace: str, host: str) -> SimCluster | None:
    """The TiDB service a host names: `<cluster>-tidb[.<ns>[.svc[.cluster.local]]]`, a v1 TidbCluster."""
    parts = host.split(".")
    service = parts[0]
    if not service.endswith("-tidb"):
        return None
    ns = parts[1] if len(parts) > 1 else namespace
    if parts[2:] not in ([], ["svc"], ["svc", "cluster", "local"]):
        return None
    cluster = ctx.clusters.get(ns, service[: -len("-tidb")])
    return cluster if cluster is not None and cluster.resource == TIDBCLUSTER else None


def connect_error(ctx: Context, access: Access, cluster: SimCluster | None) -> str | None:
    """What the MySQL driver says when the login fails, None when it succeeds."""
    if cluster is None:
        return f"dial tcp: lookup {access.host}: no such host"
    if access.port != DEFAULT_PORT:
        return f"dial tcp {access.host}:{access.port}: connect: connection refused"
    expected = read_password(ctx.store, cluster.namespace, cluster.name)
    if access.user != ROOT_USER or expected is None or access.password != expected:
        using = "YES" if access.password else "NO"
        return f"Error 1045 (28000): Access denied for user '{access.user}'@'%' (using password: {using})"
    return None


async def connect(ctx: Context, namespace: str, access: Access) -> SimCluster | None:
    """`wait.PollImmediate(PollInterval, CheckTimeout, OpenDB...)`: None when it timed out."""
    deadline = clock.monotonic() + ctx.config.tidb_connect_timeout
    while True:
        cluster = resolve_host(ctx, namespace, access.host)
        if connect_error(ctx, access, cluster) is None:
            return cluster
        if clock.monotonic() >= deadline:
            return None
        await sleep(min(ctx.config.tidb_connect_poll, max(deadline - clock.monotonic(), 0.01)))


def dumpling_rows_per_file(options: list[str]) -> int:
    """`--rows=N` / `-r N` among dumpling.options (0: one file per table)."""
    for i, option in enumerate(options):
        if option.startswith("--rows="):
            return int(option.split("=", 1)[1])
        if option in ("--rows", "-r") and i + 1 < len(options):
            return int(options[i + 1])
    return 0


def _without_system(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rows.items() if k.split("/", 1)[0].lower() not in SYSTEM_SCHEMAS}


async def run_export(ctx: Context, rt: ResourceType, namespace: str, name: str) -> None:
    condition = partial(ctx.set_condition, rt, namespace, name)
    spec = await job_reads_spec(ctx, rt, namespace, name)
    if spec is None:
        return
    block = storage_block(spec)
    kind = next(iter(block)) if block else "unknown"
    if kind not in LOGICAL_STORAGE:
        condition("Failed", "UnsupportedStorageType", f"backup {namespace}/{name} unsupported storage type {kind}")
        return
    access = Access.of(ctx, namespace, spec.get("from") or {})
    cluster = await connect(ctx, namespace, access)
    if cluster is None:
        condition("Failed", "ConnectTidbFailed", WAIT_TIMEOUT)
        return
    started_wall = clock.now()
    time_started = now()
    condition("Prepare")
    await sleep(ctx.config.step_delay)
    conf = block[kind]
    folder = dumpling_layout.backup_folder(started_wall)
    prefix = (conf.get("prefix") or "").strip("/")
    remote = "/".join(p for p in (conf.get("bucket") or "", prefix, folder + dumpling_layout.ARCHIVE_EXTENSION) if p)
    backup_path = f"{kind}://{remote}"
    condition("Running", backupPath=backup_path)
    failure = ctx.faults.take_backup_failure()
    if failure:
        condition("Failed", "DumpTidbClusterFailed", failure)
        return
    ts = ctx.alloc.next()
    rows = _without_system(cluster.data.rows_at(ts))
    rules = spec.get("tableFilter") or (spec.get("dumpling") or {}).get("tableFilter") or []
    rows = filter_rows(rows, list(rules))
    options = (spec.get("dumpling") or {}).get("options") or ["--threads=16", "--rows=10000"]
    try:
        per_file = dumpling_rows_per_file(list(options))
    except ValueError as err:
        condition("Failed", "DumpTidbClusterFailed", f"cluster {namespace}/{name}, execute dumpling command "
                                                     f"failed, output: {err}, err: exit status 1")
        return
    files = dumpling_layout.dump_files(rows, ts, tso_to_dt(ts), clock.now(), per_file)
    commit_ts = dumpling_layout.commit_ts_from_metadata(files[dumpling_layout.METADATA].decode())
    data = dumpling_layout.archive(folder, files)
    # The dump, then its archive beside it, on the Job's PVC of storageSize (volumes.py).
    room = quantity_bytes(str(spec.get("storageSize") or ""))
    dumped = sum(len(content) for content in files.values())
    local = f"{ROOT}/{folder}"
    if room is not None and dumped > room:
        condition("Failed", "DumpTidbClusterFailed",
                  f"cluster {namespace}/{name}, execute dumpling command failed, output: "
                  f"{write_error(local + '/' + sorted(files)[-1])}, err: exit status 1")
        return
    if room is not None and dumped + len(data) > room:
        condition("Failed", "ArchiveBackupDataFailed", write_error(local + dumpling_layout.ARCHIVE_EXTENSION))
        return
    try:
        location = ctx.open_storage(namespace, block)
        key = folder + dumpling_layout.ARCHIVE_EXTENSION
        # rclone copyto <archive> <dest>.tmp, then moveto <dest>: a failed upload leaves only the .tmp
        await ctx.io(location.put, key + ".tmp", data)
        await ctx.io(location.put, key, data)
        await ctx.io(location.delete, [key + ".tmp"])
    except StorageFailure as err:
        condition("Failed", "BackupDataToRemoteFailed", err.message)
        return
    except Exception as err:
        condition("Failed", "BackupDataToRemoteFailed",
                  f"cluster {namespace}/{name}, execute rclone copyto command for upload backup data "
                  f"{backup_path} failed, output: {getattr(err, 'message', err)}, err: exit status 1")
        return
    await sleep(ctx.config.backup_duration)
    condition("Complete", timeStarted=time_started, timeCompleted=now(), backupSize=len(data),
              backupSizeReadable=humanize_bytes(len(data)), commitTs=commit_ts)
