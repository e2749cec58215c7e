"""A sandbox per module for the SQL endpoint tests: test1/demo1 with a few hours of history and a live
workload, the empty restore target test1/demo1-restore, and real clients (PyMySQL, kubernetes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from kubernetes import client, config
from tidb_sandbox.client import SandboxHandle, running_sandbox, sql_params

NAMESPACE, SOURCE, TARGET = "test1", "demo1", "demo1-restore"


@pytest.fixture(scope="module")
def sql_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("sql-sandbox"), "--seed-days", "0.1", "--no-azurite",
                         "--rng-seed", "5") as handle:
        yield handle


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
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout}s; last value: {value!r}")
        time.sleep(0.1)
        value = fetch()
    return value
