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
from airflow_stack import CLUSTER, NAMESPACE, TARGET
from production_stack import ProductionStack, run_stamp

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]


def _say(text: str) -> None:
    print(f"[production stack] {text}", flush=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    with ProductionStack(tmp_path_factory.mktemp("production-stack"), say=_say) as running:
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

    from tidb_pitr.checks import current_window
    from tidb_pitr.config import load_config

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
