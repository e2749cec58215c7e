"""Shared helpers for the component tests: real clients against the session's sandbox."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

GROUPS = ("pingcap.com", "br.pingcap.com")
VERSION = "v1alpha1"


@pytest.fixture(scope="session")
def api_client(sandbox: Any) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(sandbox.kubeconfig))


@pytest.fixture(scope="session")
def crs(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(
    fetch: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 30.0, interval: float = 0.1,
    *, clock: Any = None,
) -> Any:
    """Poll until predicate(fetch()) holds; fail with the last value seen. With `clock` (a manual-clock sandbox's
    handle), each interval is virtual time advanced, not real time slept, and the timeout is virtual too."""
    if clock is not None:
        waited = 0.0
        value = fetch()
        while not predicate(value):
            if waited > timeout:
                raise AssertionError(f"condition not met within {timeout}s of virtual time; last value: {value!r}")
            clock.advance(interval)
            waited += interval
            value = fetch()
        return value
    deadline = time.monotonic() + timeout
    value = fetch()
    while not predicate(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(interval)
        value = fetch()
    return value


def advancing(sandbox: Any) -> Callable[..., Any]:
    """`wait_for` on a manual-clock sandbox: each poll advances its clock instead of sleeping."""
    return functools.partial(wait_for, clock=sandbox)


def wrote_after(sandbox: Any, namespace: str, name: str, ts: int, seconds: float) -> bool:
    """Whether the cluster's workload has written a version at least `seconds` after TSO `ts`."""
    newest = sandbox.call("GET", f"/clusters/{namespace}/{name}")["maxTs"] or 0
    return (newest >> 18) - (ts >> 18) >= seconds * 1000


def s3_storage(prefix: str, secret: str = "s3-secret", bucket: str = "my-bucket") -> dict[str, Any]:
    return {"s3": {"provider": "aws", "secretName": secret, "region": "us-west-1", "bucket": bucket, "prefix": prefix}}


def azblob_storage(prefix: str, secret: str = "azblob-secret") -> dict[str, Any]:
    return {"azblob": {"secretName": secret, "container": "my-container", "prefix": prefix}}


def _cluster_factory(sandbox: Any, made: list[tuple[str, str]]) -> Callable[..., tuple[str, str]]:
    """A fresh simulated cluster in a fresh namespace: (namespace, name), noted in `made` for deletion."""

    def make(
        api_group: str = "pingcap.com",
        workload: dict[str, float] | None = None,
        seed_days: float = 0,
        storage: str = "s3",
        seed_template: bool = True,
    ) -> tuple[str, str]:
        namespace, name = unique("ns"), unique("tc")
        sandbox.create_cluster(
            namespace,
            name,
            api_group=api_group,
            seed_days=seed_days,
            storage=storage,
            workload=workload
            if workload is not None
            else {"inserts_per_s": 20, "updates_per_s": 10, "deletes_per_s": 3},
            storage_root=name,
            seed_template=seed_template,
        )
        made.append((namespace, name))
        return namespace, name

    return make


def _delete(sandbox: Any, made: list[tuple[str, str]]) -> None:
    for namespace, name in made:
        sandbox.delete_cluster(namespace, name)


@pytest.fixture
def new_cluster(sandbox: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """A fresh simulated cluster in a fresh namespace of the session's sandbox: (namespace, name); deleted when
    the test ends."""
    made: list[tuple[str, str]] = []
    yield _cluster_factory(sandbox, made)
    _delete(sandbox, made)


@pytest.fixture(scope="session")
def manual_api_client(manual_sandbox: Any) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(manual_sandbox.kubeconfig))


@pytest.fixture(scope="session")
def manual_crs(manual_api_client: client.ApiClient) -> client.CustomObjectsApi:
    """CustomObjectsApi of the manual-clock sandbox."""
    return client.CustomObjectsApi(manual_api_client)


@pytest.fixture(scope="session")
def manual_core(manual_api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(manual_api_client)


@pytest.fixture
def new_manual_cluster(manual_sandbox: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """A fresh simulated cluster in a fresh namespace of the manual-clock sandbox: (namespace, name); deleted when
    the test ends."""
    made: list[tuple[str, str]] = []
    yield _cluster_factory(manual_sandbox, made)
    _delete(manual_sandbox, made)
