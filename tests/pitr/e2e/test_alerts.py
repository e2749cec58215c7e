"""Metrics and RPO alerts on the sandbox: the gauges a real StatsD listener receives from the guard, retention
and a restore, each tagged with its cluster; and the rpo_alert DAG, run on an asset event the way the
scheduler runs it, calling a real webhook with the level and the lag."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tidb_pitr.runtime import metrics

from .clusters import Cluster
from .conftest import datagrams, xcom

LINE = re.compile(r"^airflow\.(?P<name>tidb_pitr\.[a-z_]+),cluster=(?P<cluster>[^:]+):(?P<value>[-0-9.e]+)\|g$")


def gauges(listener: socket.socket) -> dict[str, dict[str, float]]:
    """cluster -> the last value of each tidb_pitr gauge (InfluxDB-style tags: `name,cluster=ns/name:value|g`)."""
    out: dict[str, dict[str, float]] = {}
    for line in datagrams(listener):
        found = LINE.match(line)
        if found:
            out.setdefault(found["cluster"], {})[found["name"]] = float(found["value"])
    return out


def key(cluster: Cluster) -> str:
    return f"{cluster.namespace}/{cluster.name}"


def test_the_guard_sends_checkpoint_lag_window_span_and_snapshot_age_per_cluster(sandbox, connections, airflow_db,
                                                                                 tagged_statsd):
    cluster = Cluster(sandbox, connections, seed_days=3)
    other = Cluster(sandbox, connections, seed_days=1)
    run = cluster.run("log_guard")
    assert str(run.state) == "success"
    assert str(other.run("log_guard").state) == "success"
    sent = gauges(tagged_statsd)
    mine, theirs = sent[key(cluster)], sent[key(other)]
    assert set(mine) == {metrics.CHECKPOINT_LAG, metrics.WINDOW_SPAN, metrics.LAST_SNAPSHOT_AGE}, sent
    assert xcom(run, "measure_rpo")["level"] == "ok" and 0 <= mine[metrics.CHECKPOINT_LAG] < 30
    window = xcom(run, "publish_window")
    assert mine[metrics.WINDOW_SPAN] == pytest.approx(window["span_seconds"], abs=1)
    assert 86400 < mine[metrics.WINDOW_SPAN] < 3 * 86400
    # Snapshots every two days: the newest base is at most two days (and the run's minutes) old.
    assert 0 < mine[metrics.LAST_SNAPSHOT_AGE] < 2 * 86400 + 3600
    # The other cluster's figures come under its own tag: one day of history, not three.
    assert theirs[metrics.WINDOW_SPAN] < 86400 < mine[metrics.WINDOW_SPAN]


def test_retention_sends_the_bytes_it_deleted_and_a_restore_its_duration(sandbox, connections, airflow_db,
                                                                         tagged_statsd):
    probe = Cluster(sandbox, connections, seed_days=1)
    target = probe.target()
    cluster = Cluster(sandbox, connections, namespace=probe.namespace, restore_targets=[target])  # 12 days, 7d kept
    sizes = {v.name: v.backup_size for v in cluster.snapshots()}
    run = cluster.run("retention")
    assert str(run.state) == "success"
    # Gone or going: a CR may wait on its finalizer a moment after the delete (as deleted_bytes counts them).
    deleted = set(sizes) - {v.name for v in cluster.snapshots() if not v.deleting}
    assert deleted and deleted == {d["backup_name"] for d in xcom(run, "plan")["deletions"] if d["backup_name"]}
    sent = gauges(tagged_statsd)[key(cluster)]
    assert sent[metrics.RETENTION_DELETED_BYTES] == sum(sizes[n] for n in deleted) > 0

    window = cluster.window()
    run = cluster.run("restore", run_conf={"restore_tso": str((window.earliest_ts + window.latest_ts) // 2),
                                           "target_cluster": f"{cluster.namespace}/{target}"})
    assert str(run.state) == "success"
    report = xcom(run, "report")
    sent = gauges(tagged_statsd)[key(cluster)]
    # The CR's times are whole seconds: a sandbox restore may take "0 s"; the gauge must carry what was measured.
    assert report["duration_seconds"] is not None
    assert sent[metrics.RESTORE_SECONDS] == pytest.approx(report["duration_seconds"])




ALERT_NOTIFIER = {"class": "airflow.providers.http.notifications.HttpNotifier",
                  "args": {"http_conn_id": "drill_alerts", "endpoint": "/rpo",
                           "json": {"text": "{{ tidb_pitr.summary }}", "event": "{{ tidb_pitr.event }}",
                                    "cluster": "{{ tidb_pitr.cluster }}", "level": "{{ tidb_pitr.level }}",
                                    "lag": "{{ tidb_pitr.lag_seconds }}", "window": "{{ tidb_pitr.window }}"}}}


@pytest.fixture
def asset_events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Payloads to hand the next `dag.test()` run as its triggering asset events: recorded in the DB as the
    triggerer records a watcher's event (`extra = {"from_trigger": True, "payload": ...}`) and consumed by the
    run, as the scheduler links them (dag.test() itself takes no asset events)."""
    from airflow.models import dagrun
    from airflow.models.asset import AssetEvent, AssetModel

    payloads: list[dict[str, Any]] = []
    real = dagrun.get_or_create_dagrun

    def with_events(**kwargs: Any) -> Any:
        run, session = real(**kwargs), kwargs["session"]
        uri = kwargs["dag"].timetable.asset_condition.objects[0].uri
        asset = session.query(AssetModel).filter(AssetModel.uri == uri).one()
        start = datetime.now(UTC)
        for index, payload in enumerate(payloads):
            # A second apart, as the watcher's events are: the run sees them in the order they happened.
            event = AssetEvent(asset_id=asset.id, extra={"from_trigger": True, "payload": payload},
                               timestamp=start + timedelta(seconds=index))
            session.add(event)
            run.consumed_asset_events.append(event)
        session.commit()
        return run

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", with_events)
    return payloads


def test_the_alert_dag_calls_the_notifier_with_level_lag_and_window(sandbox, connections, airflow_db, webhook,
                                                                    asset_events):
    from tidb_pitr.flows.rpo_alert import rpo_trigger

    cluster = Cluster(sandbox, connections, seed_days=1, rpo={"warn": "3s", "critical": "6s"},
                      notifiers=[ALERT_NOTIFIER])
    trigger = rpo_trigger(cluster.config)
    figures = trigger.assess(cluster.hook.list("backups", cluster.namespace))
    assert figures["level"] == "ok" and figures["log_backup"] == cluster.live_log().name
    # What the watcher yields when the checkpoint stands still: warn, then critical, seconds apart (one run
    # may consume both: the scheduler links every event queued since the last run).
    asset_events += [trigger._payload("warn", {**figures, "lag_seconds": 3.4}),
                     trigger._payload("critical", {**figures, "lag_seconds": 6.2})]
    run = cluster.run("rpo_alert")
    assert str(run.state) == "success"
    assert [c["path"] for c in webhook] == ["/rpo", "/rpo"]
    warn, critical = (c["json"] for c in webhook)
    assert warn["event"] == "rpo_warn" and warn["level"] == "warn" and warn["lag"] == "3.4"
    assert critical["event"] == "rpo_critical" and critical["lag"] == "6.2"
    assert warn["cluster"] == key(cluster) and warn["text"].startswith(f"RPO WARN for {key(cluster)}: ")
    assert warn["window"] == figures["window"] and " to " in warn["window"]
    assert [a["level"] for a in xcom(run, "notify")] == ["warn", "critical"]


def test_a_run_without_a_watcher_event_notifies_nobody(sandbox, connections, airflow_db, webhook, asset_events):
    cluster = Cluster(sandbox, connections, seed_days=1, notifiers=[ALERT_NOTIFIER])
    run = cluster.run("rpo_alert")
    assert str(run.state) == "success" and webhook == []
