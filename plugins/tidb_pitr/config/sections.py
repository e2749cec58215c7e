"""The sections of a cluster's entry: storage, RPO thresholds, BR passthrough, the log backup, waits, restore
rates and targets, the drill, notifiers and logical backups. Each validates itself; what needs the whole
cluster is checked in `cluster.py`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..cr.bodies import br_block, storage_block
from ..cr.names import LOG_NAME_MAX, is_snapshot_prefix, log_folder, snapshot_folder
from ..planning.drill import check_filter
from ..units import format_duration
from .errors import Problem, raise_if
from .fields import ConfigModel, Cron, Duration, LocalTime, dns_label

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


_PROVIDER_ONLY = {
    # Fields that mean something for one provider only; set for another they are a mistake, not a no-op.
    "region": ("s3",), "endpoint": ("s3",), "s3_provider": ("s3",), "force_path_style": ("s3",),
    "secret_name": ("s3", "azblob"), "conn_id": ("s3", "azblob"),
    "local_volume": ("local",), "local_mount_path": ("local",),
}
_DEFAULT_SECRETS = {"s3": "s3-secret", "azblob": "azblob-secret"}


class StorageConfig(ConfigModel):
    """Where BR writes: one bucket/container/volume and a root prefix for this cluster."""

    provider: Literal["s3", "azblob", "local"]
    bucket: str | None = None  # s3 bucket; azblob container; local: the volume name
    root: str
    region: str | None = None
    endpoint: str | None = None
    s3_provider: str | None = None  # the CR's `s3.provider`: aws, minio, ceph, ...
    # Default per provider; an explicit null means "no Secret" (pod identity: IRSA, workload identity).
    secret_name: str | None = None
    conn_id: str | None = None  # the Airflow connection (aws / wasb) used to inspect and delete backup data
    force_path_style: bool | None = None  # TiDB Operator v1 only
    local_volume: dict[str, Any] | None = None  # a corev1 Volume
    local_mount_path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        provider = data.get("provider")
        if provider in _DEFAULT_SECRETS and "secret_name" not in data:
            data["secret_name"] = _DEFAULT_SECRETS[provider]
        if provider == "s3" and "s3_provider" not in data:
            data["s3_provider"] = "aws"
        return data

    @field_validator("root")
    @classmethod
    def _check_root(cls, value: str) -> str:
        # Retention deletes under <root>/..., so a root shared with anything else, or the bucket root, is unsafe.
        if not value:
            raise ValueError("must not be empty: this cluster's backups need a prefix of their own, e.g. 'demo1'")
        if value.startswith("/") or value.endswith("/"):
            raise ValueError("must not start or end with '/'; write e.g. 'backups/demo1'")
        if any(part in ("", ".", "..") for part in value.split("/")):
            raise ValueError("must not have empty, '.' or '..' parts")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            url = urlparse(value)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError("must be a URL with scheme and host, e.g. 'https://minio.example:9000'")
        return value

    @model_validator(mode="after")
    def _check_provider_fields(self) -> StorageConfig:
        problems = [
            (field, f"applies to provider {' / '.join(repr(p) for p in owners)} only, not {self.provider!r}")
            for field, owners in _PROVIDER_ONLY.items()
            if self.provider not in owners and getattr(self, field) is not None
        ]
        if self.provider in ("s3", "azblob"):
            what = "bucket" if self.provider == "s3" else "container"
            if not self.bucket:
                problems.append(("bucket", f"is required for provider {self.provider!r} (the {what} name)"))
            if not self.conn_id:
                kind = "aws" if self.provider == "s3" else "wasb"
                problems.append(("conn_id", f"is required for provider {self.provider!r}: the Airflow {kind} "
                                            f"connection used to inspect backup data"))
        if self.provider == "s3":
            if not self.s3_provider:
                problems.append(("s3_provider", "must be set, e.g. 'aws', 'minio' or 'ceph'"))
            if self.s3_provider == "aws" and not self.region:
                problems.append(("region", "is required for s3_provider 'aws' (the bucket's region, e.g. "
                                           "'us-west-1')"))
        if self.provider == "local":
            problems.extend(self._local_problems())
        raise_if(problems)
        return self

    def _local_problems(self) -> Iterator[tuple[str, str]]:
        if not self.local_volume:
            yield "local_volume", "is required for provider 'local': a Kubernetes Volume, e.g. {name: backup, " \
                                  "persistentVolumeClaim: {claimName: backup-pvc}}"
        elif self.volume_name is None:
            yield "local_volume", "needs a 'name' (or set bucket to the volume name)"
        elif self.bucket and self.local_volume.get("name") not in (None, self.bucket):
            yield "bucket", f"is the volume name for provider 'local' and differs from local_volume.name " \
                            f"{self.local_volume.get('name')!r}"
        if not self.local_mount_path or not self.local_mount_path.startswith("/"):
            yield "local_mount_path", "is required for provider 'local': an absolute path such as '/backup'"

    @property
    def volume_name(self) -> str | None:
        """For local storage: the volume's name (`bucket`, else `local_volume.name`)."""
        if self.provider != "local":
            return None
        return self.bucket or (self.local_volume or {}).get("name") or None

    def cr_block(self) -> dict[str, Any]:
        """The CR's one-key storage block, without `prefix` (built by `cr.bodies.storage_block`)."""
        return storage_block(self.provider, bucket=self.bucket, s3_provider=self.s3_provider,
                             secret_name=self.secret_name, region=self.region, endpoint=self.endpoint,
                             force_path_style=self.force_path_style, local_volume=self.local_volume,
                             volume_name=self.volume_name, local_mount_path=self.local_mount_path)

    def hook_kwargs(self) -> dict[str, Any]:
        """Arguments for `BackupStorageHook`: for local storage its "bucket" is the mount path on the worker.

        `managed_root` confines the hook's deletions to this cluster's `<root>/snapshot-<14 digits>` folders.
        """
        bucket = self.local_mount_path if self.provider == "local" else self.bucket
        return {"provider": self.provider, "conn_id": self.conn_id, "bucket": bucket, "managed_root": self.root}

    def prefix(self, *parts: str) -> str:
        """`<root>/<part>/...`, with stray slashes and empty parts dropped."""
        cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
        return "/".join([self.root, *cleaned])

    @property
    def log_prefix(self) -> str:
        return self.log_prefix_for(1)

    def log_prefix_for(self, generation: int) -> str:
        return self.prefix(log_folder(generation))

    def snapshot_prefix(self, stamp: str) -> str:
        """`<root>/snapshot-YYYYMMDDHHMMSS`: the only kind of folder retention may ever delete."""
        return self.prefix(snapshot_folder(stamp))

    def is_snapshot_prefix(self, prefix: str | None) -> bool:
        return is_snapshot_prefix(self.root, prefix)


# --- RPO and BR ------------------------------------------------------------------------------------------

class RpoConfig(ConfigModel):
    """How far the log backup checkpoint may lag before the guard warns, then fails loudly."""

    warn: Duration = timedelta(minutes=10)
    critical: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _ordered(self) -> RpoConfig:
        problems = [(f, "must be positive") for f in ("warn", "critical") if getattr(self, f) <= timedelta(0)]
        if not problems and self.warn >= self.critical:
            problems.append(("warn", f"must be less than critical ({format_duration(self.warn)} >= "
                                     f"{format_duration(self.critical)})"))
        raise_if(problems)
        return self


class BrPassthrough(ConfigModel):
    """BR settings copied into every CR's `br` block (log mode: into every log sub-command too)."""

    concurrency: int | None = Field(default=None, gt=0)
    rate_limit: int | None = Field(default=None, ge=0)  # MB/s
    options: list[str] = Field(default_factory=list)
    send_cred_to_tikv: bool | None = None
    checksum: bool | None = None

    def br_block(self, cluster: str, cluster_namespace: str) -> dict[str, Any]:
        """The CR's `br` dict (built by `cr.bodies.br_block`)."""
        return br_block(cluster, cluster_namespace, concurrency=self.concurrency, rate_limit=self.rate_limit,
                        send_cred_to_tikv=self.send_cred_to_tikv, checksum=self.checksum, options=self.options)


class LogBackupConfig(ConfigModel):
    """The cluster's log backup CR. TiDB allows one log task per cluster; the live one is found by its state."""

    # Default `<name>-log-backup`; a task started after a Stopped one is `<name>-<n>` at `<root>/log-backup-<n>`.
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None:
            dns_label(value)
            if len(value) > LOG_NAME_MAX - 3:
                raise ValueError(f"must be at most {LOG_NAME_MAX - 3} characters: TiDB Operator names its Jobs "
                                 f"backup-<name>-log-truncate, and a pod label holds 63")
        return value


class WaitsConfig(ConfigModel):
    """How long to wait for what TiDB Operator does, and when a wait is hopeless."""

    # The operator's tracker copies the log checkpoint into the CR every minute (`refreshCheckpointTsPeriod`).
    tracker_interval: Duration = timedelta(minutes=1)
    # Right after a log start there is no checkpoint yet: "starting", not RPO CRITICAL, for the tracker
    # interval plus this long.
    start_grace: Duration = timedelta(minutes=2)
    # RetryFailed that waiting does not heal (a Secret missing or incomplete, the cluster not found) fails
    # the task after this long, with the operator's message.
    retry_failed_grace: Duration = timedelta(minutes=10)
    # A log sub-command (start, pause, resume, stop, truncate) Scheduled or Running for longer is reported
    # stuck: TiDB Operator does not notice a log Job whose pod died.
    log_job_stuck_after: Duration = timedelta(minutes=30)
    # How long a restore waits for a running retention to finish before it refuses.
    retention_wait: Duration = timedelta(minutes=15)
    # TiKV's `log-backup.max-flush-interval`: how often the log checkpoint in storage moves. `check` watches the
    # checkpoints this long plus two tracker intervals.
    log_flush_interval: Duration = timedelta(minutes=3)

    @model_validator(mode="after")
    def _positive(self) -> WaitsConfig:
        raise_if([(name, "must be positive") for name in type(self).model_fields
                   if getattr(self, name) <= timedelta(0)])
        return self


# --- cluster and project ---------------------------------------------------------------------------------

class RestoreRatesConfig(ConfigModel):
    """Restore throughput per TiKV store, for the duration estimate (the TiDB docs' figures by default)."""

    snapshot_gb_per_hour: float = Field(default=280.0, gt=0)
    log_gb_per_hour: float = Field(default=30.0, gt=0)


class RestoreTarget(ConfigModel):
    """An empty cluster a restore may write into, and how to reach its TiDB over SQL."""

    name: str
    namespace: str | None = None  # None = the source cluster's namespace
    sql_conn_id: str | None = Field(default=None, min_length=1)
    # A cluster kept for drills: a drill may drop every user database in it afterwards.
    scratch: bool = False

    @field_validator("name", "namespace")
    @classmethod
    def _check_label(cls, value: str | None) -> str | None:
        return None if value is None else dns_label(value)

    def label(self, default_namespace: str) -> str:
        scratch = ", scratch" if self.scratch else ""
        return f"{self.name} (namespace {self.namespace or default_namespace}{scratch})"


class DrillConfig(ConfigModel):
    """A scheduled restore drill: restore into a scratch cluster and compare every table with the source."""

    # Cron in the cluster's timezone; default weekly, Sundays, 4 hours after the snapshot anchor.
    schedule: Cron | None = None
    target: str  # a restore_targets entry with scratch: true ("name" or "namespace/name")
    tables: list[str] = Field(default_factory=lambda: ["*.*"], min_length=1)
    mode: Literal["recent", "random"] = "recent"
    # A drill of chosen tables (BR table-filter rules; [] = the whole cluster): restored with `restore point
    # --filter` into a scratch cluster that may hold other data, compared, then dropped (its other data stays).
    restore_tables: list[str] = Field(default_factory=list)
    # recent: T is this long before the log checkpoint.
    margin: Duration = timedelta(minutes=1)
    # The source must stay readable at T for at least this long after the plan (its GC safe point moves on).
    gc_headroom: Duration = timedelta(minutes=2)
    # The comparison reads every row of each table on both sides (a row fingerprint in SQL): this many
    # tables at once, each within this time (a table that takes longer is reported as not verified).
    compare_parallel: int = Field(default=4, ge=1, le=64)
    compare_timeout: Duration = timedelta(minutes=30)
    # Bytes per second the comparison reads the source at T (full scans of every compared table). The plan
    # sizes the read from INFORMATION_SCHEMA.TABLES and refuses a T the source's GC would pass before the read
    # ends. 50 MB/s is a cautious guess for a small cluster; the drill's record shows the rate it measured.
    source_scan_rate: float = 50_000_000.0

    @field_validator("tables", "restore_tables")
    @classmethod
    def _check_tables(cls, value: list[str]) -> list[str]:
        problems = check_filter(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _positive(self) -> DrillConfig:
        problems = [(name, "must be positive") for name in ("margin", "gc_headroom", "compare_timeout")
                    if getattr(self, name) <= timedelta(0)]
        if not self.source_scan_rate > 0:
            problems.append(("source_scan_rate", "must be a positive number of bytes per second, "
                                                 f"got {self.source_scan_rate}"))
        raise_if(problems)
        return self


class NotifierConfig(ConfigModel):
    """An Airflow notifier (a `BaseNotifier` subclass) and its arguments, e.g. the HTTP provider's
    `airflow.providers.http.notifications.HttpNotifier` with `http_conn_id`, `endpoint`, `json`. Its templated
    fields see `tidb_pitr` (cluster, event, summary and the figures) besides Airflow's context."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_path: str = Field(alias="class")
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("class_path")
    @classmethod
    def _check_class(cls, value: str) -> str:
        if not _DOTTED.fullmatch(value):
            raise ValueError("must be the dotted path of a BaseNotifier class, e.g. "
                             "'airflow.providers.http.notifications.HttpNotifier'")
        return value



# --- logical backups (Dumpling / Lightning, TiDB Operator v1 only) -----------------------------------------

DUMPLING_DEFAULT_OPTIONS = ("--threads=16", "--rows=10000")  # TiDB Operator's defaults (seed 004)


class LogicalKeepConfig(ConfigModel):
    """Which logical backups made here stay: the newest `count`, and any younger than `age` (either keeps one),
    as BackupSchedule's maxBackups / maxReservedTime. The newest Complete one always stays."""

    count: int | None = Field(default=None, ge=1)
    age: Duration | None = None

    @model_validator(mode="after")
    def _some(self) -> LogicalKeepConfig:
        problems: list[Problem] = []
        if self.count is None and self.age is None:
            problems.append(("count", "set count and/or age (e.g. count: 7, age: 7d): otherwise nothing says "
                                      "which logical backups to keep"))
        if self.age is not None and self.age <= timedelta(0):
            problems.append(("age", "must be positive"))
        raise_if(problems)
        return self


class LogicalBackupConfig(ConfigModel):
    """Dumpling `Backup` CRs with `from:` (TiDB Operator v1), on a schedule, with their own retention."""

    schedule: Cron | None = None  # cron in the cluster's timezone; default daily at `anchor`
    anchor: LocalTime = "02:00"
    keep: LogicalKeepConfig = Field(default_factory=lambda: LogicalKeepConfig(count=7))
    options: list[str] = Field(default_factory=lambda: list(DUMPLING_DEFAULT_OPTIONS))  # spec.dumpling.options
    table_filter: list[str] = Field(default_factory=list)  # spec.tableFilter
    storage_class_name: str | None = None
    storage_size: str = "10Gi"
    # The TiDB the Job connects to: `from:` / `to:`; the Secret holds the password (key `password`).
    tidb_secret: str = ""  # default backup-<tidb_cluster>-tidb-secret, as TiDB Operator's docs name it
    tidb_host: str = ""  # default <tidb_cluster>-tidb.<namespace>.svc, the TiDB service
    tidb_port: int = Field(default=4000, ge=1, le=65535)
    tidb_user: str = "root"
    # S3 (s3_provider aws with region, or ceph / minio / ... with endpoint); default: the cluster's storage
    # when that is S3, under <root>/logical.
    storage: StorageConfig | None = None

    @field_validator("table_filter")
    @classmethod
    def _check_filter(cls, value: list[str]) -> list[str]:
        problems = check_filter(value) if value else []
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("storage_size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?", value):
            raise ValueError("must be a Kubernetes quantity such as '10Gi' (the PVC Dumpling writes to first)")
        return value

    @model_validator(mode="after")
    def _check_storage(self) -> LogicalBackupConfig:
        if self.storage is not None and self.storage.provider != "s3":
            raise_if([("storage.provider", "must be 's3' (s3_provider aws, ceph, minio, ...): TiDB Operator's "
                                            "Dumpling backups go to S3-compatible storage or GCS only")])
        return self
