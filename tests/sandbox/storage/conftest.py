"""Real storage servers for the storage tests: one moto (with IAM auth on) and one Azurite per session."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from azure.storage.blob import ContainerClient
from tidb_sandbox.storage import services
from tidb_sandbox.storage.base import Location
from tidb_sandbox.storage.locations import Endpoints, ensure_bucket, open_location

from .storage_helpers import AZURE_ACCOUNT, AZURE_KEY, CONTAINER, REGION, azure_block, local_block, s3_block


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.ManagedService]:
    logs = tmp_path_factory.mktemp("logs")
    with services.start_moto(log_path=logs / "moto.log") as service:
        yield service


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.ManagedService]:
    # No skip when Azurite is missing: start_azurite fails with the `npm ci` hint instead.
    work = tmp_path_factory.mktemp("azurite")
    with services.start_azurite(
        workdir=work / "data", accounts={AZURE_ACCOUNT: AZURE_KEY}, log_path=work / "azurite.log"
    ) as service:
        yield service


@pytest.fixture(scope="session")
def endpoints(
    moto: services.ManagedService, azurite: services.ManagedService, tmp_path_factory: pytest.TempPathFactory
) -> Endpoints:
    volumes = tmp_path_factory.mktemp("volumes")
    return Endpoints(s3=moto.endpoint, azure_blob=azurite.endpoint, local_root=volumes)


@pytest.fixture(scope="session")
def s3_secret(moto: services.ManagedService) -> dict[str, str]:
    access_key, secret_key = services.ensure_s3_credentials(moto)
    return {"access_key": access_key, "secret_key": secret_key}


@pytest.fixture(scope="session")
def azure_secret() -> dict[str, str]:
    return {"AZURE_STORAGE_ACCOUNT": AZURE_ACCOUNT, "AZURE_STORAGE_KEY": AZURE_KEY}


@pytest.fixture(scope="session")
def seed_buckets(
    endpoints: Endpoints, s3_secret: dict[str, str], azure_secret: dict[str, str]
) -> None:
    ensure_bucket(open_location(s3_block(""), s3_secret, endpoints))
    ensure_bucket(open_location(azure_block(""), azure_secret, endpoints))


LocationFactory = Callable[[str], Location]


@pytest.fixture
def open_at(
    endpoints: Endpoints, s3_secret: dict[str, str], azure_secret: dict[str, str], seed_buckets: None
) -> Callable[[str], LocationFactory]:
    """open_at(kind)(prefix): a location of that kind under a prefix unique to this test."""
    run = uuid.uuid4().hex[:10]

    def for_kind(kind: str) -> LocationFactory:
        def make(prefix: str) -> Location:
            full = f"t-{run}/{prefix}"
            if kind == "s3":
                return open_location(s3_block(full), s3_secret, endpoints)
            if kind == "azblob":
                return open_location(azure_block(full), azure_secret, endpoints)
            return open_location(local_block(full), None, endpoints)

        return make

    return for_kind


@pytest.fixture(scope="session")
def raw_s3(moto: services.ManagedService, s3_secret: dict[str, str]) -> Any:
    """A plain boto3 client, to look at what really landed in the bucket."""
    return boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=s3_secret["access_key"],
        aws_secret_access_key=s3_secret["secret_key"],
    )


@pytest.fixture(scope="session")
def raw_container(azurite: services.ManagedService, seed_buckets: None) -> ContainerClient:
    return ContainerClient(
        azurite.account_endpoint(AZURE_ACCOUNT),
        CONTAINER,
        credential={"account_name": AZURE_ACCOUNT, "account_key": AZURE_KEY},
    )
