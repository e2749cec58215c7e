"""The simulated operator's backup paths, for both API groups, through the real kubernetes client."""

from __future__ import annotations

import json
import struct
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from kubernetes.client.exceptions import ApiException

from .conftest import GROUPS, VERSION, advancing, azblob_storage, s3_storage, unique, wait_for


def _get(crs: Any, group: str, ns: str, name: str, plural: str = "backups") -> dict[str, Any]:
    return crs.get_namespaced_custom_object(group, VERSION, ns, plural, name)


def _phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def _s3(sandbox: Any) -> Any:
    env = sandbox.env
    return boto3.client(
        "s3",
        endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"],
        region_name="us-west-1",
        aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
        aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"],
    )


def _s3_keys(sandbox: Any, prefix: str) -> list[str]:
    pages = _s3(sandbox).get_paginator("list_objects_v2").paginate(Bucket="my-bucket", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _blob_names(sandbox: Any, prefix: str) -> list[str]:
    service = BlobServiceClient.from_connection_string(sandbox.env["TIDB_SANDBOX_AZURE_CONNECTION_STRING"])
    return [b.name for b in service.get_container_client("my-container").list_blobs(name_starts_with=prefix)]


def storage_checkpoint(sandbox: Any, kind: str, prefix: str) -> int:
    """The global checkpoint BR's restore reads: the largest `v1/global_checkpoint/*.ts` under the log prefix."""
    folder = f"{prefix}/v1/global_checkpoint/"
    if kind == "s3":
        client = _s3(sandbox)
        blobs = [client.get_object(Bucket="my-bucket", Key=k)["Body"].read() for k in _s3_keys(sandbox, folder)]
    else:
        container = BlobServiceClient.from_connection_string(
            sandbox.env["TIDB_SANDBOX_AZURE_CONNECTION_STRING"]).get_container_client("my-container")
        blobs = [container.download_blob(n).readall() for n in _blob_names(sandbox, folder)]
    return max((struct.unpack("<Q", b)[0] for b in blobs if len(b) == 8), default=0)


def _snapshot(name: str, cluster: str, storage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"backupType": "full", "br": {"cluster": cluster}, **storage, **extra}}


@pytest.mark.parametrize("group,storage_kind", [("pingcap.com", "s3"), ("br.pingcap.com", "azblob")])
def test_snapshot_backup_completes_and_writes_backupmeta(sandbox, crs, new_cluster, group, storage_kind):
    ns, cluster = new_cluster(api_group=group)
    name = unique("snap")
    storage = s3_storage(f"{cluster}/{name}") if storage_kind == "s3" else azblob_storage(f"{cluster}/{name}")
    crs.create_namespaced_custom_object(group, VERSION, ns, "backups", _snapshot(name, cluster, storage))
    seen: list[str] = []

    def fetch() -> dict[str, Any]:
        obj = _get(crs, group, ns, name)
        if _phase(obj) and (not seen or seen[-1] != _phase(obj)):
            seen.append(_phase(obj))
        return obj

    done = wait_for(fetch, lambda o: _phase(o) in ("Complete", "Failed"))
    status = done["status"]
    assert status["phase"] == "Complete", status
    assert [c["type"] for c in status["conditions"]] == ["Scheduled", "Prepare", "Running", "Complete"]
    assert seen[-1] == "Complete" and set(seen) <= {"Scheduled", "Prepare", "Running", "Complete"}
    assert int(status["commitTs"]) > 0 and status["backupSize"] > 0
    assert status["backupSizeReadable"] and status["timeStarted"] and status["timeCompleted"]
    if group == "br.pingcap.com":
        assert all(c["reason"] for c in status["conditions"]), "metav1.Condition needs a reason"
    listing = (
        _s3_keys(sandbox, f"{cluster}/{name}/") if storage_kind == "s3" else _blob_names(sandbox, f"{cluster}/{name}/")
    )
    assert f"{cluster}/{name}/backupmeta" in listing
    assert any(key.endswith(".sst") for key in listing)
    expected_url = (
        # GetStoragePath: s3 without a trailing slash, azure with one.
        f"s3://my-bucket/{cluster}/{name}" if storage_kind == "s3" else f"azure://my-container/{cluster}/{name}/"
    )
    assert status["backupPath"] == expected_url
    # The snapshot holds exactly the rows of the cluster as of its commitTs.
    if storage_kind == "s3":
        raw = _s3(sandbox).get_object(Bucket="my-bucket", Key=f"{cluster}/{name}/backupmeta")["Body"].read()
        meta = json.loads(raw)
        assert meta["end_version"] == int(status["commitTs"])
        assert meta["total_kvs"] == sandbox.rows(ns, cluster, int(status["commitTs"]))["count"]


def test_missing_secret_is_retried_until_it_exists(manual_crs, manual_core, manual_sandbox, new_manual_cluster):
    """Not Failed (the sandbox said so once): RetryFailed/GetS3SecretFailed, requeued until the Secret is there."""
    sandbox, crs, core, new_cluster = manual_sandbox, manual_crs, manual_core, new_manual_cluster  # manual clock
    wait = advancing(sandbox)
    ns, cluster = new_cluster()
    name = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com",
        VERSION,
        ns,
        "backups",
        _snapshot(name, cluster, s3_storage(f"x/{name}", secret="late-secret")),
    )
    done = wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "RetryFailed")
    condition = done["status"]["conditions"][-1]
    assert condition["reason"] == "GetS3SecretFailed"
    assert "late-secret" in condition["message"] and "not found" in condition["message"]
    sandbox.advance(3)  # more than a resync: still waiting, never Failed
    assert _phase(_get(crs, "pingcap.com", ns, name)) == "RetryFailed"
    keys = sandbox.env
    core.create_namespaced_secret(ns, {"metadata": {"name": "late-secret"}, "stringData": {
        "access_key": keys["TIDB_SANDBOX_S3_ACCESS_KEY"], "secret_key": keys["TIDB_SANDBOX_S3_SECRET_KEY"]}})
    done = wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) in ("Complete", "Failed"))
    assert _phase(done) == "Complete", done["status"]


def test_wrong_s3_credentials_fail_the_backup(sandbox, crs, core, new_cluster):
    ns, cluster = new_cluster()
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "bad-s3"}, "stringData": {"access_key": "AKIAWRONG", "secret_key": "nope"}}
    )
    name = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _snapshot(name, cluster, s3_storage(f"x/{name}", secret="bad-s3"))
    )
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Failed")
    assert (
        "InvalidAccessKeyId" in done["status"]["conditions"][-1]["message"]
        or "access key" in done["status"]["conditions"][-1]["message"].lower()
    )


def test_injected_backup_failure_and_hang(manual_sandbox, manual_crs, new_manual_cluster):
    sandbox, crs, new_cluster = manual_sandbox, manual_crs, new_manual_cluster  # on the manual clock
    wait = advancing(sandbox)
    ns, cluster = new_cluster()
    sandbox.set_faults(fail_next_backup="injected: TiKV store 3 is down")
    name = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _snapshot(name, cluster, s3_storage(f"{cluster}/{name}"))
    )
    failed = wait(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Failed")
    assert failed["status"]["conditions"][-1]["message"] == "injected: TiKV store 3 is down"

    sandbox.set_faults(hang_backups=True)
    try:
        hung = unique("snap")
        crs.create_namespaced_custom_object(
            "pingcap.com", VERSION, ns, "backups", _snapshot(hung, cluster, s3_storage(f"{cluster}/{hung}"))
        )
        wait(lambda: _get(crs, "pingcap.com", ns, hung), lambda o: _phase(o) == "Running")
        sandbox.advance(1.5)
        assert _phase(_get(crs, "pingcap.com", ns, hung)) == "Running"
        # One hung backup let go by name (a benchmark's trickle of completions); the others stay hung.
        other = unique("snap")
        crs.create_namespaced_custom_object(
            "pingcap.com", VERSION, ns, "backups", _snapshot(other, cluster, s3_storage(f"{cluster}/{other}"))
        )
        wait(lambda: _get(crs, "pingcap.com", ns, other), lambda o: _phase(o) == "Running")
        sandbox.set_faults(released_backups=[other])
        wait(lambda: _get(crs, "pingcap.com", ns, other), lambda o: _phase(o) == "Complete")
        assert _phase(_get(crs, "pingcap.com", ns, hung)) == "Running"
    finally:
        sandbox.set_faults(hang_backups=False, released_backups=[])
    wait(lambda: _get(crs, "pingcap.com", ns, hung), lambda o: _phase(o) == "Complete")


def test_invalid_spec_is_marked_invalid(crs, new_cluster):
    ns, cluster = new_cluster()
    name = unique("snap")
    body = _snapshot(name, cluster, s3_storage(f"x/{name}"), backupType="log")  # the old seed's v1 form
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", body)
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Invalid")
    assert done["status"]["conditions"][-1]["reason"] == "InvalidSpec"


@pytest.mark.parametrize("group", GROUPS)
def test_clean_policy_delete_removes_data_then_the_cr(sandbox, crs, new_cluster, group):
    ns, cluster = new_cluster(api_group=group)
    name = unique("snap")
    crs.create_namespaced_custom_object(
        group, VERSION, ns, "backups", _snapshot(name, cluster, s3_storage(f"{cluster}/{name}"), cleanPolicy="Delete")
    )
    done = wait_for(lambda: _get(crs, group, ns, name), lambda o: _phase(o) == "Complete")
    finalizer = "pingcap.com/finalizer" if group == "br.pingcap.com" else "tidb.pingcap.com/backup-protection"
    assert finalizer in done["metadata"]["finalizers"]
    assert _s3_keys(sandbox, f"{cluster}/{name}/")
    crs.delete_namespaced_custom_object(group, VERSION, ns, "backups", name)

    def gone() -> bool:
        try:
            _get(crs, group, ns, name)
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_for(gone, bool)
    assert _s3_keys(sandbox, f"{cluster}/{name}/") == []


def test_retain_keeps_data_when_the_cr_is_deleted(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    name = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _snapshot(name, cluster, s3_storage(f"{cluster}/{name}"))
    )
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Complete")
    assert not done["metadata"].get("finalizers")
    crs.delete_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", name)
    assert f"{cluster}/{name}/backupmeta" in _s3_keys(sandbox, f"{cluster}/{name}/")


def test_table_filter_backs_up_only_the_tables_it_matches(sandbox, crs, new_cluster):
    """BR's --filter: the snapshot holds the matched tables (and their database), nothing else."""
    ns, cluster = new_cluster()
    wait_for(lambda: sandbox.rows(ns, cluster)["rows"], lambda rows: any(k.startswith("crm/") for k in rows))
    name = unique("snap")
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "backups", _snapshot(
        name, cluster, s3_storage(f"{cluster}/{name}"), tableFilter=["shop.*", "!shop.customers"]))
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) in ("Complete", "Failed"))
    assert _phase(done) == "Complete", done["status"]
    target = unique("target")
    sandbox.create_cluster(ns, target)
    restore = unique("restore")
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "restores", {
        "metadata": {"name": restore}, "spec": {"br": {"cluster": target}, **s3_storage(f"{cluster}/{name}")}})
    wait_for(lambda: _get(crs, "pingcap.com", ns, restore, "restores"), lambda o: _phase(o) == "Complete")
    restored = set(sandbox.rows(ns, target)["rows"])
    source = set(sandbox.rows(ns, cluster, int(done["status"]["commitTs"]))["rows"])
    assert restored == {k for k in source if k == "shop" or (k.startswith("shop/") and not k.startswith(
        "shop/customers"))}
    assert restored and not any(k.startswith("crm") for k in restored)
