"""The BackupSchedule GC's log truncate as upstream writes it (release-1.6 `pkg/controller/backup_control.go`
`TruncateLogBackup`): a full Update of the lister's copy. It overwrites any value, and a copy made stale by
another write conflicts and is dropped, not retried. In process: the store, the controller, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from tidb_sandbox.data.tso import dt_to_tso
from tidb_sandbox.k8s.crd import load_crds
from tidb_sandbox.k8s.store import Store
from tidb_sandbox.operator.backupschedule import BackupScheduleController, schedule_labels

NS, SCHEDULE = "ns", "bs"


def _setup() -> tuple[Store, Any, BackupScheduleController]:
    store = Store()
    for rt in load_crds():
        store.register(rt)
    rt = store.type_for("pingcap.com", "backups")
    return store, rt, BackupScheduleController(SimpleNamespace(store=store, rt=store.type_for))  # type: ignore[arg-type]


def _backup(store: Store, rt: Any, name: str, hours_ago: float, status: dict[str, Any], **spec: Any) -> None:
    created = (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"metadata": {"name": name, "labels": schedule_labels(SCHEDULE)},
            "spec": {"br": {"cluster": "tc"}, "s3": {"provider": "aws", "bucket": "b", "prefix": name}, **spec}}
    obj = store.create(rt, NS, body, creation_timestamp=created)
    store.update(rt, NS, name, {**obj, "status": status}, subresource="status")


def _history(store: Store, rt: Any) -> int:
    """A log from 12 h ago to now and snapshots 10, 8, 6 and 1 h old: with maxReservedTime 4h the GC deletes the
    first two and truncates the log to the third's commitTs."""
    now = datetime.now(UTC)
    _backup(store, rt, "log-bs", 12, {"phase": "Running", "commitTs": str(dt_to_tso(now - timedelta(hours=12))),
                                      "logCheckpointTs": str(dt_to_tso(now))},
            backupMode="log", logSubcommand="log-start")
    for hours in (10, 8, 6, 1):
        _backup(store, rt, f"snap-{hours}h", hours, {
            "phase": "Complete", "commitTs": str(dt_to_tso(now - timedelta(hours=hours))),
            "conditions": [{"type": "Complete", "status": "True"}]}, backupType="full")
    return dt_to_tso(now - timedelta(hours=6))


def _gc(controller: BackupScheduleController) -> None:
    bs = {"metadata": {"name": SCHEDULE, "namespace": NS}, "spec": {"maxReservedTime": "4h"}}
    controller._gc(bs, {})


def test_the_truncate_overwrites_a_larger_value_set_by_someone_else() -> None:
    store, rt, controller = _setup()
    base = _history(store, rt)
    log = store.find(rt, NS, "log-bs")
    store.update(rt, NS, "log-bs", {**log, "spec": {**log["spec"], "logTruncateUntil": str(base * 2)}})
    _gc(controller)
    assert store.find(rt, NS, "log-bs")["spec"]["logTruncateUntil"] == str(base)
    assert store.find(rt, NS, "snap-10h") is None and store.find(rt, NS, "snap-6h") is not None


def test_a_write_between_the_list_and_the_truncate_makes_it_conflict_and_it_is_not_retried() -> None:
    store, rt, controller = _setup()
    _history(store, rt)

    def tracker_writes(event_rt: Any, event: Any) -> None:  # e.g. the log tracker's checkpoint, as the GC deletes
        if event.type == "DELETED" and event.obj["metadata"]["name"] == "snap-10h":
            log = store.find(rt, NS, "log-bs")
            store.update(rt, NS, "log-bs", {**log, "metadata": {**log["metadata"], "annotations": {"seen": "1"}}})

    store.add_listener(tracker_writes)
    _gc(controller)
    assert store.find(rt, NS, "snap-8h") is None, "the deletes went through"
    assert "logTruncateUntil" not in store.find(rt, NS, "log-bs")["spec"], "the stale copy conflicted"
    _gc(controller)  # the next sync: only snap-6h is expired now, it is the base, so nothing is truncated
    assert "logTruncateUntil" not in store.find(rt, NS, "log-bs")["spec"]
