"""The sandbox's clock routes (/sandbox/v1/clock): a manual clock stands still until advanced, runs what falls due
in time order and settles; TSOs, creationTimestamps and status times follow it; a real clock refuses advance."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from tidb_sandbox.data.tso import tso_to_dt

from .conftest import VERSION, s3_storage, unique


def _rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _status(crs: Any, ns: str, name: str) -> dict[str, Any]:
    return crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", name).get("status") or {}


def test_a_manual_clock_stands_still_until_advanced(manual_sandbox):
    before = manual_sandbox.clock()
    assert before["mode"] == "manual"
    time.sleep(0.1)  # real time passes, virtual time does not
    assert manual_sandbox.settle()["time"] == before["time"]
    after = manual_sandbox.advance(2.5)
    assert after["time"] == pytest.approx(before["time"] + 2.5)
    assert after["monotonic"] == pytest.approx(before["monotonic"] + 2.5)
    assert _rfc3339(after["now"]) > _rfc3339(before["now"])


def test_tsos_follow_the_virtual_time_and_stay_ordered(manual_sandbox):
    first = [manual_sandbox.tso() for _ in range(3)]
    now = manual_sandbox.advance(30)["time"]
    later = manual_sandbox.tso()
    assert first == sorted(set(first)) and later > first[-1]
    assert abs(tso_to_dt(later).timestamp() - now) < 0.01


def test_a_backup_runs_only_as_far_as_time_is_advanced(manual_sandbox, manual_crs, new_manual_cluster):
    ns, cluster = new_manual_cluster()
    name = unique("snap")
    body = {"metadata": {"name": name},
            "spec": {"backupType": "full", "br": {"cluster": cluster}, **s3_storage(f"{cluster}/{name}")}}
    created = manual_crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", body)
    manual_sandbox.settle()
    assert _status(manual_crs, ns, name).get("phase") == "Scheduled"  # the Job waits a step_delay
    time.sleep(0.2)
    manual_sandbox.settle()
    assert _status(manual_crs, ns, name).get("phase") == "Scheduled"  # real time moves nothing
    start = manual_sandbox.clock()["time"]
    manual_sandbox.advance(1.0)  # step delays (0.05 s) and the backup's 0.3 s, each in turn
    status = _status(manual_crs, ns, name)
    assert status["phase"] == "Complete", status
    assert _rfc3339(created["metadata"]["creationTimestamp"]).timestamp() <= start
    assert int(start) <= _rfc3339(status["timeCompleted"]).timestamp() <= start + 1.0  # whole seconds


def test_creation_timestamps_follow_the_virtual_time(manual_sandbox, manual_crs, new_manual_cluster):
    ns, cluster = new_manual_cluster(workload={})
    stamps = []
    for _ in range(3):
        name = unique("snap")
        body = {"metadata": {"name": name},
                "spec": {"backupType": "full", "br": {"cluster": cluster}, **s3_storage(f"{cluster}/{name}")}}
        made = manual_crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", body)
        stamps.append(_rfc3339(made["metadata"]["creationTimestamp"]))
        manual_sandbox.advance(1.0)
    assert stamps == sorted(set(stamps))
    assert [int((b - a).total_seconds()) for a, b in zip(stamps, stamps[1:], strict=False)] == [1, 1]


def test_bad_advances_are_refused(manual_sandbox):
    for body in ({"seconds": -1}, {"seconds": "soon"}, {}):
        with pytest.raises(AssertionError, match="HTTP 400"):
            manual_sandbox.call("POST", "/clock/advance", body)


def test_a_real_clock_refuses_advance_and_settles(sandbox):
    clock = sandbox.clock()
    assert clock["mode"] == "real" and abs(clock["time"] - time.time()) < 5
    with pytest.raises(AssertionError, match="HTTP 409.*--clock manual"):
        sandbox.advance(1)
    assert sandbox.settle()["mode"] == "real"
    assert datetime.now(UTC).timestamp() - 5 < sandbox.clock()["time"]

