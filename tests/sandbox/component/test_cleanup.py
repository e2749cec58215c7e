"""The sandbox cleans up: deleting a cluster stops what it runs, and an idle log task writes no log files."""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from .conftest import VERSION, wait_for
from .test_operator_backup import _s3_keys, storage_checkpoint


def _backups(crs: Any, ns: str) -> list[str]:
    listed = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backups")
    return [o["metadata"]["name"] for o in listed["items"]]


def test_deleting_a_cluster_stops_its_work_and_removes_its_objects(sandbox, crs, core, new_cluster):
    ns, name = new_cluster(seed_days=1)
    usage = sandbox.usage()
    assert f"{ns}/{name}" in usage["clusters"]
    assert usage["cpuSeconds"] > 0 and usage["servicesCpuSeconds"]["moto"] > 0
    assert _backups(crs, ns), "the seeded history's Backups"
    sql = urllib.parse.urlsplit(sandbox.call("GET", f"/clusters/{ns}/{name}")["sql"])
    keys_before = _s3_keys(sandbox, f"{name}/")

    gone = sandbox.delete_cluster(ns, name)

    assert gone["logTasksStopped"] is True
    assert f"tidbclusters.pingcap.com/{ns}/{name}" in gone["removed"]
    after = sandbox.usage()
    assert f"{ns}/{name}" not in after["clusters"]
    assert after["logTasks"] == usage["logTasks"] - 1
    assert after["workloads"] == usage["workloads"] - 1
    assert _backups(crs, ns) == []
    assert crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "tidbclusters")["items"] == []
    assert f"backup-{name}-tidb-secret" not in [s.metadata.name for s in core.list_namespaced_secret(ns).items]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{sandbox.url}/sandbox/v1/clusters/{ns}/{name}")
    assert err.value.code == 404
    with pytest.raises(OSError):  # its TiDB no longer answers
        socket.create_connection((sql.hostname, sql.port), timeout=2).close()
    # What its backups wrote stays in the bucket, as a deleted cluster's backups stay in real storage.
    assert set(keys_before) <= set(_s3_keys(sandbox, f"{name}/"))
    # The trackers of its log Backups end at their next poll.
    wait_for(lambda: sandbox.usage()["trackedBackups"], lambda n: n <= usage["trackedBackups"] - 1, timeout=10)
    assert sandbox.delete_cluster(ns, name) is None  # already gone: 404, which a fixture may ignore


def test_an_idle_log_task_writes_no_log_files_while_its_checkpoint_moves_on(sandbox, crs, new_cluster):
    ns, name = new_cluster(seed_days=1, workload={})  # history, a running log task, and no writes from now on
    files = sorted(k for k in _s3_keys(sandbox, f"{name}/log-backup/v1/") if "global_checkpoint" not in k)
    before = storage_checkpoint(sandbox, "s3", f"{name}/log-backup")
    log = f"{name}-log-backup"

    def checkpoint() -> int:
        obj = crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", log)
        return int((obj.get("status") or {}).get("logCheckpointTs") or 0)

    seen = checkpoint()
    wait_for(checkpoint, lambda ts: ts > seen, timeout=15)  # PD's checkpoint moves without writes ...
    wait_for(lambda: storage_checkpoint(sandbox, "s3", f"{name}/log-backup"), lambda ts: ts > before, timeout=15)
    # ... and so does the checkpoint TiKV uploads, but no data file and no meta was flushed.
    assert sorted(k for k in _s3_keys(sandbox, f"{name}/log-backup/v1/") if "global_checkpoint" not in k) == files
