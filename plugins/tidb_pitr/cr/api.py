"""The two API groups of TiDB Operator's backup CRs, and the labels this project puts on what it creates."""

from __future__ import annotations

from dataclasses import dataclass

V1_GROUP = "pingcap.com"  # TiDB Operator v1
V2_GROUP = "br.pingcap.com"  # TiDB Operator v2
GROUPS = (V1_GROUP, V2_GROUP)
VERSION = "v1alpha1"

BACKUPS = "backups"
RESTORES = "restores"
COMPACT_BACKUPS = "compactbackups"

# Labels on every CR this project creates: who made it, for which configured cluster, by which flow, what
# it is, the TiDB cluster it acts on, and for which DAG run (a hash, since run ids are not valid label
# values; the full id goes in an annotation). Retention and deletion touch only what carries the first two.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "tidb-pitr-airflow"
LABEL_PITR_CLUSTER = "tidb-pitr-airflow/cluster"  # the configured cluster's name (the source, for a restore)
LABEL_FLOW = "tidb-pitr-airflow/flow"  # snapshot, log-guard, restore, compaction
LABEL_CLUSTER = "app.kubernetes.io/instance"  # the TiDB cluster object the CR acts on
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_RUN = "tidb-pitr-airflow/run"
ANNOTATION_RUN = "tidb-pitr-airflow/run-id"
# State kept on the live log backup CR, where a DBA sees it with `kubectl describe`: a snapshot run that
# failed (retention holds until a later one succeeds), and the leases by which retention and restores
# keep out of each other's way.
ANNOTATION_SNAPSHOT_FAILED = "tidb-pitr-airflow/snapshot-failed"
ANNOTATION_RETENTION_LEASE = "tidb-pitr-airflow/retention-lease"
ANNOTATION_RESTORE_LEASE_PREFIX = "restore.tidb-pitr-airflow/"  # + the run's label hash
# A pause asked for maintenance (the log-control DAG): until when, by which run, why; the guard leaves the log
# backup paused until then (planning/pause.py `maintenance_pause`).
ANNOTATION_MAINTENANCE_PAUSE = "tidb-pitr-airflow/maintenance-pause"

FLOW_SNAPSHOT = "snapshot"
FLOW_LOG_GUARD = "log-guard"
FLOW_RESTORE = "restore"
FLOW_COMPACTION = "compaction"

COMPONENT_SNAPSHOT = "snapshot"
COMPONENT_LOG = "log-backup"
COMPONENT_RESTORE = "restore"
COMPONENT_COMPACT = "compact"


@dataclass(frozen=True)
class ApiGroup:
    """Which TiDB Operator line a cluster runs: `pingcap.com` (v1) or `br.pingcap.com` (v2)."""

    group: str = V1_GROUP
    version: str = VERSION
    # TiDB Operator <= v1.5.4 / v1.6.0 has no `logSubcommand`; only there is the legacy `logStop` used.
    legacy_log_stop: bool = False

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"api group must be one of {', '.join(GROUPS)}; got {self.group!r}")
        if self.legacy_log_stop and self.group == V2_GROUP:
            raise ValueError("legacy_log_stop applies to TiDB Operator v1 only; v2 always has logSubcommand")

    @property
    def is_v2(self) -> bool:
        return self.group == V2_GROUP

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"
