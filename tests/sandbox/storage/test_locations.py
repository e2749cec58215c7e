from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from tidb_sandbox.storage.base import Location, ObjectInfo, ObjectNotFound, StorageError
from tidb_sandbox.storage.locations import Endpoints, open_location, provider_of

from .storage_helpers import AZURE_ACCOUNT, BUCKET, CONTAINER, azure_block, local_block, s3_block, s3_keys

KINDS = ["s3", "azblob", "local"]
Opener = Callable[[str], Callable[[str], Location]]


@pytest.mark.parametrize("kind", KINDS)
def test_object_round_trip(kind: str, open_at: Opener) -> None:
    loc = open_at(kind)("roundtrip")
    assert not loc.exists("a/b.txt")
    loc.put("a/b.txt", b"hello")
    loc.put_many({f"many/{n}": bytes([n]) * n for n in range(1, 40)})
    assert loc.get("a/b.txt") == b"hello"
    assert loc.exists("a/b.txt") and not loc.exists("a/b")  # exact names, not prefixes
    listed = loc.list()
    assert ObjectInfo("a/b.txt", 5) in listed and len(listed) == 40
    assert {i.rel for i in loc.list("many/")} == {f"many/{n}" for n in range(1, 40)}
    with pytest.raises(ObjectNotFound) as missing:
        loc.get("nope")
    assert missing.value.reason == "ObjectNotFound" and missing.value.url == loc.url + "nope"
    assert loc.delete(["a/b.txt"]) == 1
    assert not loc.exists("a/b.txt")


@pytest.mark.parametrize("kind", ["azblob", "local"])
def test_delete_tolerates_objects_already_gone(kind: str, open_at: Opener) -> None:
    loc = open_at(kind)("gone")
    loc.put("x", b"1")
    assert loc.delete(["x", "never-there"]) == 1
    assert loc.delete(["x"]) == 0


def test_s3_delete_batches_over_1000_keys(open_at: Opener, raw_s3: Any) -> None:
    loc = open_at("s3")("bulk")
    names = [f"k/{n:05d}" for n in range(1234)]
    loc.put_many({name: b"." for name in names}, concurrency=32)
    calls: list[int] = []
    loc._client.meta.events.register(  # count DeleteObjects requests on the real wire
        "before-call.s3.DeleteObjects", lambda params, **_: calls.append(len(params["body"]))
    )
    assert loc.delete(names + ["k/absent"]) == 1235  # S3 reports absent keys as deleted, as AWS does
    assert len(calls) == 2
    assert s3_keys(raw_s3, loc.prefix + "/") == {}


def test_azure_delete_batches_over_256_blobs(open_at: Opener, raw_container: Any) -> None:
    loc = open_at("azblob")("bulk")
    names = [f"k/{n:04d}" for n in range(300)]
    loc.put_many({name: b"." for name in names}, concurrency=32)
    assert loc.delete(names) == 300  # one request carries at most 256, so this took two batches
    assert list(raw_container.list_blobs(name_starts_with=loc.prefix + "/")) == []


def test_urls_match_the_operator_status(endpoints: Endpoints, s3_secret: dict, azure_secret: dict) -> None:
    assert open_location(s3_block("my-full-backup-folder"), s3_secret, endpoints).url == (
        "s3://my-bucket/my-full-backup-folder/"
    )
    assert open_location(azure_block("/log-backup-test-1/"), azure_secret, endpoints).url == (
        "azure://my-container/log-backup-test-1/"
    )
    assert open_location(local_block("x/y"), None, endpoints).url == "local:///nfs/x/y/"
    assert provider_of({"backupType": "full", "azblob": {}, "local": {}}) == "azblob"


def test_local_volume_is_shared_by_mount_paths(endpoints: Endpoints) -> None:
    block = local_block("shared")
    other = {"local": {**block["local"], "volumeMount": {"name": "nfs", "mountPath": "/elsewhere"}}}
    open_location(block, None, endpoints).put("f", b"1")
    moved = open_location(other, None, endpoints)
    assert moved.url == "local:///elsewhere/shared/" and moved.get("f") == b"1"
    assert (endpoints.local_root / "nfs" / "shared" / "f").read_bytes() == b"1"
    with pytest.raises(StorageError, match="escapes"):
        moved.get("../../outside")


def test_wrong_s3_secret_key_is_refused_by_the_server(endpoints: Endpoints, s3_secret: dict) -> None:
    bad = open_location(s3_block("denied"), {**s3_secret, "secret_key": "not-the-secret"}, endpoints)
    with pytest.raises(StorageError) as err:
        bad.put("backupmeta", b"{}")
    assert err.value.reason == "StorageAuthFailed" and err.value.code == "SignatureDoesNotMatch"
    assert "s3://my-bucket/denied/backupmeta" in err.value.message and "status code: 403" in err.value.message


def test_unknown_s3_access_key_is_refused_by_the_server(endpoints: Endpoints) -> None:
    unknown = {"access_key": "AKIAUNKNOWN000000000", "secret_key": "x"}
    bad = open_location(s3_block("denied"), unknown, endpoints)
    with pytest.raises(StorageError) as err:
        bad.list()
    assert err.value.reason == "StorageAuthFailed" and err.value.code == "InvalidAccessKeyId"


def test_wrong_azure_key_is_refused_by_the_server(endpoints: Endpoints, azure_secret: dict) -> None:
    wrong = base64.b64encode(b"definitely not the account key").decode()
    bad = open_location(azure_block("denied"), {**azure_secret, "AZURE_STORAGE_KEY": wrong}, endpoints)
    with pytest.raises(StorageError) as err:
        bad.put("backupmeta", b"{}")
    assert err.value.reason == "StorageAuthFailed"
    assert err.value.code in ("AuthorizationFailure", "AuthenticationFailed")
    other_account = {**azure_secret, "AZURE_STORAGE_ACCOUNT": "nosuch"}
    unknown = open_location(azure_block("denied"), other_account, endpoints)
    with pytest.raises(StorageError):
        unknown.list()


@pytest.mark.parametrize(
    ("block", "secret", "missing"),
    [
        (s3_block("p"), {"access_key": "AKIA"}, "secret_key"),
        (s3_block("p"), {}, "access_key,secret_key"),
        (azure_block("p"), {"AZURE_STORAGE_ACCOUNT": AZURE_ACCOUNT}, "AZURE_STORAGE_KEY"),
    ],
)
def test_secret_missing_keys(endpoints: Endpoints, block: dict, secret: dict, missing: str) -> None:
    with pytest.raises(StorageError) as err:
        open_location(block, secret, endpoints, secret_ref="backup-test/s3-secret")
    assert err.value.reason == "KeyNotExist"
    assert err.value.message == f"the secret backup-test/s3-secret missing some keys {missing}"


def test_no_secret_and_unsupported_providers(endpoints: Endpoints) -> None:
    with pytest.raises(StorageError, match="NoCredentialProviders"):
        open_location(s3_block("p"), None, endpoints)
    with pytest.raises(StorageError, match="gcs") as err:
        open_location({"gcs": {"bucket": "b", "projectId": "p"}}, {}, endpoints)
    assert err.value.reason == "InvalidStorage"
    with pytest.raises(StorageError, match="no storage provider"):
        open_location({"backupType": "full"}, None, endpoints)


def test_missing_bucket_and_container_fail_like_the_cloud(
    endpoints: Endpoints, s3_secret: dict, azure_secret: dict
) -> None:
    s3 = open_location(s3_block("p", bucket="no-such-bucket"), s3_secret, endpoints)
    with pytest.raises(StorageError) as err:
        s3.put("backupmeta", b"{}")
    assert (err.value.reason, err.value.code) == ("BucketNotFound", "NoSuchBucket")
    with pytest.raises(StorageError) as err:
        s3.exists("backupmeta")
    assert err.value.reason == "BucketNotFound"
    blob = open_location(azure_block("p", container="no-such-container"), azure_secret, endpoints)
    with pytest.raises(StorageError) as err:
        blob.put("backupmeta", b"{}")
    assert (err.value.reason, err.value.code) == ("BucketNotFound", "ContainerNotFound")


def test_seed_bucket_and_container_exist(raw_s3: Any, raw_container: Any) -> None:
    raw_s3.head_bucket(Bucket=BUCKET)
    assert raw_container.container_name == CONTAINER and raw_container.exists()


def test_explicit_s3_endpoint_wins(endpoints: Endpoints, s3_secret: dict) -> None:
    block = s3_block("p")
    block["s3"]["endpoint"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    loc = open_location(block, s3_secret, endpoints)
    assert loc.endpoint == "http://127.0.0.1:9"
    with pytest.raises(StorageError) as err:
        loc.exists("x")
    assert err.value.reason == "StorageUnavailable"
