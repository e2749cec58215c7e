"""RPO alert, event-driven: the log backup's watcher fires an asset event on warn, critical and recovery, and this
small DAG passes each one to the cluster's notifiers, seconds after the lag crossed the line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from ..config import ClusterConfig
from ..triggers.rpo import RpoLagTrigger
from .common import dag_kwargs

DOC = """
### RPO alerts of `{ns}/{name}`, as they happen

The asset `{uri}` has a watcher in the triggerer that watches the cluster's log backup CRs and the clock: when
the checkpoint lag crosses warn ({warn}) or critical ({critical}), and when it is back under warn, it records an
asset event, and this DAG runs and calls the cluster's notifiers with the level, the lag, the checkpoint and the
recoverable window (`tidb_pitr.event` is `rpo_warn`, `rpo_critical` or `rpo_recovered`). Each change is
announced once; a lag that eases from critical to warn is still the same breach. A log backup paused for
maintenance (`{log_control}`) is not a breach while the pause lasts: its growing lag is one notice,
`rpo_maintenance`, saying until when (`tidb_pitr.maintenance_pause`); still paused after that, it is a breach again
(`rpo_warn` / `rpo_critical`), and caught up, `rpo_recovered`. The log backup guard
(`{guard}`, every 10 minutes) still checks the same thresholds: it is the backstop when the triggerer is down.
"""

EVENT_FIELDS = ("level", "lag_seconds", "checkpoint_ts", "checkpoint_time", "log_backup", "log_phase", "window",
                "cause", "warn_seconds", "critical_seconds", "observed_at", "maintenance_pause")


def rpo_trigger(cluster: ClusterConfig) -> RpoLagTrigger:
    # Re-checked at least this often besides each CR change and each due crossing: a cheap safety net.
    every = max(1.0, min(30.0, cluster.rpo.warn.total_seconds() / 2))
    return RpoLagTrigger(
        kubernetes_conn_id=cluster.kubernetes_conn_id, api_group=cluster.api_group, namespace=cluster.namespace,
        tidb_cluster=cluster.tidb_cluster, cluster=f"{cluster.namespace}/{cluster.name}",
        warn_seconds=cluster.rpo.warn.total_seconds(), critical_seconds=cluster.rpo.critical.total_seconds(),
        starting_grace_seconds=(cluster.waits.tracker_interval + cluster.waits.start_grace).total_seconds(),
        reevaluate_every=every)


def rpo_asset(cluster: ClusterConfig) -> Asset:
    return Asset(f"tidb://{cluster.namespace}/{cluster.name}/rpo", group="tidb-pitr",
                 watchers=[AssetWatcher(name=cluster.dag_id("rpo_watch"), trigger=rpo_trigger(cluster))])


def alerts_from(events: Any) -> list[dict[str, Any]]:
    """The watcher's payloads out of the triggering asset events, oldest first (several may make one run)."""
    out = []
    # In the order they happened (a stable sort: events without a timestamp keep the order given).
    for event in sorted(events or (), key=lambda e: getattr(e, "timestamp", None) or datetime.min.replace(tzinfo=UTC)):
        payload = (getattr(event, "extra", None) or {}).get("payload")
        if isinstance(payload, dict) and payload.get("level"):
            out.append(payload)
    return out


def deliver(cluster: ClusterConfig, context: Any, alerts: list[dict[str, Any]]) -> list[str]:
    """Each alert to every notifier; returns what failed."""
    from ..runtime.notifiers import notify

    failures = []
    for alert in alerts:
        figures = {k: alert.get(k) for k in EVENT_FIELDS}
        failures += notify(cluster, context, f"rpo_{alert['level']}", alert.get("message") or "", **figures)
    return failures


def build(cluster: ClusterConfig) -> DAG:
    asset = rpo_asset(cluster)
    doc = DOC.format(ns=cluster.namespace, name=cluster.name, uri=asset.uri, warn=cluster.rpo.warn,
                     critical=cluster.rpo.critical, guard=cluster.dag_id("log_guard"),
                     log_control=cluster.dag_id("log_control"))
    kwargs = dag_kwargs(cluster, "rpo_alert", doc)
    kwargs["max_active_runs"] = 4  # alerts must not queue behind a slow notifier
    with DAG(schedule=[asset], **kwargs) as dag:

        @task(retries=0)
        def notify(**context: Any) -> list[dict[str, Any]]:
            import logging

            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            alerts = alerts_from(context["triggering_asset_events"].get(asset))
            if not alerts:
                raise AirflowSkipException("no RPO event from the watcher in this run (a manual run?)")
            for alert in alerts:  # a maintenance notice or a recovery is no warning
                logging.getLogger(__name__).log(logging.WARNING if alert["level"] in ("warn", "critical")
                                                else logging.INFO, "%s", alert.get("message"))
            failures = deliver(cluster, context, alerts)
            if failures:  # the others were called; the run shows red so that a broken channel is seen
                raise AirflowFailException(f"notifiers failed: {'; '.join(failures)}")
            return alerts

        notify()
    return dag
