"""The TiDB PITR page's API payload (ui/payload.py, ui/model.py): every time in it is an ISO-8601 time with a
timezone or null, a restore by TSO shows its time with the TSO kept apart, and it validates against the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.config import ClusterConfig
from tidb_pitr.flows.tasks.guard_status import _retention
from tidb_pitr.planning import plan_retention, recoverable_window
from tidb_pitr.planning.targets import target_state
from tidb_pitr.planning.timeline import build_timeline, last_snapshot, window_with_causes
from tidb_pitr.tso import dt_to_tso, tso_iso, tso_str
from tidb_pitr.ui.model import ClustersResponse
from tidb_pitr.ui.payload import cluster_payload, response, restore_entry, split_restores

from .crs import log, snapshot

T = datetime(2026, 11, 21, tzinfo=UTC)
WEEK = timedelta(days=7)
CLUSTER = ClusterConfig.model_validate({
    "name": "demo1", "namespace": "test1", "api_group": "pingcap.com",
    "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "conn_id": "s3"},
    "restore_targets": ["demo1-restore"]})
# Keys whose string value is a time, wherever they are in the payload; `from`/`to` when they are a string.
TIME_KEYS = {"now", "time", "commit_time", "generated_at", "restore_time", "written", "run_end", "start", "end"}


def ts(days: float) -> int:
    return dt_to_tso(T + timedelta(days=days))


def guard_status() -> dict[str, Any]:
    """A status as the guard publishes it (flows/tasks/guard_status.py), from planning over CR views."""
    snaps, logs = [snapshot("s1", ts(-6)), snapshot("s2", ts(-2))], [log("pitr-log", ts(-6.5), ts(0))]
    window = recoverable_window(snaps, logs)
    plan = plan_retention(snaps, logs, now=T, retention=timedelta(days=3), min_snapshots=1)
    return {"version": 1, "cluster": "test1/demo1", "generated_at": "2026-11-21T00:00:00.123456Z",
            "retention_seconds": WEEK.total_seconds(), "window": window_with_causes(window),
            "timeline": build_timeline(snaps, logs, now=T, retention=WEEK, window=window).to_dict(),
            "rpo": {"log_backup": "pitr-log", "log_phase": "Running", "maintenance_pause": None,
                    "checkpoint": {"ts": tso_str(ts(0)), "time": tso_iso(ts(0))},
                    "lag_seconds": 1.0, "level": "ok", "warn_seconds": 600.0, "critical_seconds": 1800.0,
                    "cause": None},
            "last_snapshot": last_snapshot(snaps, T), "retention_plan": _retention(plan),
            "targets": [{"value": "test1/demo1-restore", **target_state(scratch=False, restoring=[],
                                                                         user_objects=["demo.t1", "shop"])}],
            "source_tables": ["shop.orders", "crm.accounts"]}  # the restore form's suggestions (over SQL)


def restore_run(conf: dict[str, Any]) -> dict[str, Any]:
    return restore_entry(run_id="manual__2026-11-21T00:10:00+00:00", state="success", note=None,
                         start=T + timedelta(minutes=10), end=T + timedelta(minutes=12), conf=conf)


# The guard run that published a status (a status always comes with one: the response model refuses it alone).
PUBLISHED = {"run_id": "scheduled__2026-11-21T00:00:00+00:00", "run_state": "success",
             "run_end": "2026-11-21T00:00:02Z", "written": "2026-11-21T00:00:01Z"}


def payload(restore: dict[str, Any] | None, status: Any = None, drill: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = cluster_payload(CLUSTER, now=T + timedelta(minutes=20), published=PUBLISHED,
                            status=guard_status() if status is None else status, drill=drill, restore=restore)
    return response(T + timedelta(minutes=20), [entry])


def times(value: Any, key: str | None = None) -> Iterator[tuple[str, Any]]:
    """(key, value) of every time field in the payload."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from times(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from times(v, key)
    elif key in TIME_KEYS or (key in ("from", "to") and isinstance(value, str)):
        yield key, value


def is_iso_with_zone(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None and parsed.utcoffset() is not None


def assert_times_readable(body: dict[str, Any]) -> list[tuple[str, Any]]:
    found = list(times(body))
    bad = [(k, v) for k, v in found if v is not None and not is_iso_with_zone(v)]
    assert not bad, bad
    ClustersResponse.model_validate(body)  # the model the bundle is written against
    json.dumps(body)  # as sent
    return found


def test_a_restore_by_tso_shows_its_time_and_keeps_the_tso_apart():
    """The state `make demo` leaves: its restore was triggered with `restore_tso`."""
    point = ts(-1)
    body = payload(restore_run({"restore_tso": str(point), "target_cluster": "test1/demo1-restore"}))
    found = assert_times_readable(body)
    assert len([v for _, v in found if v]) > 20  # window, timeline, rpo, snapshots, plan, run times
    assert body["clusters"][0]["status"] == json.loads(json.dumps(guard_status()))  # the model passes it through
    last = body["clusters"][0]["last_restore"]
    assert last["restore_time"] == tso_iso(point) and last["restore_ts"] == str(point)
    assert last["target_cluster"] == "test1/demo1-restore" and last["dry_run"] is False
    assert last["start"] == "2026-11-21T00:10:00Z" and last["end"] == "2026-11-21T00:12:00Z"


def test_a_restore_by_time_shows_that_time_with_its_tso():
    body = payload(restore_run({"restore_time": "2026-11-20T08:30:00+08:00", "target_cluster": "test1/x"}))
    assert_times_readable(body)
    last = body["clusters"][0]["last_restore"]
    assert last["restore_time"] == "2026-11-20T00:30:00.000Z"
    assert last["restore_ts"] == str(dt_to_tso(datetime(2026, 11, 20, 0, 30, tzinfo=UTC)))


@pytest.mark.parametrize("conf", [
    {"restore_tso": "12345", "dry_run": True},  # not a TSO: the run refuses it
    {"restore_time": "2026-11-20 08:30:00"},  # no timezone: refused too
    {"restore_time": "yesterday", "restore_tso": str(ts(-1))},
    {"restore_time": None, "restore_tso": None},
    {},
])
def test_a_refused_or_dry_run_shows_no_unreadable_time(conf: dict[str, Any]):
    body = payload(restore_run(conf))
    assert_times_readable(body)
    last = body["clusters"][0]["last_restore"]
    assert last["restore_time"] is None and last["restore_ts"] is None
    assert last["dry_run"] is (conf.get("dry_run") is True)


def test_a_dry_run_by_tso_is_marked_and_shows_its_time():
    body = payload(restore_run({"restore_tso": str(ts(-1)), "dry_run": True}))
    last = body["clusters"][0]["last_restore"]
    assert last["dry_run"] is True and last["restore_time"] == tso_iso(ts(-1))


def test_unreadable_published_times_come_out_null():
    status = guard_status()
    status["generated_at"] = "436562003524714497"  # a TSO where a time belongs
    status["window"]["earliest"]["time"] = "2026-13-45T99:00:00Z"
    status["timeline"]["marks"][0]["time"] = "Sat, 21 Nov 2026 00:00:00 GMT"
    status["last_snapshot"]["time"] = "2026-11-21T00:00:00"  # no zone
    status["retention_plan"]["delete"] = [{"name": "s0", "commit_ts": "1", "commit_time": 17}]
    drill = {"run_id": "d", "run_state": "success", "run_end": "garbage", "written": None,
             "record": {"verdict": "passed", "summary": "ok", "restore_time": "436562003524714497",
                        "log_range": {"from": "nope", "to": "2026-11-21T00:00:00Z"}}}
    body = payload(restore_run({}), status=status, drill=drill)
    assert_times_readable(body)
    entry = body["clusters"][0]
    assert entry["status"]["generated_at"] is None and entry["age_seconds"] is None
    assert entry["status"]["window"]["earliest"] == {"ts": status["window"]["earliest"]["ts"], "time": None}
    assert entry["status"]["timeline"]["marks"][0]["time"] is None
    assert entry["status"]["last_snapshot"]["time"] is None
    assert entry["status"]["retention_plan"]["delete"][0]["commit_time"] is None
    assert entry["last_drill"]["run_end"] is None and entry["last_drill"]["record"]["restore_time"] is None
    assert entry["last_drill"]["record"]["log_range"] == {"from": None, "to": "2026-11-21T00:00:00Z"}


def test_a_status_of_another_shape_is_named_not_sent():
    entry = payload(None, status={"window": "everything"})["clusters"][0]
    assert entry["status"] is None and "window" in entry["status_error"]
    entry = payload(None, status=["not", "a", "status"])["clusters"][0]
    assert entry["status"] is None and "list" in entry["status_error"]


# What the restore form (or the REST API) can put in a restore run's conf: a time or a TSO, valid or not.
_TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC))
_TSO = st.integers(min_value=0, max_value=(1 << 64) + 5)
_VALUE = st.one_of(
    st.none(), st.text(max_size=40), _TIMES.map(lambda d: d.isoformat()), _TIMES.map(lambda d: d.isoformat()[:19]),
    _TIMES.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S+0800")), _TSO.map(str), _TSO, st.floats(), st.booleans(),
    st.lists(st.integers(), max_size=2))
_CONF = st.one_of(
    st.fixed_dictionaries({}, optional={"restore_time": _VALUE, "restore_tso": _VALUE, "target_cluster": _VALUE,
                                        "dry_run": _VALUE, "verify": _VALUE}),
    st.none(), st.text(max_size=5))


@settings(max_examples=300, deadline=None)
@given(conf=_CONF)
def test_any_restore_conf_gives_a_payload_the_model_accepts_with_only_readable_times(conf: Any):
    body = payload(restore_entry(run_id="r", state="failed", note=None, start=None, end=None, conf=conf))
    assert_times_readable(body)
    last = body["clusters"][0]["last_restore"]
    assert (last["restore_time"] is None) == (last["restore_ts"] is None)
    if last["restore_ts"] is not None:
        assert last["restore_time"] == tso_iso(int(last["restore_ts"]))


# A restore run as the page reads it: its state, conf and the states of the tasks that tell what it was.
def _run(n: int, state: str, tasks: dict[str, str], dry_run: bool = False,
         report: dict[str, Any] | None = None) -> dict[str, Any]:
    return restore_entry(run_id=f"manual__{n}", state=state, note=f"note {n}", start=T, end=T,
                         conf={"restore_tso": str(ts(-1)), "target_cluster": "test1/demo1-restore",
                               "dry_run": dry_run}, tasks=tasks, report=report)


RESTORED = {"plan": "success", "restore": "success", "verify": "skipped"}
DRY = {"plan": "success", "proceed": "success", "restore": "skipped", "verify": "skipped"}
REFUSED_TASKS = {"plan": "failed", "restore": "upstream_failed", "verify": "upstream_failed"}
_KINDS = {
    "restore": lambda n: _run(n, "success", RESTORED, report={"duration_seconds": 95.0, "verify": "not requested"}),
    "failed restore": lambda n: _run(n, "failed", {"plan": "success", "restore": "failed"}),
    "dry run": lambda n: _run(n, "success", DRY, dry_run=True),
    "refused": lambda n: _run(n, "failed", REFUSED_TASKS),
    "running": lambda n: _run(n, "running", {"plan": "success", "restore": "deferred"}),
    "stopped": lambda n: _run(n, "failed", {"plan": "success", "wait_for_checkpoint": "failed",
                                            "restore": "upstream_failed"}),
}


def test_the_last_restore_is_the_real_one_and_dry_runs_and_refusals_are_attempts():
    """The issue's state: a real restore, then a dry run and a refusal after it (newest first)."""
    runs = [_KINDS["refused"](3), _KINDS["dry run"](2), _KINDS["restore"](1)]
    last, attempts = split_restores(runs)
    body = response(T, [cluster_payload(CLUSTER, now=T, published=None, status=None, drill=None, restore=last,
                                        attempts=attempts)])
    entry = body["clusters"][0]
    assert entry["last_restore"]["run_id"] == "manual__1" and entry["last_restore"]["kind"] == "restore"
    assert entry["last_restore"]["duration"] == "1m35s" and entry["last_restore"]["verified"] == "not requested"
    assert [(a["run_id"], a["kind"]) for a in entry["last_attempts"]] == [("manual__3", "refused"),
                                                                         ("manual__2", "dry run")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(_KINDS)), max_size=12))
def test_no_dry_run_refusal_or_running_run_is_ever_the_last_restore(kinds: list[str]):
    runs = [_KINDS[kind](len(kinds) - i) for i, kind in enumerate(kinds)]  # newest first
    last, attempts = split_restores(runs)
    made_a_cr = [r for r, kind in zip(runs, kinds, strict=True) if kind in ("restore", "failed restore")]
    assert last == (made_a_cr[0] if made_a_cr else None)  # the newest that made a Restore CR and finished
    assert all(a["kind"] != "restore" for a in attempts) and len(attempts) <= 3
    others = [r for r in runs if r not in made_a_cr]
    assert attempts == others[:3]  # newest first


def test_a_target_can_be_verified_only_when_both_sides_have_sql():
    cluster = CLUSTER.model_copy(update={"sql_conn_id": "src"})
    with_sql = ClusterConfig.model_validate({**CLUSTER.model_dump(mode="json", exclude_unset=True),
                                             "sql_conn_id": "src",
                                             "restore_targets": ["demo1-plain", {"name": "demo1-sql",
                                                                                 "sql_conn_id": "tgt"}]})
    entry = cluster_payload(with_sql, now=T, published=None, status=None, drill=None, restore=None)
    assert [(t["value"], t["verify"]) for t in entry["restore_targets"]] == [("test1/demo1-plain", False),
                                                                            ("test1/demo1-sql", True)]
    assert all(not t["verify"] for t in cluster_payload(cluster, now=T, published=None, status=None, drill=None,
                                                        restore=None)["restore_targets"])


def test_targets_carry_their_published_state_and_scratch_ones_are_marked_never_preselected():
    """The drill's scratch cluster is listed as scratch whatever was published; the form preselects the first
    target published as empty, and nothing when none is (the user chooses)."""
    cluster = ClusterConfig.model_validate({**CLUSTER.model_dump(mode="json", exclude_unset=True), "restore_targets": [
        {"name": "scratch1", "scratch": True, "sql_conn_id": "s"}, "full1", "empty1"]})
    status = guard_status()
    status["targets"] = [
        {"value": "test1/scratch1", **target_state(scratch=False, restoring=[], user_objects=[])},
        {"value": "test1/full1", **target_state(scratch=False, restoring=[], user_objects=["shop.t"])},
        {"value": "test1/empty1", **target_state(scratch=False, restoring=[], user_objects=[])}]
    entry = cluster_payload(cluster, now=T, published=PUBLISHED, status=status, drill=None, restore=None,
                            schedules=({"retention": "2026-11-22T02:00:00Z", "drill": None}, ["drill"]))
    body = response(T, [entry])["clusters"][0]
    states = {t["value"]: (t["scratch"], t["state"], t["detail"]) for t in body["restore_targets"]}
    assert states == {"test1/scratch1": (True, "scratch", "the drill's scratch cluster: drills only"),
                      "test1/full1": (False, "holds", "holds 1 database"), "test1/empty1": (False, "empty", "empty")}
    assert body["preselected_target"] == "test1/empty1"
    assert body["next_runs"] == {"retention": "2026-11-22T02:00:00Z", "drill": None}
    assert body["paused_dags"] == ["drill"]
    assert body["status"]["last_snapshot"]["name"] == "s2" and body["durations"]["last_snapshot_size"] is None
    status["targets"] = status["targets"][:2]  # the empty one not published (yet): nothing preselected
    assert cluster_payload(cluster, now=T, published=PUBLISHED, status=status, drill=None,
                           restore=None)["preselected_target"] is None


def test_the_check_rows_come_failed_first_and_a_row_the_page_cannot_read_counts_as_failed():
    """The check DAG's newest XCom as the card shows it: FAILED, then WARNING, then OK, with when they were
    measured; a row whose status is none of the three is not an OK the page may show."""
    found = {"run_id": "manual__c", "run_state": "failed", "run_end": None, "written": None, "value": {
        "at": T.timestamp(), "rows": [
            {"name": "storage probe", "status": "OK", "value": "written, read back, deleted", "action": ""},
            {"name": "clock skew", "status": "WARNING", "value": "PD 7 s ahead", "action": "sync NTP"},
            {"name": "rbac backups", "status": "FAILED", "value": "delete not granted", "action": "grant it"},
            {"name": "garbled", "status": "GREEN", "value": "?"}]}}
    entry = cluster_payload(CLUSTER, now=T, published=None, status=None, drill=None, restore=None, checks=found)
    checks = response(T, [entry])["clusters"][0]["checks"]
    assert [(r["name"], r["status"]) for r in checks["rows"]] == [
        ("rbac backups", "FAILED"), ("garbled", "FAILED"), ("clock skew", "WARNING"), ("storage probe", "OK")]
    assert "unreadable row" in checks["rows"][1]["value"]
    assert checks["at"] == "2026-11-21T00:00:00Z" and checks["run_id"] == "manual__c"
    assert cluster_payload(CLUSTER, now=T, published=None, status=None, drill=None, restore=None)["checks"] is None
