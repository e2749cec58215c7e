import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.cr.api import V1_GROUP, V2_GROUP, ApiGroup
from tidb_pitr.cr.model import RestoreView
from tidb_pitr.planning import PlanError, plan_restore, recoverable_window
from tidb_pitr.planning.restore import RestoreRates
from tidb_pitr.tso import dt_to_tso, tso_iso
from tidb_sandbox.k8s.crd import load_crds
from tidb_sandbox.k8s.validation import prepare_object

from .crs import log, snapshot
from .histories import base_candidates, histories, restorable

NOW = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)
V1 = ApiGroup(V1_GROUP)
WHERE = dict(target_cluster="basic-restore", target_namespace="tidb-restore", source_cluster="basic",
             source_namespace="tidb", group=V1, name="basic-pitr-20261118053000-abc123")


def ts(days: float) -> int:
    return dt_to_tso(NOW + timedelta(days=days))


def history():
    snaps = [snapshot("s1", ts(-10), size=840 * 10**9), snapshot("s2", ts(-6), size=840 * 10**9),
             snapshot("failed", None, "Failed"), snapshot("s3", ts(-2))]
    return snaps, [log("log", ts(-8), ts(0))]


def test_picks_the_newest_base_at_or_before_the_target():
    snaps, logs = history()
    plan = plan_restore(ts(-3), snaps, logs, **WHERE)
    assert plan.base.name == "s2" and plan.log.name == "log" and plan.log_range == (ts(-8), ts(0))
    assert plan_restore(ts(-2), snaps, logs, **WHERE).base.name == "s3"  # target == commitTs
    assert plan_restore(ts(0), snaps, logs, **WHERE).base.name == "s3"  # target == checkpoint
    assert plan_restore(ts(-6), snaps, logs, **WHERE).base.name == "s2"  # target == earliest


def test_body():
    snaps, logs = history()
    plan = plan_restore(ts(-3), snaps, logs, **WHERE, labels={"tidb-pitr-airflow/run": "abc"},
                        br={"concurrency": 16}, service_account="tidb-backup-manager")
    body = plan.body
    assert body["metadata"]["name"] == "basic-pitr-20261118053000-abc123"
    assert body["spec"]["serviceAccount"] == "tidb-backup-manager"
    assert body["metadata"]["namespace"] == "tidb-restore"
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tidb-pitr-airflow",
                                          "app.kubernetes.io/component": "restore", "tidb-pitr-airflow/run": "abc"}
    spec = body["spec"]
    assert spec["restoreMode"] == "pitr" and spec["pitrRestoredTs"] == str(ts(-3))
    assert spec["s3"]["prefix"] == "backups/log"
    assert spec["pitrFullBackupStorageProvider"] == {"s3": plan.base.storage["s3"]}
    assert spec["pitrFullBackupStorageProvider"]["s3"]["prefix"] == "backups/s2"
    assert spec["br"] == {"concurrency": 16, "cluster": "basic-restore", "clusterNamespace": "tidb-restore"}
    assert RestoreView.from_cr(body).restored_ts == ts(-3)
    types = {(rt.group, rt.plural): rt for rt in load_crds()}
    for group in (V1_GROUP, V2_GROUP):
        body = plan_restore(ts(-3), snaps, logs, **{**WHERE, "group": ApiGroup(group)}).body
        prepared = prepare_object(types[(group, "restores")], body)
        assert prepared.errors == [] and prepared.unknown_fields == []
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["base"]["name"] == "s2" and data["target"]["ts"] == str(ts(-3))
    assert data["restore_name"] == "basic-pitr-20261118053000-abc123"


def test_refuses_the_source_cluster():
    snaps, logs = history()
    with pytest.raises(PlanError, match="target_cluster tidb/basic is the source cluster"):
        plan_restore(ts(-3), snaps, logs, **{**WHERE, "target_cluster": "basic", "target_namespace": "tidb"})
    # Same name in another namespace is another cluster.
    plan_restore(ts(-3), snaps, logs, **{**WHERE, "target_cluster": "basic"})


@pytest.mark.parametrize(("target", "where"), [(ts(-7), "before the earliest"), (ts(0) + 1, "after the latest"),
                                               (ts(1), "after the latest")])
def test_refuses_targets_outside_the_window(target, where):
    snaps, logs = history()
    with pytest.raises(PlanError) as err:
        plan_restore(target, snaps, logs, **WHERE)
    message = str(err.value)
    # Reason first, then the window in plain ISO times (this line becomes the run's note).
    assert message.startswith(f"{tso_iso(target)} is {where}"), message
    window = recoverable_window(snaps, logs)
    assert message.endswith(f"the recoverable window is {window.brief()}") and "T" in window.brief()
    assert window.brief().startswith(tso_iso(ts(-6)).replace(".000Z", "Z") + " to " + tso_iso(ts(0))[:19])


def test_refuses_a_target_in_a_gap_and_without_window():
    snaps = [snapshot("s1", ts(-20)), snapshot("s3", ts(-6))]
    logs = [log("old", ts(-21), ts(-10), phase="Stopped"), log("new", ts(-8), ts(0))]
    with pytest.raises(PlanError, match="inside a gap between log backups; .*, gap "):
        plan_restore(ts(-7), snaps, logs, **WHERE)
    assert plan_restore(ts(-12), snaps, logs, **WHERE).log.name == "old"
    with pytest.raises(PlanError, match="no log backup has started"):
        plan_restore(ts(-7), snaps, [], **WHERE)


def test_base_override():
    snaps, logs = history()
    assert plan_restore(ts(-1), snaps, logs, **WHERE, base_override="s2").base.name == "s2"
    for name, match in [("nope", "not found"), ("failed", "not Complete"), ("s3", "newer than the target"),
                        ("s1", "outside the range")]:
        with pytest.raises(PlanError, match=match):
            plan_restore(ts(-3), snaps, logs, **WHERE, base_override=name)


def test_estimate():
    snaps, logs = history()
    plan = plan_restore(ts(-5), snaps, logs, **WHERE)  # 840 GB at 280 GB/h x 3 TiKV = 1 h
    assert plan.estimated == timedelta(hours=1) and not plan.estimate.complete
    assert plan.estimate.describe().startswith("at least about 1h (snapshot 840.0 GB)")
    assert "log volume to replay (not read from storage)" in plan.estimate.describe()
    plan = plan_restore(ts(-5), snaps, logs, **WHERE, log_volume=(90_000_000_000, 120))  # 90 GB at 30 GB/h x 3
    assert plan.estimated == timedelta(hours=2) and plan.estimate.complete
    assert plan.estimate.describe() == "about 2h (snapshot 840.0 GB, log 90.0 GB in 120 files)"
    assert plan.to_dict()["estimate"]["log_bytes"] == 90_000_000_000
    plan = plan_restore(ts(-5), snaps, logs, **WHERE, log_volume="storage unreachable: timeout")
    assert "storage unreachable: timeout" in plan.estimate.describe()
    plan = plan_restore(ts(-1), snaps, logs, **WHERE, tikv_count=1, log_volume=(0, 0))
    assert plan.estimated == timedelta(0) and "no backupSize" in plan.estimate.describe()
    faster = RestoreRates(snapshot=2 * 280e9, log=2 * 30e9)
    plan = plan_restore(ts(-5), snaps, logs, **WHERE, log_volume=(90_000_000_000, 1), rates=faster)
    assert plan.estimated == timedelta(hours=1)


@settings(max_examples=150, deadline=None)
@given(histories(), st.floats(-0.05, 1.05), st.data())
def test_restore_invariants(history, fraction, data):
    window = recoverable_window(history.snapshots, history.logs)
    low = min(v.commit_ts or 0 for v in history.snapshots + history.logs if v.commit_ts) - (86400000 << 18)
    high = max(v.checkpoint_ts or 0 for v in history.logs) + (86400000 << 18)
    target = low + int((high - low) * fraction)
    if data.draw(st.booleans()) and window.base_snapshots:  # also aim exactly at commitTs / checkpoint edges
        edge = data.draw(st.sampled_from([v.commit_ts for v in history.snapshots if v.commit_ts]
                                         + [v.checkpoint_ts for v in history.logs]))
        target = edge + data.draw(st.sampled_from([-1, 0, 1]))
    ok = restorable(target, history.snapshots, history.logs)
    try:
        plan = plan_restore(target, history.snapshots, history.logs, **WHERE)
    except PlanError:
        assert not ok and not window.contains(target)
        return
    assert ok and window.contains(target)
    assert plan.base.commit_ts is not None and plan.base.commit_ts <= target
    assert plan.base.phase == "Complete" and not plan.base.deleting
    assert plan.log_range[0] <= plan.base.commit_ts and target <= plan.log_range[1]
    # and it is the newest usable base: the shortest log replay
    assert plan.base.commit_ts == max(v.commit_ts or 0 for v in base_candidates(target, history.snapshots,
                                                                                 history.logs))
