"""TidbOperatorHook under API faults: the sandbox's injected 5xx (some after the write was applied) and,
through a local proxy, cut connections and 429 with Retry-After. Every call ends well, and no create
ever makes a second object."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from tidb_pitr.cr.api import LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY
from tidb_pitr.hooks import retry
from tidb_pitr.hooks.kubernetes import CrNotFound, ForeignResource, TidbOperatorHook
from urllib3.exceptions import NewConnectionError, ProtocolError

from ..conftest import s3_block, unique

OURS = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_RUN: "run-faults"}
# Small waits, many attempts: a 30% error rate must not exhaust a test's budget by bad luck.
FAST = {"max_attempts": 30, "retry_delay": 0.001, "max_retry_delay": 0.01}


def _body(name: str, cluster: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"backupType": "full", "br": {"cluster": cluster},
                     "s3": {**s3_block()["s3"], "prefix": f"{cluster}/{name}"}}}


@pytest.fixture
def faults(sandbox: Any) -> Iterator[Callable[..., Any]]:
    """Set sandbox faults for one test; the sandbox is shared by the session, so always put them back."""
    try:
        yield sandbox.set_faults
    finally:
        sandbox.clear_faults()
        # Not every version of clear_faults resets these two.
        sandbox.set_faults(api_error_codes=[500, 503], api_error_after_write=0.5)


def _names(hook: TidbOperatorHook, namespace: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in hook.list("backups", namespace))


# -- the sandbox's injected errors ----------------------------------------------------------------------------
def test_creates_under_errors_after_write_make_exactly_one_object_each(connections, fresh_cluster, faults):
    ns, cluster = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"], **FAST)
    names = [unique("snap") for _ in range(30)]
    faults(api_error_rate=0.3, api_error_after_write=1.0)
    results = [hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS) for name in names]
    faults(api_error_rate=0.0)
    assert [obj["metadata"]["name"] for obj, _ in results] == names
    # Each name was new, so each call made its object: by a 201, or by a write applied before its error.
    assert all(created for _, created in results)
    assert _names(hook, ns) == sorted(names)
    # And the object each call returned is the one that exists (one uid per name, never replaced).
    uids = {o["metadata"]["name"]: o["metadata"]["uid"] for o in hook.list("backups", ns)}
    assert {obj["metadata"]["name"]: obj["metadata"]["uid"] for obj, _ in results} == uids


def test_reads_patches_and_deletes_succeed_under_errors(connections, fresh_cluster, faults):
    ns, cluster = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"], **FAST)
    names = [unique("snap") for _ in range(8)]
    for name in names:
        hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS)
    faults(api_error_rate=0.3, api_error_after_write=1.0)
    for round_ in range(10):
        for name in names[:2]:
            assert hook.get("backups", name, ns)["metadata"]["name"] == name
            assert hook.require("backups", name, ns)["metadata"]["name"] == name
            patched = hook.merge_patch("backups", name, ns, {"metadata": {"annotations": {"round": str(round_)}}})
            assert patched["metadata"]["annotations"]["round"] == str(round_)
        assert _names(hook, ns) == sorted(names)
        items, version = hook.list_with_version("backups", ns, label_selector=f"{LABEL_RUN}=run-faults")
        assert len(items) == len(names) and version
        assert hook.get("backups", "nope", ns) is None
    with pytest.raises(CrNotFound):
        hook.require("backups", "nope", ns)
    with pytest.raises(CrNotFound):
        hook.merge_patch("backups", "nope", ns, {"metadata": {"annotations": {"x": "y"}}})
    # Any custom object: the cluster itself, through the generic calls restore planning uses.
    tc = hook.get_object("pingcap.com", "v1alpha1", "tidbclusters", cluster, ns)
    assert tc is not None and tc["metadata"]["name"] == cluster
    assert hook.get_object("pingcap.com", "v1alpha1", "tidbclusters", "nope", ns) is None
    assert [o["metadata"]["name"] for o in hook.list_objects("pingcap.com", "v1alpha1", "tidbclusters", ns)] \
        == [cluster]
    # Every delete deleted, even when the answer to the applied one was an error and the retry saw 404.
    assert [hook.delete("backups", name, ns) for name in names] == [True] * len(names)
    faults(api_error_rate=0.0)
    # The simulated operator's finalizers may keep a deleted Backup a moment; every one is being deleted.
    assert all(obj["metadata"].get("deletionTimestamp") for obj in hook.list("backups", ns))


def test_a_409_is_retried_for_a_patch(connections, fresh_cluster, faults):
    ns, cluster = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"], **FAST)
    name = unique("snap")
    hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS)
    faults(patch_conflicts=3)
    patched = hook.merge_patch("backups", name, ns, {"metadata": {"annotations": {"after": "conflicts"}}})
    assert patched["metadata"]["annotations"]["after"] == "conflicts"


def test_deleting_what_is_not_there_is_false_when_no_attempt_reached_it(connections, fresh_cluster, faults):
    ns, _ = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"], **FAST)
    faults(api_error_rate=0.5, api_error_codes=[429])  # flow control refuses before handling: never applied
    assert [hook.delete("backups", unique("nope"), ns) for _ in range(5)] == [False] * 5


def test_a_foreign_object_is_refused_under_errors(connections, fresh_cluster, faults):
    ns, cluster = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"], **FAST)
    foreign, other_run = unique("snap"), unique("snap")
    hook.create_or_adopt("backups", _body(foreign, cluster, {LABEL_MANAGED_BY: "backup-schedule-operator"}), ns, {})
    hook.create_or_adopt("backups", _body(other_run, cluster, {**OURS, LABEL_RUN: "run-other"}), ns, {})
    faults(api_error_rate=0.5, api_error_after_write=1.0)
    for _ in range(5):
        with pytest.raises(ForeignResource, match="backup-schedule-operator"):
            hook.create_or_adopt("backups", _body(foreign, cluster, OURS), ns, OURS)
        with pytest.raises(ForeignResource, match="not ours to adopt"):
            hook.create_or_adopt("backups", _body(other_run, cluster, OURS), ns, OURS)
    faults(api_error_rate=0.0)
    assert _names(hook, ns) == sorted([foreign, other_run])
    labels = {o["metadata"]["name"]: o["metadata"]["labels"] for o in hook.list("backups", ns)}
    assert labels[foreign] == {LABEL_MANAGED_BY: "backup-schedule-operator"}


# -- cut connections and 429, through a local proxy ------------------------------------------------------------
# The sandbox cuts only watch streams (watch_cut_after); for every other request the proxy does it.
CUT, APPLY_THEN_CUT = "cut", "apply-then-cut"


class FlakyProxy(ThreadingHTTPServer):
    """An HTTP proxy in front of the sandbox's Kubernetes API that misbehaves for chosen requests.

    `plan(method, action, times)`: the next `times` requests of that method are cut before they are
    forwarded (CUT), forwarded and then cut before the answer (APPLY_THEN_CUT: the server applied a
    write the client never hears of), or answered with a status and headers without forwarding.
    """

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        self.rules: list[tuple[str, Any]] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def plan(self, method: str, action: Any, times: int = 1) -> None:
        with self.lock:
            self.rules += [(method, action)] * times

    def take(self, method: str) -> Any:
        with self.lock:
            for i, (rule_method, action) in enumerate(self.rules):
                if rule_method == method:
                    del self.rules[i]
                    return action
        return None

    def record(self, method: str, path: str, outcome: str) -> None:
        with self.lock:
            self.log.append((method, path.split("?")[0], outcome))

    def methods(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(method, outcome) for method, _, outcome in self.log]

    def forward(self, method: str, path: str, headers: Any, body: bytes | None) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            skip = {"host", "connection", "content-length", "transfer-encoding"}
            conn.request(method, path, body=body, headers={k: v for k, v in headers.items() if k.lower() not in skip})
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FlakyProxy

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        action = self.server.take(self.command)
        if action == CUT:
            self.server.record(self.command, self.path, CUT)
            self.close_connection = True  # no answer: the client sees the connection end
            return
        if isinstance(action, tuple):
            status, headers = action
            self.server.record(self.command, self.path, str(status))
            self._answer(status, list(headers.items()), json.dumps({"kind": "Status", "code": status}).encode())
            return
        status, headers, data = self.server.forward(self.command, self.path, self.headers, body)
        if action == APPLY_THEN_CUT:
            self.server.record(self.command, self.path, APPLY_THEN_CUT)
            self.close_connection = True
            return
        self.server.record(self.command, self.path, str(status))
        self._answer(status, headers, data)

    def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

    def log_message(self, *args: Any) -> None:  # quiet: the test reads `FlakyProxy.log` instead
        pass


def _kubeconfig(sandbox: Any) -> dict[str, Any]:
    return yaml.safe_load(sandbox.kubeconfig.read_text())


def _hook_at(monkeypatch: pytest.MonkeyPatch, sandbox: Any, server: str,
             **kwargs: Any) -> tuple[TidbOperatorHook, list[float]]:
    """A hook whose connection points at `server`, and the waits it asked for (recorded, not slept)."""
    config = _kubeconfig(sandbox)
    for entry in config["clusters"]:
        entry["cluster"]["server"] = server
    conn_id = unique("k8s_flaky").replace("-", "_")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                       json.dumps({"conn_type": "kubernetes", "extra": {"kube_config": config}}))
    hook = TidbOperatorHook(conn_id, **{**FAST, **kwargs})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    hook.retry_policy = dataclasses.replace(hook.retry_policy, sleep=sleep)
    return hook, waits


@pytest.fixture
def proxy(sandbox: Any) -> Iterator[FlakyProxy]:
    server = FlakyProxy(_kubeconfig(sandbox)["clusters"][0]["cluster"]["server"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_create_cut_after_it_was_applied_is_adopted_not_repeated(monkeypatch, sandbox, connections,
                                                                     fresh_cluster, proxy):
    ns, cluster = fresh_cluster()
    hook, waits = _hook_at(monkeypatch, sandbox, proxy.url)
    name = unique("snap")
    proxy.plan("POST", APPLY_THEN_CUT)
    obj, created = hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS)
    assert created and obj["metadata"]["name"] == name
    # One create sent, read back, adopted: never a second POST.
    assert proxy.methods() == [("POST", APPLY_THEN_CUT), ("GET", "200")]
    assert len(waits) == 1
    assert _names(TidbOperatorHook(connections["kubernetes"]), ns) == [name]


def test_a_create_cut_before_it_was_applied_is_sent_again(monkeypatch, sandbox, connections, fresh_cluster, proxy):
    ns, cluster = fresh_cluster()
    hook, _ = _hook_at(monkeypatch, sandbox, proxy.url)
    name = unique("snap")
    proxy.plan("POST", CUT, times=2)
    proxy.plan("GET", CUT)
    obj, created = hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS)
    assert created and obj["metadata"]["name"] == name
    # Cut -> read back (cut, again: 404) -> create again (cut) -> read back (404) -> create (201).
    assert proxy.methods() == [("POST", CUT), ("GET", CUT), ("GET", "404"), ("POST", CUT), ("GET", "404"),
                               ("POST", "201")]
    assert _names(TidbOperatorHook(connections["kubernetes"]), ns) == [name]


def test_a_429_is_sent_again_after_its_retry_after_without_a_read_back(monkeypatch, sandbox, fresh_cluster, proxy):
    ns, cluster = fresh_cluster()
    hook, waits = _hook_at(monkeypatch, sandbox, proxy.url, max_retry_after=0.25)
    name = unique("snap")
    proxy.plan("POST", (429, {"Retry-After": "7"}))
    proxy.plan("GET", (429, {"Retry-After": "0.2"}))
    obj, created = hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS)
    assert created and obj["metadata"]["name"] == name
    # A 429 was refused before it was handled: create again at once, no read-back needed.
    assert proxy.methods() == [("POST", "429"), ("POST", "201")]
    assert hook.get("backups", name, ns) is not None
    assert waits == [0.25, 0.2]  # Retry-After, capped by max_retry_after; the backoff alone is far smaller


def test_patch_get_list_and_delete_survive_cut_connections(monkeypatch, sandbox, connections, fresh_cluster, proxy):
    ns, cluster = fresh_cluster()
    hook, _ = _hook_at(monkeypatch, sandbox, proxy.url)
    name = unique("snap")
    hook.create_or_adopt("backups", _body(name, cluster, OURS), ns, OURS)
    proxy.plan("GET", CUT, times=3)
    assert hook.get("backups", name, ns)["metadata"]["name"] == name
    assert [o["metadata"]["name"] for o in hook.list("backups", ns)] == [name]
    proxy.plan("PATCH", APPLY_THEN_CUT, times=2)
    patched = hook.merge_patch("backups", name, ns, {"metadata": {"annotations": {"note": "kept"}}})
    assert patched["metadata"]["annotations"]["note"] == "kept"
    proxy.plan("DELETE", APPLY_THEN_CUT)
    assert hook.delete("backups", name, ns) is True  # a 404 on the retry means the cut attempt deleted it
    deletes = [outcome for method, outcome in proxy.methods() if method == "DELETE"]
    # The retry sees 404, or 200 while the simulated operator's finalizer still holds the object.
    assert deletes[0] == APPLY_THEN_CUT and deletes[1:] in (["404"], ["200"])


def test_a_connection_cut_every_time_gives_up_after_max_attempts(monkeypatch, sandbox, fresh_cluster, proxy):
    ns, _ = fresh_cluster()
    hook, waits = _hook_at(monkeypatch, sandbox, proxy.url, max_attempts=4)
    proxy.plan("GET", CUT, times=100)
    with pytest.raises(ProtocolError) as cut:
        hook.get("backups", "anything", ns)
    # Exactly max_attempts requests: urllib3's own silent resends are off, every retry is the hook's.
    assert proxy.methods() == [("GET", CUT)] * 4
    assert len(waits) == 3
    assert any("after 4 attempts" in note for note in cut.value.__notes__)


def test_a_refused_connection_gives_up_within_the_budget(monkeypatch, sandbox):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook, waits = _hook_at(monkeypatch, sandbox, f"http://127.0.0.1:{port}", max_attempts=50,
                           retry_delay=0.02, max_retry_delay=0.02, retry_budget=0.1)
    # The budget's clock is one the test moves: each wait the hook asks for passes exactly that long, and a refused
    # connection none (on a loaded machine one real attempt once took longer than the whole 0.1 s budget).
    clock = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(retry, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time, sleep=sleep))
    hook.retry_policy = dataclasses.replace(hook.retry_policy, sleep=sleep)
    with pytest.raises(NewConnectionError) as refused:
        hook.list("backups", "default")
    # The time budget stops it long before the 50 attempts: the waits slept never add up past it.
    assert 1 <= len(waits) < 49 and sum(waits) <= 0.1
    assert any("gave up on list backups.pingcap.com in default" in note for note in refused.value.__notes__)
    waits.clear()
    ok, message = hook.test_connection()
    assert not ok and "refused" in message.lower()
    assert len(waits) <= 2  # the connection test's own, shorter bound: 3 attempts at most
