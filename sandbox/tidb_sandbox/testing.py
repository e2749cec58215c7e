"""The pytest plugin: the session's sandbox, and the bookkeeping that keeps it from filling up between tests.

Enable with `pytest_plugins = ["tidb_sandbox.testing"]`. Fixtures only; the client they use (SandboxHandle,
start/stop/running_sandbox, sql_params) lives in `tidb_sandbox.client` and is re-exported here.

Every cluster a handle creates is noted with who made it: a test's body or a function-scoped fixture (deleted
when the test ends, after its fixtures are torn down), a module- or class-scoped fixture (which deletes its own),
or a session-scoped fixture (which deletes its own at the end of the session). After each module, a cluster
that is still alive and was not there before the module (nor made by a session fixture) is a leak: the module's
last test errors, naming it, and the leak is deleted so that later modules run on an idle sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .client import (
    CREATE_LISTENERS,
    FAST_SETTINGS,
    START_TIMEOUT,
    SandboxHandle,
    running_sandbox,
    sql_params,
    start_sandbox,
    stop_sandbox,
)

__all__ = ["FAST_SETTINGS", "START_TIMEOUT", "SandboxHandle", "running_sandbox", "sandbox", "sql_params",
           "start_sandbox", "stop_sandbox"]


@dataclass
class _Made:
    """The plugin's notes: which fixture scope is being set up, and the clusters made so far, by owner."""

    owners: list[str] = field(default_factory=list)  # scopes of fixtures being set up, innermost last
    handles: list[SandboxHandle] = field(default_factory=list)
    by_test: list[tuple[SandboxHandle, str, str]] = field(default_factory=list)
    by_session: set[tuple[int, str]] = field(default_factory=set)  # (id(handle), "ns/name")
    # What each session sandbox cost, read as it stops: its background (workloads, log flushes) is every lane's tax.
    costs: list[str] = field(default_factory=list)

    def record(self, handle: SandboxHandle, namespace: str, name: str) -> None:
        if not any(h is handle for h in self.handles):
            self.handles.append(handle)
        owner = self.owners[-1] if self.owners else "function"
        if owner == "function":
            self.by_test.append((handle, namespace, name))
        elif owner == "session":
            self.by_session.add((id(handle), f"{namespace}/{name}"))

    def live_handles(self) -> list[SandboxHandle]:
        self.handles = [h for h in self.handles if h.process.poll() is None]
        return list(self.handles)


_MADE = _Made()
CREATE_LISTENERS.append(_MADE.record)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest) -> object:
    _MADE.owners.append(fixturedef.scope)
    try:
        return (yield)
    finally:
        _MADE.owners.pop()


@pytest.fixture(autouse=True)
def _sandbox_clusters_of_the_test() -> Iterator[None]:
    """Delete the clusters the test's body and its function-scoped fixtures made, once all of those are done
    (this fixture is set up first, so it is torn down last): a test may look at its clusters to its very end."""
    _MADE.by_test.clear()
    yield
    made, _MADE.by_test[:] = list(_MADE.by_test), []
    for handle, namespace, name in reversed(made):
        if handle.process.poll() is None:
            handle.delete_cluster(namespace, name)


@pytest.fixture(scope="module", autouse=True)
def _sandbox_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: no cluster it made may still be alive (one GET per live sandbox, no CPU sampling)."""
    before = {id(h): h.live_clusters() for h in _MADE.live_handles()}
    yield
    leaks = []
    for handle in _MADE.live_handles():
        baseline = before.get(id(handle), set(handle.initial_clusters))
        usage = handle.usage()
        leaked = sorted(c for c in set(usage["clusters"]) - baseline if (id(handle), c) not in _MADE.by_session)
        if leaked:
            leaks.append(f"{handle.url}: {', '.join(leaked)} (workloads {usage['workloads']}, log tasks "
                         f"{usage['logTasks']}, tracked backups {usage['trackedBackups']}; CPU seconds so far: "
                         f"sandbox {usage['cpuSeconds']}, storage {usage.get('servicesCpuSeconds')})")
            for cluster in leaked:  # so that the next module runs on an idle sandbox
                namespace, _, name = cluster.partition("/")
                handle.delete_cluster(namespace, name)
    if leaks:
        pytest.fail(f"{request.node.nodeid} left clusters alive in the sandbox (a fixture that creates a "
                    f"cluster must delete it at teardown): " + "; ".join(leaks), pytrace=False)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """One sandbox for the session: test1/demo1 (v1) with 6 days of history on S3, a live workload."""
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), "--seed-days", "6", "--rng-seed", "7") as handle:
        _MADE.handles.append(handle)
        yield handle
        _note_cost("session sandbox", handle)


@pytest.fixture(scope="session")
def manual_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A second session sandbox on a manual clock, started by the first test that asks for it: time stands still
    until a test calls `advance(seconds)`. test1/demo1 (v1) without history, a live workload."""
    with running_sandbox(tmp_path_factory.mktemp("manual-sandbox"), "--clock", "manual", "--rng-seed", "7") as handle:
        _MADE.handles.append(handle)
        yield handle
        _note_cost("manual sandbox", handle)


def _note_cost(what: str, handle: SandboxHandle) -> None:
    if handle.process.poll() is not None:
        return
    usage = handle.usage()
    services = sum((usage.get("servicesCpuSeconds") or {}).values())
    _MADE.costs.append(f"{what}: {usage['cpuSeconds']:.0f} CPU-s, its storage servers {services:.0f} CPU-s, "
                       f"in {usage['uptimeSeconds']:.0f} s")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _MADE.costs:
        terminalreporter.write_line(f"[sandbox] {line}")
