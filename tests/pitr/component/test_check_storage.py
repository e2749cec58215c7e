"""`check`'s storage rows against moto with IAM on: the sandbox's credential lists, writes, reads back and deletes
the probe and leaves the bucket as it was; a credential whose policy lacks s3:DeleteObject (what retention deletes
with) is FAILED at the delete, naming the probe object it had to leave, and nothing outside the probe's folder
changes either way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from tidb_pitr.config import StorageConfig
from tidb_pitr.flows.tasks.check import storage_rows
from tidb_sandbox.storage.services import ManagedService, create_s3_credentials, start_moto

pytestmark = pytest.mark.component

BUCKET = "check-backups"
REGION = "us-west-1"
ROOT = "demo1"
WITHOUT_DELETE = ["s3:ListBucket", "s3:GetObject", "s3:PutObject"]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedService]:
    with start_moto(0, log_path=tmp_path_factory.mktemp("logs") / "moto.log") as service:
        assert service.s3_credentials is not None
        access_key, secret_key = service.s3_credentials
        s3 = boto3.client("s3", endpoint_url=service.endpoint, region_name=REGION, aws_access_key_id=access_key,
                          aws_secret_access_key=secret_key)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        # A backup of the cluster's and a neighbour's object: the probe must leave both alone.
        s3.put_object(Bucket=BUCKET, Key=f"{ROOT}/snapshot-20260101000000/backupmeta", Body=b"meta")
        s3.put_object(Bucket=BUCKET, Key="other/backupmeta", Body=b"other")
        yield service


def _storage(monkeypatch: pytest.MonkeyPatch, moto: ManagedService, conn_id: str, keys: tuple[str, str]) -> Any:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "aws", "login": keys[0], "password": keys[1],
         "extra": {"endpoint_url": moto.endpoint, "region_name": REGION}}))
    return StorageConfig.model_validate({"provider": "s3", "bucket": BUCKET, "root": ROOT, "region": REGION,
                                         "secret_name": "s3-secret", "conn_id": conn_id})


def _listing(moto: ManagedService) -> dict[str, bytes]:
    assert moto.s3_credentials is not None
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name=REGION,
                      aws_access_key_id=moto.s3_credentials[0], aws_secret_access_key=moto.s3_credentials[1])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_a_full_credential_probes_and_leaves_the_bucket_as_it_was(moto, monkeypatch) -> None:
    assert moto.s3_credentials is not None
    before = _listing(moto)
    rows = storage_rows(_storage(monkeypatch, moto, "check_full", moto.s3_credentials), "full")
    assert [(r.name, r.status) for r in rows] == [("storage list", "OK"), ("storage probe", "OK")]
    assert "1 snapshot folder(s)" in rows[0].value
    assert f"s3://{BUCKET}/{ROOT}/.tidb-pitr-check/probe-full-" in rows[1].value
    assert _listing(moto) == before


def test_a_credential_without_delete_fails_at_the_delete_and_names_what_it_left(moto, monkeypatch) -> None:
    before = _listing(moto)
    keys = create_s3_credentials(moto, "check-no-delete", WITHOUT_DELETE)
    rows = storage_rows(_storage(monkeypatch, moto, "check_no_delete", keys), "nodelete")
    assert [(r.name, r.status) for r in rows] == [("storage list", "OK"), ("storage probe", "FAILED")]
    probe = rows[1]
    assert probe.value.startswith("delete failed: ") and "AccessDenied" in probe.value, probe.value
    assert "check_no_delete" in probe.action and "retention" in probe.action
    left = probe.value.rsplit("left behind: ", 1)[1]
    assert left.startswith(f"s3://{BUCKET}/{ROOT}/.tidb-pitr-check/probe-nodelete-")
    after = _listing(moto)
    # The one object left is the probe the row names; nothing else was touched.
    assert {k: v for k, v in after.items() if k not in before}.keys() == {left.removeprefix(f"s3://{BUCKET}/")}
    assert {k: after[k] for k in before} == before
