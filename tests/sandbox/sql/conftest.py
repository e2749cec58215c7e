"""A sandbox per module for the SQL endpoint tests: test1/demo1 with a few hours of history and a live
workload, the empty restore target test1/demo1-restore, and real clients (PyMySQL, kubernetes).

A module that sets `SANDBOX_CLOCK = "manual"` gets its sandbox on a manual clock: time moves only when a test
calls `sql_sandbox.advance(seconds)`, and `wait_for` advances it instead of sleeping. `SANDBOX_SETTINGS` (a dict)
overrides the sandbox's settings for the module."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pymysql
import pytest
from kubernetes import client, config
from tidb_sandbox.client import SandboxHandle, running_sandbox, sql_params

NAMESPACE, SOURCE, TARGET = "test1", "demo1", "demo1-restore"


_manual: list[SandboxHandle] = []  # the module's sandbox when it runs on a manual clock


@pytest.fixture(scope="module")
def sql_sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    mode = getattr(request.module, "SANDBOX_CLOCK", "real")
    # A full-table read takes time on the sandbox's clock (scan_rate); on a manual clock it would wait for an
    # advance, so modules that read on a standing clock read instantly unless they set SANDBOX_SETTINGS.
    settings = getattr(request.module, "SANDBOX_SETTINGS", {"scan_rate": 0} if mode == "manual" else {})
    with running_sandbox(tmp_path_factory.mktemp("sql-sandbox"), "--seed-days", "0.1", "--no-azurite",
                         "--rng-seed", "5", "--clock", mode, settings=settings) as handle:
        if mode == "manual":
            _manual.append(handle)
        try:
            yield handle
        finally:
            _manual.clear()


@pytest.fixture(scope="module")
def kube(sql_sandbox: SandboxHandle) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(sql_sandbox.kubeconfig))


@pytest.fixture
def connect(sql_sandbox: SandboxHandle) -> Iterator[Callable[..., pymysql.Connection]]:
    """connect(cluster=SOURCE, **overrides): a PyMySQL connection to a cluster's endpoint, closed after."""
    opened: list[pymysql.Connection] = []

    def make(cluster: str = SOURCE, url: str | None = None, **overrides: Any) -> pymysql.Connection:
        params = {**sql_params(url or sql_sandbox.sql_url(NAMESPACE, cluster)), **overrides}
        connection = pymysql.connect(connect_timeout=10, read_timeout=60, **params)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


def query(connection: pymysql.Connection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        names = [d[0] for d in cursor.description or ()]
        return names, list(cursor.fetchall())


def sql_error(connection: pymysql.Connection, sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as err:
        query(connection, sql)
    code, message = err.value.args
    return code, message


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    """Poll every 0.1 s until done(fetch()); on a manual-clock module sandbox, each poll advances its clock by
    0.1 s and the timeout is virtual."""
    deadline, waited = time.monotonic() + timeout, 0.0
    value = fetch()
    while not done(value):
        if (waited if _manual else time.monotonic() - deadline + timeout) > timeout:
            raise AssertionError(f"not done within {timeout}s; last value: {value!r}")
        if _manual:
            _manual[0].advance(0.1)
            waited += 0.1
        else:
            time.sleep(0.1)
        value = fetch()
    return value


def sandbox_now(sandbox: SandboxHandle) -> datetime:
    """The sandbox's time (virtual on a manual clock)."""
    return datetime.fromtimestamp(sandbox.clock()["time"], UTC)
