"""What the RPO watcher makes of a namespace's Backup CRs (whose lag, which level), what it imports at parse time,
and the bytes retention reports deleted: no I/O."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tidb_pitr.triggers.rpo import RpoLagTrigger
from tidb_pitr.tso import dt_to_tso

from .crs import backup_cr

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _trigger() -> RpoLagTrigger:
    return RpoLagTrigger(kubernetes_conn_id="k8s", api_group="pingcap.com", namespace="tidb", tidb_cluster="basic",
                         cluster="tidb/basic", warn_seconds=3.0, critical_seconds=6.0, starting_grace_seconds=5.0)


def _ago(seconds: float) -> int:
    return dt_to_tso(NOW - timedelta(seconds=seconds))


def _log(name: str, *, started: float, checkpoint: float | None, **kw) -> dict:
    return backup_cr(name, mode="log", phase=kw.pop("phase", "Running"), commit_ts=_ago(started),
                     checkpoint_ts=None if checkpoint is None else _ago(checkpoint), **kw)


def test_the_live_logs_lag_sets_the_level():
    snap = backup_cr("snap", commit_ts=_ago(3000), size=10)
    ok = _trigger().assess([snap, _log("log", started=3600, checkpoint=2)], NOW)
    assert ok["level"] == "ok" and ok["lag_seconds"] == 2 and ok["log_backup"] == "log"
    assert " to " in ok["window"]  # the window in brief, from the same CRs
    assert _trigger().assess([snap, _log("log", started=3600, checkpoint=4)], NOW)["level"] == "warn"
    assert _trigger().assess([snap, _log("log", started=3600, checkpoint=8)], NOW)["level"] == "critical"


def test_no_checkpoint_is_starting_for_the_grace_then_critical():
    assert _trigger().assess([_log("log", started=1, checkpoint=None)], NOW)["level"] == "starting"
    late = _trigger().assess([_log("log", started=10, checkpoint=None)], NOW)
    assert late["level"] == "critical" and late["lag_seconds"] is None


def test_no_live_log_goes_by_the_newest_one_and_no_log_at_all_is_critical():
    stopped = _trigger().assess([_log("log", started=3600, checkpoint=100, phase="Stopped")], NOW)
    assert stopped["level"] == "critical" and stopped["lag_seconds"] == 100 and stopped["log_phase"] == "Stopped"
    nothing = _trigger().assess([], NOW)
    assert nothing["level"] == "critical" and nothing["log_backup"] is None


def test_other_clusters_in_the_namespace_do_not_count():
    mine = _log("log", started=3600, checkpoint=1)
    theirs = _log("other-log", started=60, checkpoint=500, cluster="other")
    assert _trigger().assess([theirs, mine], NOW)["log_backup"] == "log"


def test_the_alert_dag_module_does_not_load_the_kubernetes_clients():
    # Every parse of the DAG file builds the asset's watcher: the clients (a second of imports) wait for run().
    import subprocess
    import sys

    code = ("import sys; import tidb_pitr.flows.rpo_alert; "
            "print(sorted(m for m in ('kubernetes', 'kubernetes_asyncio') if m in sys.modules))")
    plugins = str(Path(__file__).resolve().parents[3] / "plugins")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugins, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env=env)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_retention_counts_the_bytes_of_the_planned_snapshots_that_are_gone():
    from tidb_pitr.cr.inventory import inventory_of
    from tidb_pitr.flows.tasks.retention import deleted_bytes

    planned = {"deletions": [{"backup_name": "a"}, {"backup_name": "b"}, {"backup_name": None, "prefix": "orphan"}],
               "sizes": {"a": 100, "b": 20}}
    left = inventory_of([backup_cr("b", commit_ts=_ago(10)), backup_cr("c", commit_ts=_ago(5))], "basic", "tidb")
    assert deleted_bytes(planned, left) == 100  # b is still there: not counted
    going = inventory_of([backup_cr("b", commit_ts=_ago(10), deleting=True)], "basic", "tidb")
    assert deleted_bytes(planned, going) == 120  # a CR held by its finalizer is deleted
    assert deleted_bytes(None, left) == 0 and deleted_bytes({"deletions": [], "sizes": {}}, left) == 0


def test_alert_messages_say_what_is_lost():
    trigger = _trigger()
    late = trigger.assess([_log("log", started=3600, checkpoint=8)], NOW)
    payload = trigger._payload("critical", late)
    assert payload["status"] == payload["level"] == "critical" and payload["cluster"] == "tidb/basic"
    assert payload["message"].startswith("RPO CRITICAL for tidb/basic: checkpoint lag 8s is over 6s; a restore "
                                         "now loses what was written since 20")
    none = trigger._payload("critical", trigger.assess([], NOW))
    assert "no log checkpoint (no log backup at all)" in none["message"] and none["lag_seconds"] is None
    back = trigger._payload("recovered", trigger.assess([_log("log", started=3600, checkpoint=1)], NOW))
    assert back["message"] == "RPO recovered for tidb/basic: checkpoint lag 1s"
