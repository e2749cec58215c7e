from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from tidb_sandbox.storage import services
from tidb_sandbox.storage.locations import Endpoints, open_location

from .storage_helpers import AZURE_ACCOUNT, AZURE_KEY, BUCKET, CONTAINER, azure_block


def test_moto_checks_every_request(moto: services.ManagedService, s3_secret: dict[str, str]) -> None:
    assert services.ensure_s3_credentials(moto) == (s3_secret["access_key"], s3_secret["secret_key"])
    assert moto.endpoint == f"http://127.0.0.1:{moto.port}"
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{moto.endpoint}/{BUCKET}?list-type=2", timeout=10)
    # Refused, though moto answers an unsigned request with 500 where AWS says 403 AccessDenied.
    assert unsigned.value.code >= 400


def test_azurite_serves_accounts_path_style(azurite: services.ManagedService, endpoints: Endpoints) -> None:
    assert azurite.accounts == {AZURE_ACCOUNT: AZURE_KEY}
    assert azurite.account_endpoint(AZURE_ACCOUNT) == f"http://127.0.0.1:{azurite.port}/{AZURE_ACCOUNT}"
    # A SAS token from the CR (storageAccount + sasToken, no Secret) works too.
    sas = generate_container_sas(
        AZURE_ACCOUNT,
        CONTAINER,
        account_key=AZURE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    block = azure_block("sas")
    block["azblob"].update(storageAccount=AZURE_ACCOUNT, sasToken=sas)
    del block["azblob"]["secretName"]
    loc = open_location(block, None, endpoints)
    loc.put("x", b"1")
    assert loc.get("x") == b"1"


def test_stop_ends_the_server_and_frees_its_port(tmp_path: Path) -> None:
    service = services.start_moto(log_path=tmp_path / "moto.log", auth=False)
    assert service.running() and service.s3_credentials is None
    service.stop()
    service.stop()  # idempotent
    assert not service.running()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", service.port)) != 0
    assert (tmp_path / "moto.log").exists()


def test_missing_azurite_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZURITE_BIN", str(tmp_path / "nope"))
    with pytest.raises(services.ServiceError, match="AZURITE_BIN"):
        services.find_azurite_blob()
    monkeypatch.delenv("AZURITE_BIN")
    monkeypatch.setattr(services, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(services.ServiceError, match="npm ci"):
        services.start_azurite(workdir=tmp_path / "w")


def test_free_port_is_bindable() -> None:
    port = services.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
