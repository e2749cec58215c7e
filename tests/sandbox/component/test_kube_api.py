"""The Kubernetes API itself: CRUD, patch flavours, conflicts, selectors, schema, status, finalizers, watch."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from .conftest import VERSION, s3_storage, unique, wait_for


def _ns(core: Any) -> str:
    name = unique("api")
    core.create_namespace({"metadata": {"name": name}})
    return name


def _backup(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"team": "dba", "tier": "gold"}},
        "spec": {"backupType": "full", "br": {"cluster": "nowhere"}, **s3_storage(name), **spec},
    }


def test_create_get_list_and_selectors(crs, core):
    ns = _ns(core)
    created = crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", _backup("a"))
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", {**_backup("b"), "metadata": {"name": "b", "labels": {"team": "app"}}}
    )
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    with pytest.raises(ApiException) as exc:
        crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", _backup("a"))
    assert exc.value.status == 409 and "already exists" in exc.value.body

    by_label = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", label_selector="team=dba")
    assert [o["metadata"]["name"] for o in by_label["items"]] == ["a"]
    by_set = crs.list_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", label_selector="team in (dba,app),tier!=silver"
    )
    assert sorted(o["metadata"]["name"] for o in by_set["items"]) == ["a", "b"]
    by_name = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", field_selector="metadata.name=b")
    assert [o["metadata"]["name"] for o in by_name["items"]] == ["b"]
    everywhere = crs.list_cluster_custom_object(
        "pingcap.com", VERSION, "backups", field_selector=f"metadata.namespace={ns}"
    )
    assert len(everywhere["items"]) == 2
    with pytest.raises(ApiException) as missing:
        crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "zzz")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'backups.pingcap.com "zzz" not found'


def test_schema_rejection_names_the_field(crs, core):
    ns = _ns(core)
    for spec, field in (
        ({"logSubcommand": "sideways"}, "spec.logSubcommand"),
        ({"br": {"cluster": "x", "concurrency": "many"}}, "spec.br.concurrency"),
        ({"logSubcommand": "log-start", "logStop": True}, "spec"),
    ):
        with pytest.raises(ApiException) as exc:
            crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", _backup(unique("bad"), **spec))
        assert exc.value.status == 422, exc.value.body
        assert field in exc.value.body
    with pytest.raises(ApiException) as enum:
        crs.create_namespaced_custom_object(
            "pingcap.com", VERSION, ns, "backups", _backup(unique("bad"), logSubcommand="log-truncate")
        )
    assert enum.value.status == 422 and "Unsupported value" in enum.value.body
    # The same value is in the v2 enum.
    crs.create_namespaced_custom_object(
        "br.pingcap.com", VERSION, ns, "backups", _backup(unique("ok"), backupMode="log", logSubcommand="log-truncate")
    )


def _schedule(name: str) -> dict[str, Any]:
    # BackupSchedules: no controller acts on them in the sandbox, so only the API touches them here.
    return {
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 0 */2 * *",
            "maxReservedTime": "720h",
            "backupTemplate": {"br": {"cluster": "demo1"}, **s3_storage(name)},
        },
    }


def test_resource_version_conflict_and_patch_flavours(sandbox, crs, core):
    ns = _ns(core)
    obj = crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", _schedule("c"))
    stale = dict(obj)
    crs.patch_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "c", {"spec": {"pause": True}})
    with pytest.raises(ApiException) as exc:
        crs.replace_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "c", stale)
    assert exc.value.status == 409 and "the object has been modified" in exc.value.body
    fresh = crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "c")
    assert fresh["spec"]["pause"] is True and fresh["metadata"]["generation"] == 2
    fresh["spec"]["pause"] = False
    replaced = crs.replace_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "c", fresh)
    assert int(replaced["metadata"]["resourceVersion"]) > int(fresh["metadata"]["resourceVersion"])
    # A merge patch carrying a stale resourceVersion is an optimistic lock that fails.
    with pytest.raises(ApiException) as locked:
        crs.patch_namespaced_custom_object(
            "pingcap.com",
            VERSION,
            ns,
            "backupschedules",
            "c",
            {"metadata": {"resourceVersion": fresh["metadata"]["resourceVersion"]}, "spec": {"pause": True}},
        )
    assert locked.value.status == 409
    # JSON patch (RFC 6902), as kubectl patch --type=json sends it.
    request = urllib.request.Request(
        f"{sandbox.url}/apis/pingcap.com/{VERSION}/namespaces/{ns}/backupschedules/c",
        method="PATCH",
        data=json.dumps([{"op": "replace", "path": "/spec/maxReservedTime", "value": "168h"}]).encode(),
        headers={"Content-Type": "application/json-patch+json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    got = crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "c")
    assert got["spec"]["maxReservedTime"] == "168h"


def test_status_subresource_semantics_per_group(crs, core):
    ns = _ns(core)
    v1 = crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", _schedule("v1"))
    v1["status"] = {"lastBackup": "b1"}
    v1 = crs.replace_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "v1", v1)
    # v1 has no status subresource: status goes through the main resource and bumps generation.
    assert v1["status"]["lastBackup"] == "b1" and v1["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as exc:
        crs.get_namespaced_custom_object_status("pingcap.com", VERSION, ns, "backupschedules", "v1")
    assert exc.value.status == 404

    v2 = crs.create_namespaced_custom_object(
        "br.pingcap.com", VERSION, ns, "backupschedules", {**_schedule("v2"), "status": {"lastBackup": "b1"}}
    )
    assert not v2.get("status"), "create ignores status with a status subresource"
    v2["status"] = {"lastBackup": "b1"}
    v2 = crs.replace_namespaced_custom_object("br.pingcap.com", VERSION, ns, "backupschedules", "v2", v2)
    assert not v2.get("status") and v2["metadata"]["generation"] == 1
    patched = crs.patch_namespaced_custom_object_status(
        "br.pingcap.com", VERSION, ns, "backupschedules", "v2", {"status": {"lastBackup": "b1"}}
    )
    assert patched["status"]["lastBackup"] == "b1" and patched["metadata"]["generation"] == 1


def test_finalizers_hold_deletion(crs, core):
    ns = _ns(core)
    body = _backup("f")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", body)
    crs.delete_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "f")
    held = crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "f")
    assert held["metadata"]["deletionTimestamp"]
    crs.patch_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "f", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "f")
    assert exc.value.status == 404


def test_watch_resumes_across_timeout_and_reports_410(sandbox, crs, core):
    ns = _ns(core)
    listed = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backups")
    rv = listed["metadata"]["resourceVersion"]
    # A watch that times out with nothing to say ends cleanly...
    w = watch.Watch()
    assert (
        list(
            w.stream(
                crs.list_namespaced_custom_object,
                "pingcap.com",
                VERSION,
                ns,
                "backups",
                resource_version=rv,
                timeout_seconds=1,
            )
        )
        == []
    )
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", _backup("w"))
    # ... and the next one from the same resourceVersion still sees what happened in between.
    events = []
    for event in watch.Watch().stream(
        crs.list_namespaced_custom_object,
        "pingcap.com",
        VERSION,
        ns,
        "backups",
        resource_version=rv,
        field_selector="metadata.name=w",
        timeout_seconds=2,
    ):
        events.append((event["type"], event["object"]["metadata"]["name"]))
        break
    assert events == [("ADDED", "w")]
    sandbox.compact_watch_history()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            crs.list_namespaced_custom_object,
            "pingcap.com",
            VERSION,
            ns,
            "backups",
            resource_version=rv,
            timeout_seconds=2,
        ):
            pass
    assert gone.value.status == 410


def test_watch_sees_live_changes(sandbox, crs, core):
    # BackupSchedules: no controller writes to them, so the watch sees exactly the test's own changes.
    ns = _ns(core)
    watches = sandbox.request_counts()["byResource"].get("watch backupschedules", 0)
    rv = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules")["metadata"]["resourceVersion"]
    seen: list[str] = []

    def watcher() -> None:
        for event in watch.Watch().stream(
            crs.list_namespaced_custom_object,
            "pingcap.com",
            VERSION,
            ns,
            "backupschedules",
            resource_version=rv,
            timeout_seconds=5,
        ):
            seen.append(event["type"])
            if event["type"] == "DELETED":
                return

    thread = threading.Thread(target=watcher)
    thread.start()
    wait_for(lambda: sandbox.request_counts()["byResource"].get("watch backupschedules", 0), lambda n: n > watches)
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", _schedule("live"))
    crs.patch_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backupschedules", "live", {"spec": {"pause": True}}
    )
    crs.delete_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "live")
    thread.join(10)
    assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_watches_by_name_see_only_their_object_and_requests_are_counted(sandbox, crs, core):
    # Watches pinned by a metadata.name field selector are indexed by name in the store: each must still get
    # every event of its object and none of another's, beside a namespace-wide watch that gets them all.
    ns = _ns(core)
    rv = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules")["metadata"]["resourceVersion"]
    before = sandbox.request_counts()
    for name in ("one", "two"):
        crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", _schedule(name))
        crs.patch_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", name,
                                           {"spec": {"pause": True}})
    crs.delete_namespaced_custom_object("pingcap.com", VERSION, ns, "backupschedules", "one")

    def events(*, namespace: str | None, selector: str | None) -> list[tuple[str, str]]:
        kwargs: dict[str, Any] = {"resource_version": rv, "timeout_seconds": 1}
        if selector:
            kwargs["field_selector"] = selector
        if namespace is None:
            stream = watch.Watch().stream(crs.list_cluster_custom_object, "pingcap.com", VERSION,
                                          "backupschedules", **kwargs)
        else:
            stream = watch.Watch().stream(crs.list_namespaced_custom_object, "pingcap.com", VERSION, namespace,
                                          "backupschedules", **kwargs)
        return [(e["type"], e["object"]["metadata"]["name"]) for e in stream
                if e["object"]["metadata"].get("namespace") == ns]

    assert events(namespace=ns, selector="metadata.name=one") == [
        ("ADDED", "one"), ("MODIFIED", "one"), ("DELETED", "one")]
    assert events(namespace=None, selector="metadata.name==two") == [("ADDED", "two"), ("MODIFIED", "two")]
    assert events(namespace=ns, selector="metadata.name!=one") == [("ADDED", "two"), ("MODIFIED", "two")]
    assert len(events(namespace=ns, selector=None)) == 5
    after = sandbox.request_counts()
    assert after["total"] - before["total"] == 5 + 4  # 5 writes, 4 watches
    assert after["byResource"]["watch backupschedules"] - before["byResource"].get("watch backupschedules", 0) == 4
    assert after["activeWatches"] == before["activeWatches"]


def test_a_watch_ends_when_its_client_goes_away(sandbox, crs, core):
    # A triggerer killed mid-wait closes its connections; the API server must drop those watches at once, not
    # keep them until their timeout.
    import socket
    import urllib.parse

    ns = _ns(core)
    before = sandbox.active_watches()
    url = urllib.parse.urlsplit(sandbox.url)
    clients = []
    for _ in range(3):
        client = socket.create_connection((url.hostname, url.port), timeout=10)
        client.sendall(f"GET /apis/pingcap.com/{VERSION}/namespaces/{ns}/backupschedules?watch=true"
                       f"&timeoutSeconds=600 HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        assert client.recv(1024).startswith(b"HTTP/1.1 200")
        clients.append(client)
    assert sandbox.active_watches() == before + 3
    for client in clients:
        client.close()
    deadline = time.monotonic() + 30
    while sandbox.active_watches() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox.active_watches() == before


def test_faults_503_409_and_cut_watches(sandbox, crs, core):
    ns = _ns(core)
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", _backup("x"))
    sandbox.set_faults(api_error_rate=1.0, api_error_codes=[503])
    try:
        with pytest.raises(ApiException) as exc:
            crs.get_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "x")
        assert exc.value.status == 503
    finally:
        sandbox.set_faults(api_error_rate=0.0)
    sandbox.set_faults(patch_conflicts=1)
    with pytest.raises(ApiException) as conflict:
        crs.patch_namespaced_custom_object(
            "pingcap.com", VERSION, ns, "backups", "x", {"spec": {"cleanPolicy": "Delete"}}
        )
    assert conflict.value.status == 409
    crs.patch_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", "x", {"spec": {"cleanPolicy": "Delete"}})
    sandbox.set_faults(watch_cut_after=0.5)
    try:
        started = time.monotonic()
        # The connection drops mid-stream instead of the watch ending after 30 s.
        with pytest.raises(urllib3.exceptions.ProtocolError):
            for _ in watch.Watch().stream(
                crs.list_namespaced_custom_object,
                "pingcap.com",
                VERSION,
                ns,
                "backups",
                resource_version=crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backups")["metadata"][
                    "resourceVersion"
                ],
                timeout_seconds=30,
                _request_timeout=10,
            ):
                pass
        assert time.monotonic() - started < 5
    finally:
        sandbox.set_faults(watch_cut_after=None)


def test_kubernetes_asyncio_client_and_airflow_hooks(sandbox, tmp_path, monkeypatch):
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import config as aconfig
    from kubernetes_asyncio import watch as awatch

    async def run() -> list[str]:
        api = await aconfig.new_client_from_config(config_file=str(sandbox.kubeconfig))
        async with api:
            crs = aclient.CustomObjectsApi(api)
            listed = await crs.list_namespaced_custom_object("pingcap.com", VERSION, "test1", "backups")
            names = [o["metadata"]["name"] for o in listed["items"]]
            w = awatch.Watch()
            async for event in w.stream(
                crs.list_namespaced_custom_object,
                "pingcap.com",
                VERSION,
                "test1",
                "backups",
                field_selector=f"metadata.name={names[0]}",
                timeout_seconds=1,
            ):
                names.append(event["type"])
            return names

    names = asyncio.run(run())
    assert any(n.startswith("demo1-snapshot-") for n in names) and "ADDED" in names

    # Airflow's hooks, configured the way the project configures them: a connection with kube_config_path.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANDBOX_K8S",
        f'{{"conn_type": "kubernetes", "extra": {{"kube_config_path": "{sandbox.kubeconfig}"}}}}',
    )
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook

    hook = KubernetesHook(conn_id="sandbox_k8s")
    got = hook.get_custom_object("pingcap.com", VERSION, "backups", names[0], namespace="test1")
    assert got["metadata"]["name"] == names[0]

    async def via_async_hook() -> str:
        async with AsyncKubernetesHook(conn_id="sandbox_k8s").get_conn() as api:
            obj = await aclient.CustomObjectsApi(api).get_namespaced_custom_object(
                "pingcap.com", VERSION, "test1", "backups", names[0]
            )
            return obj["metadata"]["name"]

    assert asyncio.run(via_async_hook()) == names[0]
