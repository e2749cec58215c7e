"""The shared watch (hooks/watch_registry.py) under CustomResourceTrigger, against the sandbox: many waits share one
list, one watch and one connection (counted at the sandbox); a cancelled wait leaves the others and the watch; the
watch lingers after its last subscriber, then stops; a cut stream and 410 Gone lose no completion; a late
subscriber decides from the store; a deleted CR is reported once, after a confirming GET."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.hooks.watch_registry import WatchKey, registry
from tidb_pitr.triggers.custom_resource import CustomResourceTrigger

from ..conftest import s3_block, unique, wait_until


def _snapshot(cluster: str, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"backupType": "full", "br": {"cluster": cluster},
                     "s3": {**s3_block()["s3"], "prefix": f"{cluster}/{name}"}}}


def _trigger(conn: str, ns: str, name: str, seconds: float = 60, **extra: Any) -> CustomResourceTrigger:
    return CustomResourceTrigger(kubernetes_conn_id=conn, api_group="pingcap.com", plural="backups", namespace=ns,
                                 name=name, kind="terminal", args={}, deadline=time.time() + seconds, **extra)


async def _first(trigger: CustomResourceTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, events
    return events[0]


async def _until(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not true in time"
        await asyncio.sleep(0.02)


async def _synced(conn: str, ns: str) -> Any:
    """The namespace's shared watch of backups once a subscriber has started it and its first list is in."""
    key = WatchKey.of(conn, "pingcap.com", "backups", ns)
    await _until(lambda: key in registry().watches and registry().watches[key].synced)
    return registry().watches[key]


def _audit(sandbox: Any, ns: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.audit() if e["namespace"] == ns and e["resource"] == "backups"]


def _requests(sandbox: Any, ns: str, after: int = 0) -> dict[str, Any]:
    """This namespace's requests for backups at the sandbox (from its `after`th on): by verb, and the client
    connections they came on."""
    entries = _audit(sandbox, ns)[after:]
    verbs: dict[str, int] = {}
    for e in entries:
        verbs[e["verb"]] = verbs.get(e["verb"], 0) + 1
    return {**verbs, "connections": len({e["peer"] for e in entries})}


@pytest.fixture
def held(sandbox: Any, connections: dict[str, str], fresh_cluster: Any):
    """`make(n)`: n snapshot Backups in a namespace of their own, held Running until `release()`."""
    sandbox.set_faults(hang_backups=True)
    hook = TidbOperatorHook(connections["kubernetes"])

    def make(n: int) -> tuple[str, list[str]]:
        ns, cluster = fresh_cluster()
        names = [unique("snap") for _ in range(n)]
        for name in names:
            hook.create_or_adopt("backups", _snapshot(cluster, name), ns, {})
        wait_until(lambda: all((hook.get("backups", n_, ns) or {}).get("status", {}).get("phase") == "Running"
                               for n_ in names), timeout=30)
        return ns, names

    try:
        yield make
    finally:
        sandbox.clear_faults()


def test_200_waits_share_one_list_one_watch_one_connection_and_a_cancelled_one_leaves_the_rest(
        sandbox, connections, held):
    ns, names = held(20)
    conn = connections["kubernetes"]
    waits = [(name, _trigger(conn, ns, name)) for name in names for _ in range(10)]
    setup = len(_audit(sandbox, ns))

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, int]]:
        tasks = [asyncio.create_task(_first(t)) for _, t in waits]
        watch = await _synced(conn, ns)
        await asyncio.sleep(0.1)
        for task in tasks[:10]:  # every wait on the first CR is cleared by a user, mid-wait
            task.cancel()
        await asyncio.gather(*tasks[:10], return_exceptions=True)
        assert all(t.cancelled() for t in tasks[:10])
        assert watch.task is not None and not watch.task.done() and watch.subscribers == 190
        await asyncio.to_thread(sandbox.set_faults, hang_backups=False)
        return await asyncio.gather(*tasks[10:]), dict(watch.counts)

    events, counts = asyncio.run(scenario())
    assert [e["name"] for e in events] == [name for name, _ in waits[10:]]  # each wait heard of its own CR
    assert {e["status"] for e in events} == {"success"}
    assert counts["lists"] == 1 and counts["watches"] == 1
    seen = _requests(sandbox, ns, after=setup)
    assert seen == {"list": 1, "watch": 1, "connections": 1}, seen


def test_the_watch_lingers_after_the_last_subscriber_then_stops(sandbox, connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    conn = connections["kubernetes"]
    name = unique("snap")
    hook = TidbOperatorHook(conn)
    hook.create_or_adopt("backups", _snapshot(cluster, name), ns, {})
    wait_until(lambda: (hook.get("backups", name, ns) or {}).get("status", {}).get("phase") == "Complete")

    async def scenario() -> None:
        registry().linger = 3.0  # long enough that the second wait below arrives within it, even under load
        key = WatchKey.of(conn, "pingcap.com", "backups", ns)
        assert (await _first(_trigger(conn, ns, name)))["status"] == "success"
        watch = registry().watches[key]
        assert watch.subscribers == 0 and not watch.task.done()  # lingering
        # A wait arriving within the linger takes the same watch: no second list.
        assert (await _first(_trigger(conn, ns, name)))["status"] == "success"
        assert registry().watches[key] is watch and watch.counts["lists"] == 1
        await _until(lambda: watch.task.done(), timeout=20)
        assert key not in registry().watches
        await _until(lambda: sandbox.active_watches() == before, timeout=10)

    before = sandbox.active_watches()
    asyncio.run(scenario())
    assert _requests(sandbox, ns).get("list") == 1


def test_cut_streams_and_410_gone_lose_no_completion(sandbox, connections, held):
    ns, names = held(10)
    conn = connections["kubernetes"]
    sandbox.set_faults(watch_cut_after=0.3)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, int]]:
        tasks = [asyncio.create_task(_first(_trigger(conn, ns, name))) for name in names]
        watch = await _synced(conn, ns)
        # The backups complete while streams are cut and the server forgets its history, so that some
        # completions happen while no watch is open and the re-watch gets 410 and must list again.
        await asyncio.to_thread(sandbox.set_faults, hang_backups=False)
        while not all(t.done() for t in tasks):
            await asyncio.to_thread(sandbox.compact_watch_history)
            await asyncio.sleep(0.15)
        return [t.result() for t in tasks], dict(watch.counts)

    events, counts = asyncio.run(scenario())
    assert {e["status"] for e in events} == {"success"} and [e["name"] for e in events] == names
    # Both faults were met: a stream cut mid-body (an error, then a watch again) and a 410 (a list again). Not a
    # count of watches: under load every backup can complete before the third watch starts (CI saw 2).
    assert counts["errors"] >= 1 and counts["expired"] >= 1 and counts["lists"] >= 2, counts


def test_a_late_subscriber_decides_from_the_store_at_once(sandbox, connections, held):
    ns, names = held(2)
    conn = connections["kubernetes"]
    setup = len(_audit(sandbox, ns))

    async def scenario() -> None:
        first = asyncio.create_task(_first(_trigger(conn, ns, names[0])))  # keeps the watch open
        watch = await _synced(conn, ns)
        await asyncio.to_thread(sandbox.set_faults, hang_backups=False)
        await _until(lambda: (watch.objects.get(names[1]) or {}).get("status", {}).get("phase") == "Complete")
        await first
        late = await _first(_trigger(conn, ns, names[1]))  # its CR completed before it subscribed
        assert late["status"] == "success" and late["cr"]["status"]["phase"] == "Complete"
        # The event carries what the resuming task reads, not the whole CR.
        assert set(late["cr"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
        assert set(late["cr"]["metadata"]) <= {"name", "namespace", "labels", "annotations", "creationTimestamp"}
        assert watch.counts["lists"] == 1

    asyncio.run(scenario())
    # Decided from the store, at once: no request of its own (not a wall-clock bound, which load would break).
    assert _requests(sandbox, ns, after=setup) == {"list": 1, "watch": 1, "connections": 1}


def test_a_deleted_cr_is_reported_once_after_a_confirming_get(sandbox, connections, held):
    ns, names = held(1)
    conn = connections["kubernetes"]
    name = names[0]
    hook = TidbOperatorHook(conn)

    async def scenario() -> list[dict[str, Any]]:
        trigger = _trigger(conn, ns, name)
        events: list[dict[str, Any]] = []

        async def consume() -> None:
            events.extend([event.payload async for event in trigger.run()])

        task = asyncio.create_task(consume())
        await _synced(conn, ns)
        await asyncio.to_thread(hook.delete, "backups", name, ns)
        await task
        return events

    events = asyncio.run(scenario())
    assert len(events) == 1 and events[0]["status"] == "not_found", events
    assert f"Backup {ns}/{name}" in events[0]["message"]
    audit = _audit(sandbox, ns)
    deleted = max(i for i, e in enumerate(audit) if e["verb"] == "delete")
    assert [e["verb"] for e in audit[deleted:]].count("get") == 1  # the confirmation, after the delete


def test_a_failing_shared_watch_sends_each_wait_to_gets_of_its_own(sandbox, held, tmp_path, monkeypatch):
    """An identity that may get Backups but not list or watch them (a Role that lost two verbs): the shared watch
    fails with 403, and every wait polls its own CR instead of failing."""
    ns, names = held(2)
    setup = len(_audit(sandbox, ns))
    token = unique("get-only")
    sandbox.call("PUT", f"/rbac/{token}",
                 {"rules": [{"apiGroups": ["pingcap.com"], "resources": ["backups"], "verbs": ["get"]}]})
    kubeconfig = tmp_path / "kubeconfig.json"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "clusters": [{"name": "s", "cluster": {"server": sandbox.url}}],
        "users": [{"name": "u", "user": {"token": token}}], "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "s", "user": "u"}}]}))
    monkeypatch.setenv("AIRFLOW_CONN_GET_ONLY_K8S",
                       json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}))
    key = WatchKey.of("get_only_k8s", "pingcap.com", "backups", ns)

    async def scenario() -> list[dict[str, Any]]:
        tasks = [asyncio.create_task(_first(_trigger("get_only_k8s", ns, name, backoff_max=0.2))) for name in names]
        await _until(lambda: key in registry().watches and registry().watches[key].should_poll())
        watch = registry().watches[key]
        assert watch.last_error is not None and watch.last_error.status == 403
        await _until(lambda: _requests(sandbox, ns, after=setup).get("get", 0) >= 2 * len(names))
        assert not any(t.done() for t in tasks)  # polling, not failed
        await asyncio.to_thread(sandbox.set_faults, hang_backups=False)
        return await asyncio.gather(*tasks)

    try:
        events = asyncio.run(scenario())
    finally:
        sandbox.call("DELETE", f"/rbac/{token}")
    assert [e["status"] for e in events] == ["success"] * len(names)
    assert set(_requests(sandbox, ns, after=setup)) == {"get", "connections"}  # the refused list is not served


def test_the_rpo_watcher_and_the_cr_waits_of_a_namespace_share_one_watch(sandbox, connections, held):
    from tidb_pitr.triggers.rpo import RpoLagTrigger

    ns, names = held(1)
    conn = connections["kubernetes"]
    cluster = TidbOperatorHook(conn).get("backups", names[0], ns)["spec"]["br"]["cluster"]
    setup = len(_audit(sandbox, ns))
    watcher = RpoLagTrigger(kubernetes_conn_id=conn, api_group="pingcap.com", namespace=ns, tidb_cluster=cluster,
                            cluster=f"{ns}/{cluster}", warn_seconds=600, critical_seconds=1800,
                            starting_grace_seconds=60)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        alerts: list[dict[str, Any]] = []

        async def watch_rpo() -> None:
            async for event in watcher.run():
                alerts.append(event.payload)

        rpo = asyncio.create_task(watch_rpo())
        await _until(lambda: alerts)  # no log backup at all: a breach, announced once
        wait = asyncio.create_task(_first(_trigger(conn, ns, names[0])))
        watch = await _synced(conn, ns)
        await _until(lambda: watch.subscribers == 2)
        await asyncio.to_thread(sandbox.set_faults, hang_backups=False)
        done = await wait
        rpo.cancel()  # the triggerer stopping the asset watcher
        await asyncio.gather(rpo, return_exceptions=True)
        assert watch.subscribers == 0 and not watch.task.done()  # left synchronously; the watch lingers
        return alerts, done

    alerts, done = asyncio.run(scenario())
    assert done["status"] == "success" and [a["level"] for a in alerts] == ["critical"]
    assert _requests(sandbox, ns, after=setup) == {"list": 1, "watch": 1, "connections": 1}
