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


def test_a_credential_without_delete_is_refused_the_delete_as_aws_refuses_it(
    moto: services.ManagedService, seed_buckets: None
) -> None:
    """A policy with list, get and put but no s3:DeleteObject: reads and writes pass, both deletes are refused and
    the object stays (DeleteObject: 403 AccessDenied; DeleteObjects: 200 with an AccessDenied error per key)."""
    import boto3
    from botocore.exceptions import ClientError

    keys = services.create_s3_credentials(moto, "no-delete", ["s3:ListBucket", "s3:GetObject", "s3:PutObject"])
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-west-1",
                      aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
    s3.put_object(Bucket=BUCKET, Key="no-delete/probe", Body=b"1")
    assert s3.get_object(Bucket=BUCKET, Key="no-delete/probe")["Body"].read() == b"1"
    with pytest.raises(ClientError) as single:
        s3.delete_object(Bucket=BUCKET, Key="no-delete/probe")
    assert single.value.response["Error"]["Code"] == "AccessDenied"
    batch = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "no-delete/probe"}]})
    assert [(e["Key"], e["Code"]) for e in batch["Errors"]] == [("no-delete/probe", "AccessDenied")]
    assert "Deleted" not in batch
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="no-delete/")["KeyCount"] == 1
