"""docker-compose.yaml's production shape, run without Docker (scripts/production_stack.py): PostgreSQL, Redis,
api-server, scheduler, dag-processor, triggerer and two Celery workers as processes of their own, with the
environment the Compose file gives each service, against the sandbox. The guard, a snapshot, retention and a
restore run end to end through the REST API, deferrable, and then again through faults: a component killed or
restarted at the worst moment, the Kubernetes API failing and cutting watches, PostgreSQL restarted.

One stack for the module (it takes a minute or two to start); each fault test leaves it healthy for the next.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airflow_stack import CLUSTER, FAST, NAMESPACE, TARGET
from production_stack import FINISHED, ProductionStack, run_stamp

TARGET_2, TARGET_3 = f"{TARGET}-2", f"{TARGET}-3"
SECOND = f"{CLUSTER}-002"
pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]


def _say(text: str) -> None:
    print(f"[production stack] {text}", flush=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    # demo1-002: a second cluster with history of its own, for retention under a worker kill (demo1's expired
    # snapshots are gone after the first test). Two more restore targets: a restore needs an empty one.
    with ProductionStack(tmp_path_factory.mktemp("production-stack"), clusters=2,
                         extra_targets=(TARGET_2, TARGET_3), say=_say) as running:
        yield running


@pytest.fixture
def healthy(stack: ProductionStack) -> Iterator[ProductionStack]:
    """The stack healthy before the test, and again after it (whatever it broke), faults off."""
    stack.wait_healthy()
    yield stack
    stack.sandbox.clear_faults()
    stack.wait_healthy()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.5)
    return value


def made_by_run(items: list[dict[str, Any]], stamp: str) -> list[dict[str, Any]]:
    return [i for i in items if stamp in i["metadata"]["name"]]


def window(stack: ProductionStack) -> tuple[int, int]:
    """The recoverable window now, [earliest, latest] as TSOs, as the restore form would offer it."""
    import os

    from tidb_pitr.config import load_config
    from tidb_pitr.flows.tasks.guard import current_window

    os.environ.update({k: v for k, v in stack.components["scheduler"].env.items() if k.startswith("AIRFLOW_CONN_")})
    os.environ.update({k: v for k, v in stack.worker_list[0].env.items() if k.startswith("AIRFLOW_CONN_")})
    found = current_window(load_config(stack.config).clusters[0])
    return int(found["earliest"]["ts"]), int(found["latest"]["ts"])


def rows_equal_after_restore(stack: ProductionStack, restore_ts: int, target: str = TARGET) -> tuple[bool, int]:
    source = stack.sandbox.call("GET", f"/clusters/{NAMESPACE}/{CLUSTER}/rows?asOf={restore_ts}&rows=false")
    restored = stack.sandbox.call("GET", f"/clusters/{NAMESPACE}/{target}/rows?rows=false")
    return source["digest"] == restored["digest"] and source["count"] == restored["count"], source["count"]


def deferrals(stack: ProductionStack, dag_id: str, run_id: str) -> int:
    """How many times this run's tasks deferred (Airflow's audit log in the metadata DB)."""
    return stack.sql("SELECT count(*) FROM log WHERE dag_id = %s AND run_id = %s AND event = 'deferred'",
                     dag_id, run_id)[0][0]


def test_guard_snapshot_retention_restore(healthy: ProductionStack) -> None:
    stack = healthy
    guard = stack.run_scheduled("log_guard")
    assert guard["state"] == "success"

    snapshot = stack.run_scheduled("snapshot")
    assert snapshot["state"] == "success"
    made = made_by_run(stack.crs("backups"), run_stamp(snapshot))
    assert len(made) == 1, [b["metadata"]["name"] for b in made]
    assert made[0]["status"].get("phase") == "Complete"
    assert deferrals(stack, stack.dag_id("snapshot"), snapshot["dag_run_id"]) >= 1  # waited in the triggerer

    retention = stack.run_scheduled("retention")
    assert retention["state"] == "success"
    plan = stack.xcom(stack.dag_id("retention"), retention["dag_run_id"], "plan") or {}
    assert plan.get("deletions"), plan

    earliest, latest = window(stack)
    restore_ts = random.randint(earliest, latest)
    restores_before = len(stack.crs("restores"))
    restore = stack.run_dag("restore", {"restore_tso": str(restore_ts), "target_cluster": f"{NAMESPACE}/{TARGET}"})
    assert restore["state"] == "success"
    assert len(stack.crs("restores")) == restores_before + 1
    match, compared = rows_equal_after_restore(stack, restore_ts)
    assert match and compared > 0


# --- faults ----------------------------------------------------------------------------------------------------


def task_rows(stack: ProductionStack, dag_id: str, run_id: str) -> list[tuple[Any, ...]]:
    """(task_id, map_index, state, try_number, pid) of a run's task instances, from the metadata DB."""
    return stack.sql("SELECT task_id, map_index, state, try_number, pid FROM task_instance "
                     "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", dag_id, run_id)


def wait_deferred(stack: ProductionStack, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """Until one of the run's tasks (or `task_id`) is deferred, waiting in a triggerer; its task id."""
    def deferred() -> str | None:
        return next((r[0] for r in task_rows(stack, dag_id, run_id)
                     if r[2] == "deferred" and task_id in (None, r[0])), None)

    return wait_for(deferred, f"{dag_id} {run_id}: a deferred task")


def exactly_once(stack: ProductionStack, dag_id: str, run_id: str) -> int:
    """Every deferral of the run was answered by exactly one trigger event, over all triggerers; how many."""
    deferred, fired = deferrals(stack, dag_id, run_id), stack.fired_events(dag_id, run_id)
    assert fired == deferred, f"{dag_id} {run_id}: {deferred} deferrals, {fired} trigger events"
    return deferred


def test_triggerer_killed_while_a_snapshot_waits(healthy: ProductionStack) -> None:
    stack = healthy
    dag_id = stack.dag_id("snapshot")
    run_id = stack.trigger(dag_id)
    wait_deferred(stack, dag_id, run_id, "snapshot")
    stack.kill_triggerer()
    assert not stack.live_triggerers()
    stack.start_triggerer()  # a new one takes the orphaned trigger over once the dead one's heartbeat is stale
    run = stack.wait_run(dag_id, run_id)
    assert run["state"] == "success"
    made = made_by_run(stack.crs("backups"), run_stamp(run))
    assert len(made) == 1 and made[0]["status"]["phase"] == "Complete", [b["metadata"]["name"] for b in made]


def test_two_triggerers_fire_every_wait_once(healthy: ProductionStack) -> None:
    stack = healthy
    extra = stack.start_triggerer()
    assert len(stack.live_triggerers()) == 2
    try:
        runs = [(stack.dag_id(kind), stack.trigger(stack.dag_id(kind))) for kind in ("log_guard", "snapshot")]
        waits = 0
        for dag_id, run_id in runs:
            assert stack.wait_run(dag_id, run_id)["state"] == "success"
            waits += exactly_once(stack, dag_id, run_id)
        assert waits >= 1  # the snapshot's wait at least (a healthy guard may find nothing to wait for)
        snapshot = stack.run_state(*runs[1])
        assert len(made_by_run(stack.crs("backups"), run_stamp(snapshot))) == 1
    finally:
        stack.triggerers[extra].stop()


def test_check_without_a_triggerer_fails_its_triggerer_row(healthy: ProductionStack) -> None:
    """The check's probe defers; with no triggerer it never comes back, the scheduler times it out, and `check`
    (all_done) says so in its FAILED row. Its first run, on unpause, is taken with the triggerer up."""
    stack = healthy
    dag_id, first = stack.start_scheduled("check")
    assert stack.wait_run(dag_id, first, timeout=300)["state"] in FINISHED  # not queued ahead of the next run
    stack.kill_triggerer()
    assert not stack.live_triggerers()
    try:
        run_id = stack.trigger(dag_id, {"observe_seconds": 1, "triggerer_wait_seconds": 5})
        run = stack.wait_run(dag_id, run_id, timeout=300)
    finally:
        stack.start_triggerer()
    assert run["state"] == "failed"
    found = stack.api.xcom(dag_id, run_id, "check", key="tidb_pitr_check") or {}
    rows = {r["name"]: r for r in found.get("rows") or []}
    assert rows["triggerer"]["status"] == "FAILED", rows.get("triggerer")
    assert "did not resume within 5s" in rows["triggerer"]["value"] and "airflow triggerer" in rows[
        "triggerer"]["action"]


def test_worker_killed_during_retention_deletions(healthy: ProductionStack) -> None:
    stack = healthy
    before = {b["metadata"]["name"] for b in stack.crs("backups")}
    # Each deletion's clean job takes a few seconds (its steps 3 s apart, not 0.5 s), so the worker is killed while
    # it still holds one: at load 12 a deletion seen running had ended before the kill, and nothing was retried.
    stack.sandbox.set_config(step_delay=3.0)
    try:
        # The run that starts when its DAG is switched on (the latest slot): demo1-002's first, with deletions.
        dag_id, run_id = stack.start_scheduled("retention", SECOND)
        _kill_a_deleting_worker(stack, dag_id, run_id)
    finally:
        stack.sandbox.set_config(step_delay=FAST["step_delay"])
    _deletions_done_once(stack, dag_id, run_id, before)


def _kill_a_deleting_worker(stack: ProductionStack, dag_id: str, run_id: str) -> None:
    def deleting() -> tuple[Any, ...] | None:
        return next((r for r in task_rows(stack, dag_id, run_id)
                     if r[0] == "delete_snapshot" and r[2] == "running" and r[4]), None)

    victim = wait_for(deleting, "a delete_snapshot task running on a worker")
    index = stack.worker_of(victim[4])
    stack.kill_worker(index if index is not None else 0)
    stack.start_worker(index if index is not None else 0)
    run = stack.wait_run(dag_id, run_id)
    assert run["state"] == "success", task_rows(stack, dag_id, run_id)


def _deletions_done_once(stack: ProductionStack, dag_id: str, run_id: str, before: set[str]) -> None:
    plan = stack.xcom(dag_id, run_id, "plan")
    planned = {d["backup_name"] for d in plan["deletions"] if d.get("backup_name")}
    assert planned and planned <= before
    after = {b["metadata"]["name"] for b in stack.crs("backups")}
    assert not (planned & after), f"planned deletions still there: {planned & after}"
    kept = {name for name in before - planned if name.startswith(SECOND + "-")}
    assert kept and kept <= after, f"kept backups touched: {kept - after}"
    rows = task_rows(stack, dag_id, run_id)
    assert all(r[2] == "success" for r in rows if r[0] == "delete_snapshot"), rows
    retried = [r for r in rows if r[0] == "delete_snapshot" and r[3] > 1]
    assert retried, f"no deletion was retried after the kill: {rows}"
    finish = stack.xcom(dag_id, run_id, "finish") or {}
    assert not finish.get("failed_tasks"), finish


def test_scheduler_restarted_during_a_restore(healthy: ProductionStack) -> None:
    stack = healthy
    earliest, latest = window(stack)
    restore_ts = random.randint(earliest, latest)
    dag_id = stack.dag_id("restore")
    run_id = stack.trigger(dag_id, {"restore_tso": str(restore_ts), "target_cluster": f"{NAMESPACE}/{TARGET_2}"})
    wait_for(lambda: restores_into(stack, TARGET_2), "the Restore CR")
    stack.restart_scheduler()
    run = stack.wait_run(dag_id, run_id)
    assert run["state"] == "success", task_rows(stack, dag_id, run_id)
    assert len(restores_into(stack, TARGET_2)) == 1
    match, compared = rows_equal_after_restore(stack, restore_ts, TARGET_2)
    assert match and compared > 0


def restores_into(stack: ProductionStack, target: str) -> list[dict[str, Any]]:
    return [r for r in stack.crs("restores") if _restore_target(r) == target]


def _restore_target(restore: dict[str, Any]) -> str | None:
    spec = restore.get("spec", {})
    return (spec.get("to") or {}).get("cluster") or (spec.get("br") or {}).get("cluster")


def test_api_errors_and_cut_watches_through_a_full_cycle(healthy: ProductionStack) -> None:
    stack = healthy
    stack.sandbox.set_faults(api_error_rate=0.2, watch_cut_after=3)
    runs: dict[str, dict[str, Any]] = {}
    for kind in ("log_guard", "snapshot", "retention"):
        runs[kind] = stack.run_dag(kind)
        assert runs[kind]["state"] == "success", (kind, task_rows(stack, stack.dag_id(kind), runs[kind]["dag_run_id"]))
    finish = stack.xcom(stack.dag_id("retention"), runs["retention"]["dag_run_id"], "finish")
    earliest, latest = int(finish["earliest"]["ts"]), int(finish["latest"]["ts"])
    restore_ts = random.randint(earliest, latest)
    runs["restore"] = stack.run_dag("restore", {"restore_tso": str(restore_ts),
                                                "target_cluster": f"{NAMESPACE}/{TARGET_3}"})
    assert runs["restore"]["state"] == "success", task_rows(stack, stack.dag_id("restore"),
                                                            runs["restore"]["dag_run_id"])
    stack.sandbox.clear_faults()
    assert len(made_by_run(stack.crs("backups"), run_stamp(runs["snapshot"]))) == 1
    assert len(restores_into(stack, TARGET_3)) == 1
    match, compared = rows_equal_after_restore(stack, restore_ts, TARGET_3)
    assert match and compared > 0


def test_postgres_restarted_mid_run(healthy: ProductionStack) -> None:
    stack = healthy
    dag_id = stack.dag_id("snapshot")
    run_id = stack.trigger(dag_id)
    wait_deferred(stack, dag_id, run_id)
    stack.restart_postgres()
    stack.wait_healthy()  # the scheduler exits when its database goes away; restart: always brings it back
    run = stack.wait_run(dag_id, run_id)
    assert run["state"] == "success", task_rows(stack, dag_id, run_id)
    assert len(made_by_run(stack.crs("backups"), run_stamp(run))) == 1
