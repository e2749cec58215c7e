"""Metrics and RPO alerts on the sandbox: the gauges a real StatsD listener receives from the guard, retention
and a restore, each tagged with its cluster; and the rpo_alert DAG, run on an asset event the way the
scheduler runs it, calling a real webhook with the level and the lag."""

from __future__ import annotations

import re
import socket

import pytest
from tidb_pitr import metrics

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
    deleted = set(sizes) - {v.name for v in cluster.snapshots()}
    assert deleted and deleted == {d["backup_name"] for d in xcom(run, "plan")["deletions"] if d["backup_name"]}
    sent = gauges(tagged_statsd)[key(cluster)]
    assert sent[metrics.RETENTION_DELETED_BYTES] == sum(sizes[n] for n in deleted) > 0

    window = cluster.window()
    run = cluster.run("restore", run_conf={"restore_tso": str((window.earliest_ts + window.latest_ts) // 2),
                                           "target_cluster": f"{cluster.namespace}/{target}"})
    assert str(run.state) == "success"
    report = xcom(run, "report")
    sent = gauges(tagged_statsd)[key(cluster)]
    assert sent[metrics.RESTORE_SECONDS] == pytest.approx(report["duration_seconds"]) and report["duration_seconds"] > 0


