"""Dumpling backups and Lightning restores (TiDB Operator v1): names, CR bodies, ownership, the dump's check.

Pure: no I/O. TiDB Operator's backup manager writes a Dumpling backup as one archive,
`<bucket>/<prefix>/backup-<RFC3339>.tgz`, and sets `status.backupPath` to `s3://<bucket>/<prefix>/backup-....tgz`
(`cmd/backup-manager/app/export/export.go`, release-1.6). Inside, under `backup-<RFC3339>/`: Dumpling's
`metadata` (`Pos: <snapshot TSO>`), `<db>-schema-create.sql`, `<db>.<table>-schema.sql`, `<db>.<table>.<n>.sql`.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .api import LABEL_COMPONENT, LABEL_FLOW
from .model import BackupView
from .names import SNAPSHOT_NAME_MAX, fit
from .ownership import made_here

if TYPE_CHECKING:  # annotations only: the vocabulary sits below the config
    from ..config import ClusterConfig

COMPONENT_LOGICAL = "logical-backup"
FLOW_LOGICAL_BACKUP = "logical-backup"
FLOW_LOGICAL_RESTORE = "logical-restore"
ANNOTATION_VERIFIED_TS = "tidb-pitr-airflow/logical-verified-ts"  # the metadata TSO, once the dump checked out
_ARCHIVE = r"backup-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\.tgz"
_SECRET_ARG = re.compile(r"(--(?:tidb-)?password=)\S+")


def logical_name(cluster: str, stamp: str) -> str:
    """`<cluster>-logical-YYYYMMDDHHMMSS`: one per run, so a retry adopts it."""
    return fit(f"{cluster}-logical-{stamp}", SNAPSHOT_NAME_MAX)


def is_dump_key(root: str, key: str) -> bool:
    """Whether `key` is a Dumpling archive directly under `root` (the only objects logical retention deletes)."""
    return re.fullmatch(re.escape(root.strip("/")) + "/" + _ARCHIVE, key or "") is not None


def dump_key(view: BackupView, bucket: str) -> str | None:
    """The object key of the archive a Backup's `backupPath` names in `bucket`, or None."""
    path = view.backup_path or ""
    head = f"s3://{bucket}/"
    return path[len(head):] if path.startswith(head) else None


def redact(text: str) -> str:
    """Upstream prints Dumpling's and Lightning's command lines into the CR's message, password included."""
    return _SECRET_ARG.sub(r"\1******", text or "")


def is_logical(view: BackupView) -> bool:
    spec = view.raw.get("spec") or {}
    return not spec.get("br") and bool(spec.get("from"))


def logical_problem(view: BackupView, *, cluster_name: str, bucket: str, root: str) -> str | None:
    """None when `view` is a Dumpling backup this project made for `cluster_name` in `bucket` at `root`,
    whose archive is `<root>/backup-<RFC3339>.tgz`; otherwise why it is not ours to delete."""
    foreign = made_here(view, cluster_name)
    if foreign is not None:
        return foreign
    if view.label(LABEL_COMPONENT) != COMPONENT_LOGICAL or view.label(LABEL_FLOW) != FLOW_LOGICAL_BACKUP:
        return f"{LABEL_COMPONENT} is {view.label(LABEL_COMPONENT)!r}, not {COMPONENT_LOGICAL!r}"
    if not is_logical(view):
        return "not a Dumpling backup (it has spec.br or no spec.from)"
    s3 = (view.storage or {}).get("s3") or {}
    if set(view.storage or {}) != {"s3"} or s3.get("bucket") != bucket:
        return f"stored at {view.storage_url}, not in bucket {bucket!r}"
    if (s3.get("prefix") or "").strip("/") != root:
        return f"prefix {s3.get('prefix')!r} is not {root!r}"
    key = dump_key(view, bucket)
    if view.backup_path and (key is None or not is_dump_key(root, key)):
        return f"backupPath {view.backup_path!r} is not s3://{bucket}/{root}/backup-<RFC3339>.tgz"
    return None


def tidb_access(host: str, port: int, user: str, secret: str) -> dict[str, Any]:
    return {"host": host, "port": port, "user": user, "secretName": secret}


def logical_backup_body(*, name: str, namespace: str, access: Mapping[str, Any], storage: Mapping[str, Any],
                        prefix: str, options: list[str], table_filter: list[str], storage_size: str,
                        storage_class_name: str | None, labels: Mapping[str, str],
                        annotations: Mapping[str, str]) -> dict[str, Any]:
    """The seed's Dumpling `Backup` (`from:`, `s3:` with prefix, `dumpling.options`, `tableFilter`, ...).

    `cleanPolicy: Retain`: TiDB Operator's clean Job is not used; retention deletes the one archive itself.
    """
    s3 = {**dict(storage["s3"]), "prefix": prefix}
    spec: dict[str, Any] = {"from": dict(access), "s3": s3, "dumpling": {"options": list(options)},
                            "storageSize": storage_size, "cleanPolicy": "Retain"}
    if table_filter:
        spec["tableFilter"] = list(table_filter)
    if storage_class_name:
        spec["storageClassName"] = storage_class_name
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels),
                         "annotations": dict(annotations)}, "spec": spec}


def logical_restore_body(*, name: str, namespace: str, access: Mapping[str, Any], storage: Mapping[str, Any],
                         backup_path: str, storage_size: str, storage_class_name: str | None) -> dict[str, Any]:
    """A Lightning `Restore` (`to:`, `s3.path` = the Backup's backupPath)."""
    s3 = {k: v for k, v in dict(storage["s3"]).items() if k != "prefix"}
    spec: dict[str, Any] = {"to": dict(access), "s3": {**s3, "path": backup_path}, "storageSize": storage_size}
    if storage_class_name:
        spec["storageClassName"] = storage_class_name
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": "Restore",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def backup_spec(cluster: ClusterConfig) -> dict[str, Any]:
    """What the Dumpling Backup CR of every run carries (logical_backup_body's arguments)."""
    lb = cluster.logical_backup
    assert lb is not None
    storage = cluster.logical_storage()
    host = lb.tidb_host or f"{cluster.tidb_cluster}-tidb.{cluster.namespace}.svc"
    secret = lb.tidb_secret or f"backup-{cluster.tidb_cluster}-tidb-secret"
    return {"access": tidb_access(host, lb.tidb_port, lb.tidb_user, secret), "storage": storage.cr_block(),
            "prefix": storage.root, "options": list(lb.options), "table_filter": list(lb.table_filter),
            "storage_size": lb.storage_size, "storage_class_name": lb.storage_class_name}


# -- the dump's check -----------------------------------------------------------------------------------
_SCHEMA = re.compile(r"^(?P<db>[^/.]+)\.(?P<table>[^/.]+)-schema\.sql$")
_DATA = re.compile(r"^(?P<db>[^/.]+)\.(?P<table>[^/.]+)\.\d+\.sql(\.gz|\.zst|\.snappy)?$")
_DB = re.compile(r"^(?P<db>[^/.]+)-schema-create\.sql$")


@dataclass
class DumpCheck:
    folder: str
    metadata_ts: str = ""
    databases: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    data_tables: set[str] = field(default_factory=set)
    data_files: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"folder": self.folder, "metadata_ts": self.metadata_ts, "databases": sorted(self.databases),
                "tables": sorted(self.tables), "data_files": self.data_files,
                "tables_without_rows": sorted(self.tables - self.data_tables), "problems": self.problems}


def metadata_ts(text: str) -> str:
    """The TSO on the first `Pos:` line, as backup-manager's `GetCommitTsFromMetadata` reads it."""
    for line in text.split("\n"):
        if "Pos" in line:
            parts = line.split(":")
            return parts[1].strip() if len(parts) == 2 else ""
    return ""


def check_dump(stream: IO[bytes], folder: str) -> DumpCheck:
    """Read the archive once, as a stream (only `metadata` is read into memory), and check its layout."""
    check = DumpCheck(folder)
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for member in tar:
                if not member.isfile() or not member.name.startswith(folder + "/"):
                    continue
                name = member.name[len(folder) + 1:]
                if name == "metadata":
                    handle = tar.extractfile(member)
                    check.metadata_ts = metadata_ts(handle.read().decode(errors="replace")) if handle else ""
                elif match := _DB.match(name):
                    check.databases.add(match.group("db"))
                elif match := _SCHEMA.match(name):
                    check.tables.add(f"{match.group('db')}.{match.group('table')}")
                elif match := _DATA.match(name):
                    check.data_files += 1
                    check.data_tables.add(f"{match.group('db')}.{match.group('table')}")
    except (tarfile.TarError, OSError, EOFError) as err:
        check.problems.append(f"the archive cannot be read: {err}")
        return check
    if not check.metadata_ts:
        check.problems.append(f"{folder}/metadata is missing or has no 'Pos:' line")
    if not check.tables:
        check.problems.append("no table schema file (<db>.<table>-schema.sql)")
    for table in sorted(check.tables | check.data_tables):
        if table.split(".", 1)[0] not in check.databases:
            check.problems.append(f"{table}: no {table.split('.', 1)[0]}-schema-create.sql")
    for table in sorted(check.data_tables - check.tables):
        check.problems.append(f"{table}: data files without {table}-schema.sql")
    return check
