"""RpoLagTrigger against the sandbox: a frozen checkpoint is warn, then critical, then (thawed) recovered, each
announced once and in order, within about a second of the lag crossing the line; a maintenance pause is one notice
until it outlives its end."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.triggers.rpo import RpoLagTrigger

from ..conftest import unique, wait_until

WARN, CRITICAL = 3.0, 6.0


def _trigger(connections: dict[str, str], ns: str, name: str, critical: float = CRITICAL,
             **extra: Any) -> RpoLagTrigger:
    made = RpoLagTrigger(kubernetes_conn_id=connections["kubernetes"], api_group="pingcap.com", namespace=ns,
                         tidb_cluster=name, cluster=f"{ns}/{name}", warn_seconds=WARN, critical_seconds=critical,
                         starting_grace_seconds=5.0, reevaluate_every=2.0, **extra)
    # As the triggerer makes it: from what the DAG processor stored.
    path, kwargs = made.serialize()
    assert path == "tidb_pitr.triggers.rpo.RpoLagTrigger"
    return RpoLagTrigger(**kwargs)


def _assessments(trigger: RpoLagTrigger) -> list[float]:
    """The times (time.time()) at which the trigger assessed the lag, appended as it does."""
    times: list[float] = []
    assess = trigger.assess

    def counted(objects: list[dict[str, Any]], now: datetime | None = None) -> dict[str, Any]:
        figures = assess(objects, now)
        times.append(time.time())
        return figures

    trigger.assess = counted  # type: ignore[method-assign]
    return times


async def _assessed_after(times: list[float], moment: float, timeout: float = 30.0) -> None:
    """Until the trigger has assessed the lag again at or after `moment` (it does at least every reevaluate_every)."""
    deadline = time.monotonic() + timeout
    while not times or times[-1] < moment:
        assert time.monotonic() < deadline, f"no assessment after {moment} within {timeout}s"
        await asyncio.sleep(0.05)


@pytest.fixture
def thawed(sandbox: Any):
    sandbox.clear_faults()
    yield
    sandbox.clear_faults()


def test_serialize_round_trips(connections):
    trigger = _trigger(connections, "ns", "tc", watch_timeout=7, backoff_max=3.0)
    path, kwargs = trigger.serialize()
    assert RpoLagTrigger(**kwargs).serialize() == (path, kwargs)
    assert kwargs["watch_timeout"] == 7 and kwargs["warn_seconds"] == WARN


def test_frozen_checkpoint_is_warn_then_critical_then_recovered_once_each(sandbox, connections, fresh_cluster,
                                                                          thawed):
    ns, name = fresh_cluster(seed_days=1)
    trigger = _trigger(connections, ns, name)
    assessed = _assessments(trigger)
    seen: list[tuple[float, dict[str, Any]]] = []

    async def consume() -> None:
        async for event in trigger.run():
            seen.append((time.time(), event.payload))

    async def wait_for(count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(seen) < count:
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        task = asyncio.create_task(consume())
        try:
            await _assessed_after(assessed, time.time() + 2.5)
            assert seen == [], "a healthy log backup announced something"
            await asyncio.to_thread(sandbox.set_faults, freeze_checkpoint=True)
            await wait_for(2, 30)
            await _assessed_after(assessed, time.time() + 1.5)  # nothing more while it stays critical
            assert len(seen) == 2, seen
            await asyncio.to_thread(sandbox.set_faults, freeze_checkpoint=False)
            await wait_for(3, 30)
            await _assessed_after(assessed, time.time() + 2.5)  # and nothing after the recovery
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert [p["level"] for _, p in seen] == ["warn", "critical", "recovered"], seen
    (t_warn, warn), (t_crit, crit), (_, back) = seen
    assert warn["cluster"] == f"{ns}/{name}" and warn["log_backup"] == f"{name}-log-backup"
    assert WARN < warn["lag_seconds"] <= CRITICAL and crit["lag_seconds"] > CRITICAL and back["lag_seconds"] <= WARN
    assert warn["checkpoint_ts"] == crit["checkpoint_ts"] != back["checkpoint_ts"]
    assert warn["status"] == "warn" and "RPO WARN" in warn["message"] and " to " in warn["window"]
    # Told when the lag crossed the line, not at the next poll: the crossing is checkpoint + threshold.
    checkpoint = datetime.fromisoformat(warn["checkpoint_time"].replace("Z", "+00:00")).timestamp()
    assert 0 <= t_warn - (checkpoint + WARN) < 1.5, t_warn - (checkpoint + WARN)
    assert 0 <= t_crit - (checkpoint + CRITICAL) < 1.5, t_crit - (checkpoint + CRITICAL)


class _Store:
    """Stands in for the triggerer's asset_state_store (aget/aset), holding what a previous run announced."""

    def __init__(self, **values: Any) -> None:
        self.values, self.writes = dict(values), []

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.writes.append(value)


def test_a_restarted_watcher_does_not_announce_the_same_breach_again(sandbox, connections, fresh_cluster, thawed):
    ns, name = fresh_cluster(seed_days=1)
    sandbox.set_faults(freeze_checkpoint=True)
    trigger = _trigger(connections, ns, name, critical=12.0)
    hook = TidbOperatorHook(connections["kubernetes"])
    # In warn now (critical is far), announced as such by the watcher before its restart.
    wait_until(lambda: trigger.assess(hook.list("backups", ns))["level"] == "warn", timeout=WARN + 30)
    assert trigger.assess(hook.list("backups", ns))["level"] == "warn"
    assessed = _assessments(trigger)
    trigger.asset_state_store = _Store(rpo_announced="warn")
    seen: list[str] = []

    async def scenario() -> None:
        async def consume() -> None:
            async for event in trigger.run():
                seen.append(event.payload["level"])
                if event.payload["level"] == "critical":
                    await asyncio.to_thread(sandbox.set_faults, freeze_checkpoint=False)

        task = asyncio.create_task(consume())
        deadline = time.monotonic() + 40
        while len(seen) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await _assessed_after(assessed, time.time() + 1.0)  # and nothing after the recovery
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    # Without the store it would have said warn again first.
    assert seen == ["critical", "recovered"], seen
    assert trigger.asset_state_store.writes == ["critical", "ok"]


def test_the_lag_is_measured_on_the_clusters_clock(manual_sandbox, on_sandbox_time):
    """On a manual clock a minute passes in an instant: the trigger (in this process) reads the cluster's time."""
    ns, name = unique("pitr"), unique("tc")
    manual_sandbox.create_cluster(ns, name, seed_days=1, storage_root=name, workload={"inserts_per_s": 5})
    hook = TidbOperatorHook(on_sandbox_time["kubernetes"])
    manual_sandbox.advance(2)  # the tracker polls: a checkpoint in the CR
    manual_sandbox.set_faults(freeze_checkpoint=True)
    try:
        manual_sandbox.advance(1)
        trigger = _trigger(on_sandbox_time, ns, name)
        frozen = trigger.assess(hook.list("backups", ns))
        manual_sandbox.advance(60)
        figures = trigger.assess(hook.list("backups", ns))
    finally:
        manual_sandbox.clear_faults()
    assert figures["checkpoint_ts"] == frozen["checkpoint_ts"]
    checkpoint = datetime.fromisoformat(figures["checkpoint_time"].replace("Z", "+00:00")).timestamp()
    assert figures["lag_seconds"] == pytest.approx(manual_sandbox.clock()["time"] - checkpoint, abs=0.01)
    assert figures["lag_seconds"] == pytest.approx(frozen["lag_seconds"] + 60, abs=0.01)
    assert figures["level"] == "critical"


def test_a_maintenance_pause_is_one_notice_then_a_breach_once_it_outlives_its_end(manual_sandbox, on_sandbox_time):
    """Paused through the log-control DAG's own plan (the annotation on the CR): the growing lag is one notice saying
    until when, not a breach; still paused after that, it is critical; resumed and caught up, recovered."""
    from tidb_pitr.cr.api import ApiGroup
    from tidb_pitr.cr.bodies import log_control_patch
    from tidb_pitr.cr.model import BackupView
    from tidb_pitr.planning.pause import plan_log_control

    ns, name = unique("pitr"), unique("tc")
    manual_sandbox.create_cluster(ns, name, seed_days=1, storage_root=name)
    hook = TidbOperatorHook(on_sandbox_time["kubernetes"])
    manual_sandbox.advance(2)  # the tracker polls: a checkpoint in the CR
    log = f"{name}-log-backup"
    trigger = RpoLagTrigger(kubernetes_conn_id=on_sandbox_time["kubernetes"], api_group="pingcap.com", namespace=ns,
                            tidb_cluster=name, cluster=f"{ns}/{name}", warn_seconds=60, critical_seconds=300,
                            starting_grace_seconds=120, reevaluate_every=0.1)
    assessed = _assessments(trigger)
    seen: list[dict[str, Any]] = []
    planned: dict[str, Any] = {}

    def patch(action: str, annotations: dict[str, str | None]) -> None:
        hook.merge_patch("backups", log, ns, {**log_control_patch(ApiGroup(), action),
                                              "metadata": {"annotations": annotations}})

    async def scenario() -> None:
        async def consume() -> None:
            async for event in trigger.run():
                seen.append(event.payload)

        async def after(minutes: float) -> None:
            """`minutes` of the cluster's time, then until the trigger has assessed the lag at the new time."""
            await asyncio.to_thread(manual_sandbox.advance, minutes * 60)
            count = len(assessed)
            deadline = time.monotonic() + 30
            while len(assessed) < count + 2:  # the first may have begun before the clock moved
                assert time.monotonic() < deadline, "the trigger stopped assessing"
                await asyncio.sleep(0.02)

        task = asyncio.create_task(consume())
        try:
            await after(1)
            assert seen == [], "a healthy log backup announced something"
            view = BackupView.from_cr(await asyncio.to_thread(hook.get, "backups", log, ns))
            planned.update(plan_log_control(action="pause", pause_minutes=10, confirm="", reason="upgrade TiKV",
                                            cluster=name, view=view, now=datetime.now(UTC), run="manual__pause"))
            await asyncio.to_thread(patch, "pause", planned["annotations"])
            await after(2)  # past warn: the notice
            await after(5)  # past critical, within the pause: nothing more
            assert [p["level"] for p in seen] == ["maintenance"], seen
            await after(4)  # the pause has ended, still paused: a breach again
            assert [p["level"] for p in seen] == ["maintenance", "critical"], seen
            await asyncio.to_thread(patch, "resume", {"tidb-pitr-airflow/maintenance-pause": None})
            await after(3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert [p["level"] for p in seen] == ["maintenance", "critical", "recovered"], seen
    notice, breach, _ = seen
    until = planned["pause"]["until"]
    assert notice["status"] == "maintenance" and notice["maintenance_pause"]["until"] == until
    assert notice["message"].startswith(f"RPO notice for {ns}/{name}: log backup {log} is paused for maintenance "
                                        f"until {until} (run manual__pause: upgrade TiKV); checkpoint lag 2m")
    assert "CRITICAL" not in notice["message"] and 60 < notice["lag_seconds"] <= 300
    assert re.match(rf"RPO CRITICAL for {ns}/{name}: checkpoint lag 1[12]m", breach["message"]), breach["message"]
    assert f"Its maintenance pause (run manual__pause) ended at {until} and it was not resumed" in breach["message"]
