"""Per-cluster configuration (`include/clusters.yaml`): the schema, the defaults, and the loader.

DAG files call `load_config` at parse time, so loading reads the one YAML file and validates it: no network,
Kubernetes, storage or Airflow Variables, and nothing per cluster beyond plain validation. Errors name the file,
the cluster, the field path and what is allowed, and all problems are listed at once.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .cr.api import V2_GROUP, ApiGroup
from .cr.names import LOG_NAME_MAX, is_snapshot_prefix, log_backup_name, log_folder, snapshot_folder

ENV_CONFIG = "TIDB_PITR_CONFIG"
CONFIG_RELPATH = Path("include") / "clusters.yaml"

# Derived names (`<name>-log-backup`, and the Job names the operator makes from CR names) end up in label
# values, which Kubernetes caps at 63 characters; 40 leaves room. `tidb_cluster` may be longer.
MAX_NAME = 40
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_ANCHOR = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DAG_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ConfigError(ValueError):
    """The configuration file cannot be used; `problems` holds one self-contained line per problem."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{self.path}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(message)


# A problem found by a cross-field validator: the path below the model ("storage.region", or a loc tuple)
# and the message. Raised together, so each one is reported with its own precise path.
Problem = tuple[str | tuple[Any, ...], str]


class _FieldProblems(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_dotted(_loc(field))}: {msg}" for field, msg in problems))


def _loc(field: str | tuple[Any, ...]) -> tuple[Any, ...]:
    return field if isinstance(field, tuple) else tuple(field.split("."))


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise _FieldProblems(problems)


# --- durations -------------------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:\d+[wdhms])+")
_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_TIMEDELTA = TypeAdapter(timedelta)  # ISO-8601 (`PT10M`, `P30D`) and numbers of seconds, as pydantic reads them
DURATION_FORMS = "a duration such as 10m, 1h30m, 30d, ISO-8601 PT10M / P30D, or a number of seconds"


def parse_duration(value: Any) -> timedelta:
    """`10m`, `1h30m`, `30d`, `2w`, ISO-8601 `PT10M`, or seconds (int/float) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):  # YAML `yes`/`no` would otherwise pass as 1/0 seconds
        raise ValueError(f"expected {DURATION_FORMS}")
    if isinstance(value, str) and _DURATION.fullmatch(value.strip().lower()):
        parts = _DURATION_PART.findall(value.strip().lower())
        return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts))
    try:
        return _TIMEDELTA.validate_python(value)
    except ValidationError:
        raise ValueError(f"expected {DURATION_FORMS}") from None


def format_duration(value: timedelta) -> str:
    """The short form `parse_duration` reads (`1d`, `1h30m`), for messages."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return f"{seconds}s"
    out = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


# --- small validators ------------------------------------------------------------------------------------

def _dns_label(value: str, what: str = "") -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{what}must be a DNS-1123 label: lower-case letters, digits and '-', starting and "
                         f"ending with a letter or digit, at most 63 characters")
    return value


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone; otherwise a ValueError with close matches (looked up only on error)."""
    try:
        ZoneInfo(name)  # cached by zoneinfo: cheap for the same zone in every cluster
        return name
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"must be an IANA time zone name such as 'UTC', 'Europe/Berlin' or 'Asia/Shanghai'{hint}")


def check_anchor(value: Any) -> str:
    """`HH:MM`, 24-hour, 00:00 to 23:59."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        # YAML 1.1 reads an unquoted 12:30 as the base-60 integer 750: turn it back into what was written.
        value = "{:02d}:{:02d}".format(*divmod(value, 60))
    if not isinstance(value, str) or not _ANCHOR.fullmatch(value):
        raise ValueError(f"must be a local time 'HH:MM' from '00:00' to '23:59' (got {value!r})")
    return value


class _Model(BaseModel):
    # Frozen: a config is read at parse time and shared by every DAG built from it.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- storage ---------------------------------------------------------------------------------------------

_PROVIDER_ONLY = {
    # Fields that mean something for one provider only; set for another they are a mistake, not a no-op.
    "region": ("s3",), "endpoint": ("s3",), "s3_provider": ("s3",), "force_path_style": ("s3",),
    "secret_name": ("s3", "azblob"), "conn_id": ("s3", "azblob"),
    "local_volume": ("local",), "local_mount_path": ("local",),
}
_DEFAULT_SECRETS = {"s3": "s3-secret", "azblob": "azblob-secret"}


class StorageConfig(_Model):
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
        _raise_if(problems)
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
        """The CR's one-key storage block, without `prefix` (the CR builders set that per backup)."""
        if self.provider == "s3":
            s3: dict[str, Any] = {"provider": self.s3_provider}
            if self.secret_name:
                s3["secretName"] = self.secret_name
            if self.region:
                s3["region"] = self.region
            s3["bucket"] = self.bucket
            if self.endpoint:
                s3["endpoint"] = self.endpoint
            if self.force_path_style is not None:
                s3["forcePathStyle"] = self.force_path_style
            return {"s3": s3}
        if self.provider == "azblob":
            azblob: dict[str, Any] = {"container": self.bucket}
            if self.secret_name:
                azblob = {"secretName": self.secret_name, **azblob}
            return {"azblob": azblob}
        volume = {**(self.local_volume or {}), "name": self.volume_name}
        return {"local": {"volume": volume, "volumeMount": {"name": self.volume_name,
                                                            "mountPath": self.local_mount_path}}}

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

class RpoConfig(_Model):
    """How far the log backup checkpoint may lag before the guard warns, then fails loudly."""

    warn: Duration = timedelta(minutes=10)
    critical: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _ordered(self) -> RpoConfig:
        problems = [(f, "must be positive") for f in ("warn", "critical") if getattr(self, f) <= timedelta(0)]
        if not problems and self.warn >= self.critical:
            problems.append(("warn", f"must be less than critical ({format_duration(self.warn)} >= "
                                     f"{format_duration(self.critical)})"))
        _raise_if(problems)
        return self


class BrPassthrough(_Model):
    """BR settings copied into every CR's `br` block (log mode: into every log sub-command too)."""

    concurrency: int | None = Field(default=None, gt=0)
    rate_limit: int | None = Field(default=None, ge=0)  # MB/s
    options: list[str] = Field(default_factory=list)
    send_cred_to_tikv: bool | None = None
    checksum: bool | None = None

    def br_block(self, cluster: str, cluster_namespace: str) -> dict[str, Any]:
        """The CR's `br` dict (camelCase keys); unset options are left out so the operator's defaults apply."""
        block: dict[str, Any] = {"cluster": cluster, "clusterNamespace": cluster_namespace}
        optional = {"concurrency": self.concurrency, "rateLimit": self.rate_limit,
                    "sendCredToTikv": self.send_cred_to_tikv, "checksum": self.checksum}
        block.update({k: v for k, v in optional.items() if v is not None})
        if self.options:
            block["options"] = list(self.options)
        return block


class LogBackupConfig(_Model):
    """The cluster's log backup CR. TiDB allows one log task per cluster; the live one is found by its state."""

    # Default `<name>-log-backup`; a task started after a Stopped one is `<name>-<n>` at `<root>/log-backup-<n>`.
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None:
            _dns_label(value)
            if len(value) > LOG_NAME_MAX - 3:
                raise ValueError(f"must be at most {LOG_NAME_MAX - 3} characters: TiDB Operator names its Jobs "
                                 f"backup-<name>-log-truncate, and a pod label holds 63")
        return value


class WaitsConfig(_Model):
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

    @model_validator(mode="after")
    def _positive(self) -> WaitsConfig:
        _raise_if([(name, "must be positive") for name in type(self).model_fields
                   if getattr(self, name) <= timedelta(0)])
        return self


# --- cluster and project ---------------------------------------------------------------------------------

class RestoreRatesConfig(_Model):
    """Restore throughput per TiKV store, for the duration estimate (the TiDB docs' figures by default)."""

    snapshot_gb_per_hour: float = Field(default=280.0, gt=0)
    log_gb_per_hour: float = Field(default=30.0, gt=0)


class RestoreTarget(_Model):
    """An empty cluster a restore may write into, and how to reach its TiDB over SQL."""

    name: str
    namespace: str | None = None  # None = the source cluster's namespace
    sql_conn_id: str | None = Field(default=None, min_length=1)
    # A cluster kept for drills: a drill may drop every user database in it afterwards.
    scratch: bool = False

    @field_validator("name", "namespace")
    @classmethod
    def _check_label(cls, value: str | None) -> str | None:
        return None if value is None else _dns_label(value)

    def label(self, default_namespace: str) -> str:
        scratch = ", scratch" if self.scratch else ""
        return f"{self.name} (namespace {self.namespace or default_namespace}{scratch})"


_CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def check_cron(value: str) -> str:
    from croniter import croniter

    if value in _CRON_PRESETS or croniter.is_valid(value):
        return value
    raise ValueError(f"must be a cron expression such as '0 4 * * 0' (minute hour day month weekday) or one of "
                     f"{', '.join(_CRON_PRESETS)}")


class DrillConfig(_Model):
    """A scheduled restore drill: restore into a scratch cluster and compare every table with the source."""

    # Cron in the cluster's timezone; default weekly, Sundays, 4 hours after the snapshot anchor.
    schedule: str | None = None
    target: str  # a restore_targets entry with scratch: true ("name" or "namespace/name")
    tables: list[str] = Field(default_factory=lambda: ["*.*"], min_length=1)
    mode: Literal["recent", "random"] = "recent"
    # recent: T is this long before the log checkpoint.
    margin: Duration = timedelta(minutes=1)
    # The source must stay readable at T for at least this long after the plan (its GC safe point moves on).
    gc_headroom: Duration = timedelta(minutes=2)

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("tables")
    @classmethod
    def _check_tables(cls, value: list[str]) -> list[str]:
        from .planning.drill import check_filter

        problems = check_filter(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _positive(self) -> DrillConfig:
        _raise_if([(name, "must be positive") for name in ("margin", "gc_headroom")
                   if getattr(self, name) <= timedelta(0)])
        return self


class NotifierConfig(_Model):
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


class LogicalKeepConfig(_Model):
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
        _raise_if(problems)
        return self


class LogicalBackupConfig(_Model):
    """Dumpling `Backup` CRs with `from:` (TiDB Operator v1), on a schedule, with their own retention."""

    schedule: str | None = None  # cron in the cluster's timezone; default daily at `anchor`
    anchor: str = "02:00"
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

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("anchor", mode="before")
    @classmethod
    def _check_anchor(cls, value: Any) -> Any:
        return check_anchor(value)

    @field_validator("table_filter")
    @classmethod
    def _check_filter(cls, value: list[str]) -> list[str]:
        from .planning.drill import check_filter

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
            _raise_if([("storage.provider", "must be 's3' (s3_provider aws, ceph, minio, ...): TiDB Operator's "
                                            "Dumpling backups go to S3-compatible storage or GCS only")])
        return self


class ClusterConfig(_Model):
    """One TiDB cluster under PITR: where it is, where its backups go, and the policies."""

    name: str
    namespace: str
    api_group: Literal["pingcap.com", "br.pingcap.com"]
    legacy_log_stop: bool = False
    kubernetes_conn_id: str = Field(default="kubernetes_default", min_length=1)
    tidb_cluster: str = ""  # filled from `name` when not given
    storage: StorageConfig
    timezone: str = "UTC"
    snapshot_anchor: str = "00:00"
    retention: Duration = timedelta(days=30)
    rpo: RpoConfig = Field(default_factory=RpoConfig)
    compaction: bool = False
    # TiDB Operator v2 has no CompactBackup controller: compaction there needs one of your own.
    compaction_v2_controller: bool = False
    log_backup: LogBackupConfig = Field(default_factory=LogBackupConfig)
    waits: WaitsConfig = Field(default_factory=WaitsConfig)
    tikv_count: int = Field(default=3, ge=1)
    restore_rates: RestoreRatesConfig = Field(default_factory=RestoreRatesConfig)
    br: BrPassthrough = Field(default_factory=BrPassthrough)
    service_account: str | None = None
    table_filter: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=lambda: ["dba"], min_length=1)
    tags: list[str] = Field(default_factory=list)
    # Airflow `mysql` connection to this cluster's TiDB (SQL checks); unset = those checks are skipped.
    sql_conn_id: str | None = Field(default=None, min_length=1)
    # Allowed restore targets: "name" (same namespace), "namespace/name", or {name, namespace, sql_conn_id};
    # empty = any cluster but this one (the form then takes a free-text name).
    restore_targets: list[RestoreTarget] = Field(default_factory=list)
    drill: DrillConfig | None = None
    # Called when a drill fails or finds a difference (BaseNotifiers, built when a run needs them).
    notifiers: list[NotifierConfig] = Field(default_factory=list)
    # Dumpling logical backups and Lightning restores (TiDB Operator v1 only); unset = no such DAGs.
    logical_backup: LogicalBackupConfig | None = None
    # Who takes the snapshots and runs the log backup: this project (`airflow`), or a TiDB Operator v1
    # BackupSchedule named `backup_schedule` (then the project creates and deletes no backup of this cluster).
    managed_by: Literal["airflow", "backup_schedule"] = "airflow"
    backup_schedule: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_tidb_cluster(cls, data: Any) -> Any:
        # Only from a valid name: a bad name is reported once, under `name`.
        if not isinstance(data, Mapping):
            return data
        name = data.get("name")
        if data.get("tidb_cluster") is None and isinstance(name, str) and _DNS_LABEL.fullmatch(name):
            data = {**data, "tidb_cluster": name}
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        _dns_label(value)
        if len(value) > MAX_NAME:
            raise ValueError(f"must be at most {MAX_NAME} characters (derived CR and Job names must fit in 63); "
                             f"use a short name and set tidb_cluster to the real object name")
        return value

    @field_validator("namespace", "tidb_cluster")
    @classmethod
    def _check_label(cls, value: str) -> str:
        return _dns_label(value)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("snapshot_anchor", mode="before")
    @classmethod
    def _check_anchor(cls, value: Any) -> Any:
        return check_anchor(value)

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1):
            raise ValueError("must be at least 1 day (e.g. 1d, 30d, P30D)")
        return value

    @field_validator("restore_targets", mode="before")
    @classmethod
    def _targets_from_strings(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for target in value:
            if isinstance(target, str):
                namespace, _, name = target.strip().rpartition("/")
                target = {"name": name, **({"namespace": namespace} if namespace else {})}
            out.append(target)
        return out

    @model_validator(mode="after")
    def _cross_checks(self) -> ClusterConfig:
        problems = []
        if self.legacy_log_stop and self.api_group == V2_GROUP:
            problems.append(("legacy_log_stop", "applies to api_group 'pingcap.com' (TiDB Operator v1) only"))
        if self.storage.force_path_style is not None and self.api_group == V2_GROUP:
            problems.append(("storage.force_path_style", "exists in TiDB Operator v1 ('pingcap.com') only"))
        seen: set[tuple[str, str]] = set()
        for index, target in enumerate(self.restore_targets):
            key = self._target_key(target)
            if key == (self.namespace, self.tidb_cluster):
                problems.append((("restore_targets", index), f"{'/'.join(key)} is this cluster itself; restoring "
                                 "into the source cluster is refused"))
            if key in seen:
                problems.append((("restore_targets", index), f"{'/'.join(key)} is listed twice"))
            if target.scratch and not target.sql_conn_id:
                problems.append((("restore_targets", index, "sql_conn_id"), "is required with scratch: true: a "
                                 "drill compares and empties a scratch cluster over SQL"))
            seen.add(key)
        if self.table_filter:
            problems.append(("table_filter", "must be empty: a point-in-time restore starts from a full-cluster "
                                             "snapshot, and a filtered snapshot can never be that base"))
        if self.compaction and self.api_group == V2_GROUP and not self.compaction_v2_controller:
            problems.append(("compaction", "TiDB Operator v2 (br.pingcap.com) has no CompactBackup controller: a "
                                           "CompactBackup would never run. Set compaction_v2_controller: true only "
                                           "if you run a controller for it yourself"))
        if self.compaction_v2_controller and self.api_group != V2_GROUP:
            problems.append(("compaction_v2_controller", "applies to api_group 'br.pingcap.com' only"))
        if self.drill is not None:
            problems.extend(self._drill_problems(self.drill))
        problems.extend(self._logical_problems())
        problems.extend(self._schedule_problems())
        _raise_if(problems)
        return self

    def _schedule_problems(self) -> list[Problem]:
        if self.managed_by != "backup_schedule":
            return [("backup_schedule", "applies only with managed_by: backup_schedule")] if self.backup_schedule \
                else []
        if self.api_group == V2_GROUP:
            return [("managed_by", "TiDB Operator v2 (br.pingcap.com) has no BackupSchedule controller (its "
                                   "operator runs Backup, Restore, TiBR and TiBRGC only): a BackupSchedule there "
                                   "never makes a backup. Use managed_by: airflow (the default)")]
        if not self.backup_schedule:
            return [("backup_schedule", "is required with managed_by: backup_schedule: the BackupSchedule's name")]
        problems: list[Problem] = []
        try:
            _dns_label(self.backup_schedule)
        except ValueError as err:
            problems.append(("backup_schedule", str(err)))
        if self.compaction:
            problems.append(("compaction", "must be false with managed_by: backup_schedule: the schedule's "
                                           "compactBackupTemplate compacts its log"))
        if self.logical_backup is not None:
            # The project deletes nothing on a schedule's cluster, and its logical retention would delete dumps.
            problems.append(("logical_backup", "must be unset with managed_by: backup_schedule: the project makes "
                                               "and deletes no backup there; give the BackupSchedule a Dumpling "
                                               "backupTemplate (seed 004) instead"))
        return problems

    @property
    def schedule_managed(self) -> bool:
        """Backups made and deleted by a TiDB Operator BackupSchedule: no snapshot or retention DAG here."""
        return self.managed_by == "backup_schedule"

    def _drill_problems(self, drill: DrillConfig) -> list[Problem]:
        scratch = [t for t in self.restore_targets if t.scratch]
        allowed = ", ".join("/".join(self._target_key(t)) for t in scratch) or "none: mark one 'scratch: true'"
        target = self.drill_target()
        problems: list[Problem] = []
        if not self.sql_conn_id:
            problems.append(("sql_conn_id", "is required for a drill: the source is read over SQL as of the "
                                            "restore time to compare the tables"))
        if target is None or not target.scratch:
            problems.append(("drill.target", f"{drill.target!r} must be one of restore_targets marked 'scratch: "
                                             f"true' (a drill empties it afterwards); allowed: {allowed}"))
        return problems

    def _logical_problems(self) -> list[Problem]:
        if self.logical_backup is None:
            return []
        if self.api_group == V2_GROUP:
            return [("logical_backup", "applies to api_group 'pingcap.com' (TiDB Operator v1) only: TiDB Operator "
                                       "v2 has no Dumpling backups or Lightning restores (its Backup and Restore "
                                       "require .spec.br)")]
        if self.logical_backup.storage is None and self.storage.provider != "s3":
            return [("logical_backup.storage", f"is required when the cluster's storage is "
                                               f"{self.storage.provider!r}: Dumpling backups go to S3-compatible "
                                               "storage (or GCS) only")]
        return []

    def logical_storage(self) -> StorageConfig:
        """Where Dumpling writes: `logical_backup.storage`, or the cluster's S3 storage at `<root>/logical`."""
        assert self.logical_backup is not None
        if self.logical_backup.storage is not None:
            return self.logical_backup.storage
        return self.storage.model_copy(update={"root": f"{self.storage.root}/logical"})

    def drill_target(self) -> RestoreTarget | None:
        """The drill's target as configured (namespace filled in), or None when it names no restore target."""
        if self.drill is None:
            return None
        namespace, _, name = self.drill.target.rpartition("/")
        return self.restore_target(name, namespace or None)

    def scratch_choices(self) -> dict[str, str]:
        """The restore targets a drill may use and empty (`scratch: true`), as in `target_choices`."""
        return {"/".join(self._target_key(t)): t.label(self.namespace) for t in self.restore_targets if t.scratch}

    def drill_schedule(self) -> str:
        """The drill's cron: as configured, or weekly on Sundays 4 hours after the snapshot anchor."""
        if self.drill is not None and self.drill.schedule:
            return self.drill.schedule
        hour, minute = (int(p) for p in self.snapshot_anchor.split(":"))
        return f"{minute} {(hour + 4) % 24} * * 0"

    def _target_key(self, target: RestoreTarget) -> tuple[str, str]:
        return target.namespace or self.namespace, target.name

    def restore_target_allowed(self, name: str, namespace: str | None = None) -> bool:
        """Whether a restore into `namespace/name` is allowed (never into this cluster itself)."""
        key = (namespace or self.namespace, name)
        if key == (self.namespace, self.tidb_cluster):
            return False
        return not self.restore_targets or key in {self._target_key(t) for t in self.restore_targets}

    def restore_target(self, name: str, namespace: str | None = None) -> RestoreTarget | None:
        """The configured target `namespace/name` (namespace filled in), or None when not listed."""
        key = (namespace or self.namespace, name)
        for target in self.restore_targets:
            if self._target_key(target) == key:
                return target.model_copy(update={"namespace": key[0]})
        return None

    def target_choices(self) -> dict[str, str]:
        """`namespace/name` -> a readable label, for the restore form's list (in configured order)."""
        return {"/".join(self._target_key(t)): t.label(self.namespace) for t in self.restore_targets}

    def target_namespaces(self) -> list[str]:
        """This namespace and those of the configured restore targets (where this cluster's restores are)."""
        return sorted({self.namespace, *(t.namespace or self.namespace for t in self.restore_targets)})

    def dag_id(self, kind: str) -> str:
        """`tidb_<namespace>_<name>_<kind>`; names are DNS labels (no '_'), so ids of different clusters differ."""
        return _DAG_ID_UNSAFE.sub("_", f"tidb_{self.namespace}_{self.name}_{kind}")

    @property
    def log_backup_name(self) -> str:
        """The first log backup CR's name; later ones (after a Stopped task) get `-<n>`."""
        return log_backup_name(self.log_backup.name or f"{self.name}-log-backup")

    def group(self) -> ApiGroup:
        return ApiGroup(group=self.api_group, legacy_log_stop=self.legacy_log_stop)

    def br_block(self) -> dict[str, Any]:
        """The CR `br` block for this cluster's TidbCluster / v2 Cluster."""
        return self.br.br_block(self.tidb_cluster, self.namespace)


def _merge(defaults: Mapping[str, Any], cluster: Mapping[str, Any]) -> dict[str, Any]:
    """`cluster` over `defaults`; mappings merge key by key, anything else is replaced."""
    merged = dict(defaults)
    for key, value in cluster.items():
        base = merged.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            # A cluster that switches storage provider takes none of the default provider's fields.
            same_provider = key != "storage" or value.get("provider", base.get("provider")) == base.get("provider")
            merged[key] = _merge(base, value) if same_provider else dict(value)
        else:
            merged[key] = value
    return merged


def _merged_clusters(data: Mapping[str, Any]) -> list[Any]:
    defaults, clusters = data.get("defaults") or {}, data.get("clusters")
    if not isinstance(defaults, Mapping) or not isinstance(clusters, list):
        return clusters  # type: ignore[return-value]  # left for pydantic to report
    return [_merge(defaults, c) if isinstance(c, Mapping) else c for c in clusters]


def _duplicates(keys: Iterable[tuple[int, Any, Any]]) -> list[tuple[int, str]]:
    """(index, message) for each cluster whose (namespace, name) repeats an earlier one."""
    seen: dict[tuple[Any, Any], int] = {}
    out = []
    for index, namespace, name in keys:
        if not isinstance(namespace, str) or not isinstance(name, str):
            continue
        if (namespace, name) in seen:
            out.append((index, f"duplicate cluster {namespace}/{name} (also clusters[{seen[namespace, name]}]); "
                               f"each (namespace, name) may appear once"))
        else:
            seen[namespace, name] = index
    return out


class ProjectConfig(_Model):
    """The whole file: clusters, and defaults merged into each of them (so storage etc. is written once)."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    clusters: list[ClusterConfig]

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "clusters" in data:
            data = {**data, "clusters": _merged_clusters(data)}
        return data

    @model_validator(mode="after")
    def _unique(self) -> ProjectConfig:
        dupes = _duplicates((i, c.namespace, c.name) for i, c in enumerate(self.clusters))
        reported, dag_ids = {i for i, _ in dupes}, dict[str, int]()
        for i, c in enumerate(self.clusters):
            if dag_ids.setdefault(c.dag_id(""), i) != i and i not in reported:
                dupes.append((i, f"its DAG ids collide with clusters[{dag_ids[c.dag_id('')]}]"))
        _raise_if([(("clusters", i), msg) for i, msg in dupes])
        return self

    def cluster(self, name: str, namespace: str | None = None) -> ClusterConfig:
        """The cluster called `name` (and in `namespace`, when given); KeyError if there is none or several."""
        found = [c for c in self.clusters if c.name == name and namespace in (None, c.namespace)]
        if len(found) != 1:
            where = f"{namespace}/{name}" if namespace else name
            raise KeyError(f"{'no' if not found else 'more than one'} cluster {where!r} in the configuration")
        return found[0]


# --- loading ---------------------------------------------------------------------------------------------

def config_path() -> Path:
    """`$TIDB_PITR_CONFIG`, else `include/clusters.yaml` beside `plugins/`, else `$AIRFLOW_HOME/include/...`."""
    if env := os.environ.get(ENV_CONFIG):
        return Path(env)
    beside_plugins = Path(__file__).resolve().parent.parent.parent / CONFIG_RELPATH
    if beside_plugins.is_file():
        return beside_plugins
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / CONFIG_RELPATH


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster on big files


def load_config(path: str | Path | None = None) -> ProjectConfig:
    """Read and validate the YAML file (default: `config_path()`); ConfigError lists every problem."""
    path = config_path() if path is None else path
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read the configuration file: {exc.strerror or exc}"]) from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"{path}: not valid YAML: {exc}"]) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(path, [f"{path}: must be a mapping with 'clusters' (and optionally 'defaults'); "
                                 f"got {type(raw).__name__}"])
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        problems = _Reporter(path, raw).problems(exc)
        raise ConfigError(path, problems) from None


class _Reporter:
    """Turns pydantic errors into `file: cluster "x": field.path: message` lines."""

    def __init__(self, path: str | Path, raw: Mapping[str, Any]) -> None:
        self.path = str(path)
        self.raw = raw
        clusters = raw.get("clusters")
        self.clusters: list[Any] = clusters if isinstance(clusters, list) else []
        defaults = raw.get("defaults")
        self.defaults: Mapping[str, Any] = defaults if isinstance(defaults, Mapping) else {}

    def problems(self, exc: ValidationError) -> list[str]:
        lines: list[str] = []
        for error in exc.errors():
            for line in self._lines(error):
                if line not in lines:  # a bad default shows up once, not once per cluster
                    lines.append(line)
        if not any("duplicate cluster" in line for line in lines):
            merged = _merged_clusters(self.raw) or []
            keys = ((i, c.get("namespace"), c.get("name")) for i, c in enumerate(merged) if isinstance(c, Mapping))
            lines.extend(f"{self.path}: {self._who(i)}: {msg}" for i, msg in _duplicates(keys))
        return lines

    def _lines(self, error: Mapping[str, Any]) -> Iterator[str]:
        loc = tuple(error["loc"])
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, _FieldProblems):
            for field, msg in inner.problems:
                yield self._line((*loc, *_loc(field)), msg)
            return
        yield self._line(loc, self._message(error, loc))

    def _line(self, loc: tuple[Any, ...], msg: str) -> str:
        if len(loc) >= 2 and loc[0] == "clusters" and isinstance(loc[1], int):
            index, field = loc[1], loc[2:]
            if field and self._from_defaults(index, field):
                return f"{self.path}: defaults: {_dotted(field)}: {msg}"
            where = f"{self._who(index)}: {_dotted(field)}" if field else self._who(index)
            return f"{self.path}: {where}: {msg}"
        return f"{self.path}: {_dotted(loc) or '(top level)'}: {msg}"

    def _who(self, index: int) -> str:
        name = self._name(index)
        if not name:
            return f"clusters[{index}] (no name)"
        repeated = sum(self._name(i) == name for i in range(len(self.clusters))) > 1
        return f'cluster "{name}" (clusters[{index}])' if repeated else f'cluster "{name}"'

    def _name(self, index: int) -> str | None:
        cluster = self.clusters[index] if index < len(self.clusters) else None
        name = cluster.get("name") if isinstance(cluster, Mapping) else None
        return name if isinstance(name, str) and name else None

    def _from_defaults(self, index: int, field: tuple[Any, ...]) -> bool:
        """Whether the offending value was written under `defaults` rather than in the cluster itself."""
        cluster = self.clusters[index] if index < len(self.clusters) else None
        return not _has_path(cluster, field) and _has_path(self.defaults, field)

    @staticmethod
    def _message(error: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
        kind, msg, value = error["type"], error["msg"], error.get("input")
        if kind == "extra_forbidden":
            known = _known_keys(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"unknown key; {hint}allowed keys: {', '.join(known)}"
        msg = msg.removeprefix("Value error, ")
        scalar = value is None or isinstance(value, str | int | float | bool)
        if kind != "missing" and scalar and "(got " not in msg:
            msg = f"{msg} (got {value!r})"
        return msg


def _dotted(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _has_path(data: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


_NESTED: dict[type[BaseModel], dict[str, type[BaseModel]]] = {
    ProjectConfig: {"clusters": ClusterConfig},
    ClusterConfig: {"storage": StorageConfig, "rpo": RpoConfig, "br": BrPassthrough, "log_backup": LogBackupConfig,
                    "waits": WaitsConfig, "restore_targets": RestoreTarget,
                    "restore_rates": RestoreRatesConfig, "drill": DrillConfig, "notifiers": NotifierConfig,
                    "logical_backup": LogicalBackupConfig},
    LogicalBackupConfig: {"keep": LogicalKeepConfig, "storage": StorageConfig},
}


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at `loc` (for did-you-mean on unknown keys)."""
    model: type[BaseModel] = ProjectConfig
    for part in loc:
        if isinstance(part, int):
            continue
        model = _NESTED.get(model, {}).get(part, model)
    return list(model.model_fields)
