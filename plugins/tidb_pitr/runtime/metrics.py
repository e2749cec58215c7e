"""The project's metrics, sent through Airflow's own `Stats` (StatsD or OpenTelemetry, as Airflow is set up).

Every gauge is tagged with the cluster (`namespace/name`). With StatsD and statsd_exporter the names come out
as `airflow_tidb_pitr_<name>` (the `airflow` prefix is Airflow's `[metrics] statsd_prefix`).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

CHECKPOINT_LAG = "tidb_pitr.checkpoint_lag_seconds"  # guard: now - the live log's checkpoint
WINDOW_SPAN = "tidb_pitr.window_span_seconds"  # guard: latest - earliest restorable time
LAST_SNAPSHOT_AGE = "tidb_pitr.last_snapshot_age_seconds"  # guard: now - the newest Complete snapshot's commitTs
RETENTION_DELETED_BYTES = "tidb_pitr.retention_deleted_bytes"  # retention: backupSize of the snapshots it deleted
RESTORE_SECONDS = "tidb_pitr.restore_seconds"  # restore: the Restore CR's running time
DRILL_RTO = "tidb_pitr.drill_rto_seconds"  # drill: run start to Restore Complete
CHECK_FAILED = "tidb_pitr.check_failed"  # check: how many rows FAILED (0 when every assumption holds)

ALL = (CHECKPOINT_LAG, WINDOW_SPAN, LAST_SNAPSHOT_AGE, RETENTION_DELETED_BYTES, RESTORE_SECONDS, DRILL_RTO,
       CHECK_FAILED)


def cluster_tags(cluster: Any) -> dict[str, str]:
    return {"cluster": f"{cluster.namespace}/{cluster.name}"}


def gauge(name: str, value: float | None, cluster: Any) -> None:
    """One gauge for `cluster`; nothing when the value is unknown (a missing figure is not a zero)."""
    if value is None:
        return
    from airflow.sdk.observability.stats import Stats

    try:
        Stats.gauge(name, float(value), tags=cluster_tags(cluster))
    except Exception as exc:  # a metrics backend's hiccup must not fail the task that measured
        log.warning("could not send metric %s: %s", name, exc)
