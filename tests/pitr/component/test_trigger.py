"""CustomResourceTrigger against the sandbox: watch, re-watch, 410, transient errors, deadline, failures (the
fault tests in both watch modes: the namespace's shared watch and a watch of its own)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.triggers.custom_resource import CustomResourceTrigger

from ..conftest import s3_block, unique, wait_until


def _snapshot(cluster: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backupType": "full",
            "br": {"cluster": cluster},
            "s3": {**s3_block()["s3"], "prefix": f"{cluster}/{name}"},
        },
    }


def _log(cluster: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backupMode": "log",
            "logSubcommand": "log-start",
            "br": {"cluster": cluster},
            "s3": {**s3_block()["s3"], "prefix": f"{cluster}/log"},
        },
    }


def _trigger(
    conn: str,
    ns: str,
    name: str,
    *,
    group: str = "pingcap.com",
    plural: str = "backups",
    kind: str = "terminal",
    args: dict | None = None,
    seconds: float = 30,
    **extra: Any,
) -> CustomResourceTrigger:
    return CustomResourceTrigger(
        kubernetes_conn_id=conn,
        api_group=group,
        plural=plural,
        namespace=ns,
        name=name,
        kind=kind,
        args=args or {},
        deadline=time.time() + seconds,
        **extra,
    )


def _first_event(trigger: CustomResourceTrigger) -> dict[str, Any]:
    async def run() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run())
    assert len(events) == 1, events
    return events[0]


def test_serialize_round_trips(connections):
    trigger = _trigger(
        connections["kubernetes"],
        "ns",
        "x",
        kind="truncate",
        args={"until": "42"},
        watch_timeout=7,
        max_transient_errors=3,
        reevaluate_every=5.0,
        not_before=123.5,
    )
    path, kwargs = trigger.serialize()
    assert path == "tidb_pitr.triggers.custom_resource.CustomResourceTrigger"
    again = CustomResourceTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)


@pytest.mark.parametrize("group", ["pingcap.com", "br.pingcap.com"])
def test_waits_for_complete_and_reports_it(connections, fresh_cluster, group):
    ns, cluster = fresh_cluster(api_group=group)
    name = unique("snap")
    TidbOperatorHook(connections["kubernetes"], api_group=group).create_or_adopt(
        "backups", _snapshot(cluster, name), ns, {}
    )
    event = _first_event(_trigger(connections["kubernetes"], ns, name, group=group))
    assert event["status"] == "success" and event["cr"]["status"]["phase"] == "Complete"
    assert event["name"] == name and event["namespace"] == ns and "Complete" in event["message"]


def test_failed_cr_gives_the_operators_message(sandbox, connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    name = unique("snap")
    sandbox.set_faults(fail_next_backup="injected: region unavailable")
    TidbOperatorHook(connections["kubernetes"]).create_or_adopt("backups", _snapshot(cluster, name), ns, {})
    event = _first_event(_trigger(connections["kubernetes"], ns, name))
    assert event["status"] == "failed" and "injected: region unavailable" in event["message"]


@pytest.fixture(params=["shared", "per-cr"])
def watch_mode(request, monkeypatch) -> str:
    """Both ways a trigger can watch (`[tidb_pitr] watch_mode`): the namespace's shared watch, or its own."""
    monkeypatch.setenv("AIRFLOW__TIDB_PITR__WATCH_MODE", request.param)
    return request.param


def test_missing_cr_and_deadline(connections, fresh_cluster, watch_mode):
    ns, cluster = fresh_cluster()
    missing = _first_event(_trigger(connections["kubernetes"], ns, "ghost"))
    assert missing["status"] == "not_found" and f"Backup {ns}/ghost" in missing["message"]
    name = unique("log")
    TidbOperatorHook(connections["kubernetes"]).create_or_adopt("backups", _log(cluster, name), ns, {})
    started = time.monotonic()
    far = 10**20  # a checkpoint that will not be reached
    event = _first_event(_trigger(connections["kubernetes"], ns, name, kind="checkpoint", args={"ts": far}, seconds=2))
    assert event["status"] == "timeout" and time.monotonic() - started < 10


def test_survives_cut_watches_410_and_503s(sandbox, connections, fresh_cluster, watch_mode):
    ns, cluster = fresh_cluster()
    name = unique("log")
    hook = TidbOperatorHook(connections["kubernetes"])
    created, _ = hook.create_or_adopt("backups", _log(cluster, name), ns, {})
    # Wait for the checkpoint to move 3 s past now, while the server cuts watches, forgets history
    # (so the re-watch gets 410 and must list again) and answers a share of requests with 503.
    target = sandbox.tso() + (3000 << 18)
    sandbox.set_faults(watch_cut_after=0.7, api_error_rate=0.3, api_error_codes=[503])

    def watches() -> int:
        return sandbox.request_counts()["byResource"].get("watch backups", 0)

    async def chaos() -> None:
        # Each time the trigger has watched again (every watch is cut after 0.7 s), the server forgets its history.
        for _ in range(8):
            seen = await asyncio.to_thread(watches)
            while await asyncio.to_thread(watches) == seen:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(sandbox.compact_watch_history)

    async def run() -> list[dict[str, Any]]:
        trigger = _trigger(
            connections["kubernetes"],
            ns,
            name,
            kind="checkpoint",
            args={"ts": target},
            seconds=40,
            max_transient_errors=50,
            backoff_max=0.5,
        )
        noise = asyncio.create_task(chaos())
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            noise.cancel()

    try:
        events = asyncio.run(run())
    finally:
        sandbox.clear_faults()
    assert len(events) == 1 and events[0]["status"] == "success", events
    assert events[0]["checkpoint_ts"] >= target


@pytest.mark.parametrize("group", ["pingcap.com", "br.pingcap.com"])
def test_truncate_confirmation(sandbox, connections, fresh_cluster, group):
    ns, cluster = fresh_cluster(api_group=group)
    name = unique("log")
    hook = TidbOperatorHook(connections["kubernetes"], api_group=group)
    hook.create_or_adopt("backups", _log(cluster, name), ns, {})
    started = _first_event(_trigger(connections["kubernetes"], ns, name, group=group, kind="log_started"))
    start_ts = int(started["cr"]["status"]["commitTs"])
    moved = _first_event(
        _trigger(
            connections["kubernetes"], ns, name, group=group, kind="checkpoint", args={"ts": start_ts + (1500 << 18)}
        )
    )
    until = str(start_ts + (1000 << 18))
    hook.merge_patch("backups", name, ns, {"spec": {"logTruncateUntil": until}})
    done = _first_event(
        _trigger(connections["kubernetes"], ns, name, group=group, kind="truncate", args={"until": until})
    )
    assert done["status"] == "success" and moved["status"] == "success"
    sub = done["cr"]["status"]["logSubCommandStatuses"]["log-truncate"]
    assert sub["phase"] == "Complete" and sub["logTruncatingUntil"] == until
    # A second, lower value is the operator's skip case: still confirmed, logSuccessTruncateUntil unchanged.
    lower = str(start_ts + 1)
    hook.merge_patch("backups", name, ns, {"spec": {"logTruncateUntil": lower}})
    skipped = _first_event(
        _trigger(connections["kubernetes"], ns, name, group=group, kind="truncate", args={"until": lower})
    )
    assert skipped["status"] == "success" and skipped["cr"]["status"]["logSuccessTruncateUntil"] == until


def test_cancellation_leaves_no_watch_behind(sandbox, connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    name = unique("log")
    TidbOperatorHook(connections["kubernetes"]).create_or_adopt("backups", _log(cluster, name), ns, {})

    def watched() -> bool:
        return any(e["verb"] == "watch" and e["namespace"] == ns for e in sandbox.audit())

    async def run() -> None:
        trigger = _trigger(connections["kubernetes"], ns, name, kind="checkpoint", args={"ts": 10**20})
        task = asyncio.create_task(anext(trigger.run()))
        while not await asyncio.to_thread(watched):  # cancelled once its watch is open
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    before = sandbox.active_watches()
    asyncio.run(run())
    watches = [e for e in sandbox.audit() if e["verb"] == "watch" and e["namespace"] == ns]
    assert watches, "the trigger watched the CR"
    # The connection closed with the task: the server is no longer streaming to it.
    wait_until(lambda: sandbox.active_watches() <= before, timeout=10)


def test_an_event_is_held_until_not_before(connections, fresh_cluster):
    """A wait the CR decides at once still fires no earlier than `not_before`: the resumed task must not
    race the executor's report of the deferring attempt (Airflow 3.3, apache/airflow#71580)."""
    ns, cluster = fresh_cluster()
    name = unique("snap")
    TidbOperatorHook(connections["kubernetes"]).create_or_adopt("backups", _snapshot(cluster, name), ns, {})
    assert _first_event(_trigger(connections["kubernetes"], ns, name))["status"] == "success"  # Complete now
    started = time.time()
    event = _first_event(_trigger(connections["kubernetes"], ns, name, not_before=started + 2.0))
    assert event["status"] == "success" and time.time() - started >= 2.0
