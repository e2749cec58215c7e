"""A cluster's entry (`ClusterConfig`: its sections, the checks across them, the lookups the DAGs make) and the
whole file (`ProjectConfig`: clusters with `defaults` merged into each, unique names and DAG ids)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..cr.api import V2_GROUP, ApiGroup
from ..cr.names import log_backup_name
from ..planning.drill import drill_schedule
from . import sections
from .errors import Problem, raise_if
from .fields import DNS_LABEL, MAX_NAME, ConfigModel, Duration, LocalTime, TimeZone, dns_label

_DAG_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ClusterConfig(ConfigModel):
    """One TiDB cluster under PITR: where it is, where its backups go, and the policies."""

    name: str
    namespace: str
    api_group: Literal["pingcap.com", "br.pingcap.com"]
    legacy_log_stop: bool = False
    kubernetes_conn_id: str = Field(default="kubernetes_default", min_length=1)
    tidb_cluster: str = ""  # filled from `name` when not given
    storage: sections.StorageConfig
    timezone: TimeZone = "UTC"
    snapshot_anchor: LocalTime = "00:00"
    retention: Duration = timedelta(days=30)
    rpo: sections.RpoConfig = Field(default_factory=sections.RpoConfig)
    compaction: bool = False
    # TiDB Operator v2 has no CompactBackup controller: compaction there needs one of your own.
    compaction_v2_controller: bool = False
    log_backup: sections.LogBackupConfig = Field(default_factory=sections.LogBackupConfig)
    waits: sections.WaitsConfig = Field(default_factory=sections.WaitsConfig)
    tikv_count: int = Field(default=3, ge=1)
    restore_rates: sections.RestoreRatesConfig = Field(default_factory=sections.RestoreRatesConfig)
    br: sections.BrPassthrough = Field(default_factory=sections.BrPassthrough)
    service_account: str | None = None
    table_filter: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=lambda: ["dba"], min_length=1)
    tags: list[str] = Field(default_factory=list)
    # Airflow `mysql` connection to this cluster's TiDB (SQL checks); unset = those checks are skipped.
    sql_conn_id: str | None = Field(default=None, min_length=1)
    # Allowed restore targets: "name" (same namespace), "namespace/name", or {name, namespace, sql_conn_id};
    # empty = any cluster but this one (the form then takes a free-text name).
    restore_targets: list[sections.RestoreTarget] = Field(default_factory=list)
    drill: sections.DrillConfig | None = None
    # Called when a drill fails or finds a difference (BaseNotifiers, built when a run needs them).
    notifiers: list[sections.NotifierConfig] = Field(default_factory=list)
    # Dumpling logical backups and Lightning restores (TiDB Operator v1 only); unset = no such DAGs.
    logical_backup: sections.LogicalBackupConfig | None = None
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
        if data.get("tidb_cluster") is None and isinstance(name, str) and DNS_LABEL.fullmatch(name):
            data = {**data, "tidb_cluster": name}
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        dns_label(value)
        if len(value) > MAX_NAME:
            raise ValueError(f"must be at most {MAX_NAME} characters (derived CR and Job names must fit in 63); "
                             f"use a short name and set tidb_cluster to the real object name")
        return value

    @field_validator("namespace", "tidb_cluster")
    @classmethod
    def _check_label(cls, value: str) -> str:
        return dns_label(value)

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
        raise_if(problems)
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
            dns_label(self.backup_schedule)
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

    def _drill_problems(self, drill: sections.DrillConfig) -> list[Problem]:
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

    def logical_storage(self) -> sections.StorageConfig:
        """Where Dumpling writes: `logical_backup.storage`, or the cluster's S3 storage at `<root>/logical`."""
        assert self.logical_backup is not None
        if self.logical_backup.storage is not None:
            return self.logical_backup.storage
        return self.storage.model_copy(update={"root": f"{self.storage.root}/logical"})

    def drill_target(self) -> sections.RestoreTarget | None:
        """The drill's target as configured (namespace filled in), or None when it names no restore target."""
        if self.drill is None:
            return None
        namespace, _, name = self.drill.target.rpartition("/")
        return self.restore_target(name, namespace or None)

    def scratch_choices(self) -> dict[str, str]:
        """The restore targets a drill may use and empty (`scratch: true`), as in `target_choices`."""
        return {"/".join(self._target_key(t)): t.label(self.namespace) for t in self.restore_targets if t.scratch}

    def user_target_choices(self) -> dict[str, str]:
        """The restore targets a user may restore into: all but the drill's scratch ones, as in `target_choices`."""
        return {"/".join(self._target_key(t)): t.label(self.namespace) for t in self.restore_targets if not t.scratch}

    def allowed_targets_text(self) -> str:
        """The targets a user may restore into, for a refusal: "allowed: a, b (not c: scratch, drills only)"."""
        scratch = f" (not {', '.join(self.scratch_choices())}: scratch, drills only)" if self.scratch_choices() else ""
        if not self.restore_targets:
            return (f"allowed: any empty TidbCluster other than {self.namespace}/{self.tidb_cluster}, as a name in "
                    f"namespace {self.namespace} or namespace/name")
        return f"allowed: {', '.join(self.user_target_choices()) or 'none configured'}{scratch}"

    def drill_schedule(self) -> str:
        """The drill's cron: as configured, or weekly after the snapshot anchor (`planning.drill.drill_schedule`)."""
        return drill_schedule(self.drill.schedule if self.drill else None, self.snapshot_anchor)

    def _target_key(self, target: sections.RestoreTarget) -> tuple[str, str]:
        return target.namespace or self.namespace, target.name

    def restore_target_allowed(self, name: str, namespace: str | None = None) -> bool:
        """Whether a restore into `namespace/name` is allowed (never into this cluster itself)."""
        key = (namespace or self.namespace, name)
        if key == (self.namespace, self.tidb_cluster):
            return False
        return not self.restore_targets or key in {self._target_key(t) for t in self.restore_targets}

    def restore_target(self, name: str, namespace: str | None = None) -> sections.RestoreTarget | None:
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


def merged_clusters(data: Mapping[str, Any]) -> list[Any]:
    defaults, clusters = data.get("defaults") or {}, data.get("clusters")
    if not isinstance(defaults, Mapping) or not isinstance(clusters, list):
        return clusters  # type: ignore[return-value]  # left for pydantic to report
    return [_merge(defaults, c) if isinstance(c, Mapping) else c for c in clusters]


def duplicate_clusters(keys: Iterable[tuple[int, Any, Any]]) -> list[tuple[int, str]]:
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


class ProjectConfig(ConfigModel):
    """The whole file: clusters, and defaults merged into each of them (so storage etc. is written once)."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    clusters: list[ClusterConfig]

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "clusters" in data:
            data = {**data, "clusters": merged_clusters(data)}
        return data

    @model_validator(mode="after")
    def _unique(self) -> ProjectConfig:
        dupes = duplicate_clusters((i, c.namespace, c.name) for i, c in enumerate(self.clusters))
        reported, dag_ids = {i for i, _ in dupes}, dict[str, int]()
        for i, c in enumerate(self.clusters):
            if dag_ids.setdefault(c.dag_id(""), i) != i and i not in reported:
                dupes.append((i, f"its DAG ids collide with clusters[{dag_ids[c.dag_id('')]}]"))
        raise_if([(("clusters", i), msg) for i, msg in dupes])
        return self

    def cluster(self, name: str, namespace: str | None = None) -> ClusterConfig:
        """The cluster called `name` (and in `namespace`, when given); KeyError if there is none or several."""
        found = [c for c in self.clusters if c.name == name and namespace in (None, c.namespace)]
        if len(found) != 1:
            where = f"{namespace}/{name}" if namespace else name
            raise KeyError(f"{'no' if not found else 'more than one'} cluster {where!r} in the configuration")
        return found[0]
