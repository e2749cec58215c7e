"""The simulated operator's backup paths, for both API groups, through the real kubernetes client."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from kubernetes.client.exceptions import ApiException

from .conftest import GROUPS, VERSION, azblob_storage, s3_storage, unique, wait_for


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
        f"s3://my-bucket/{cluster}/{name}/" if storage_kind == "s3" else f"azure://my-container/{cluster}/{name}/"
    )
    assert status["backupPath"] == expected_url
    # The snapshot holds exactly the rows of the cluster as of its commitTs.
    if storage_kind == "s3":
        raw = _s3(sandbox).get_object(Bucket="my-bucket", Key=f"{cluster}/{name}/backupmeta")["Body"].read()
        meta = json.loads(raw)
        assert meta["end_version"] == int(status["commitTs"])
        assert meta["total_kvs"] == sandbox.rows(ns, cluster, int(status["commitTs"]))["count"]


def test_missing_secret_fails_with_operator_message(crs, new_cluster):
    ns, cluster = new_cluster()
    name = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com",
        VERSION,
        ns,
        "backups",
        _snapshot(name, cluster, s3_storage(f"x/{name}", secret="no-such-secret")),
    )
    done = wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Failed")
    message = done["status"]["conditions"][-1]["message"]
    assert "no-such-secret" in message and "not found" in message


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


def test_injected_backup_failure_and_hang(sandbox, crs, new_cluster):
    ns, cluster = new_cluster()
    sandbox.set_faults(fail_next_backup="injected: TiKV store 3 is down")
    name = unique("snap")
    crs.create_namespaced_custom_object(
        "pingcap.com", VERSION, ns, "backups", _snapshot(name, cluster, s3_storage(f"{cluster}/{name}"))
    )
    failed = wait_for(lambda: _get(crs, "pingcap.com", ns, name), lambda o: _phase(o) == "Failed")
    assert failed["status"]["conditions"][-1]["message"] == "injected: TiKV store 3 is down"

    sandbox.set_faults(hang_backups=True)
    try:
        hung = unique("snap")
        crs.create_namespaced_custom_object(
            "pingcap.com", VERSION, ns, "backups", _snapshot(hung, cluster, s3_storage(f"{cluster}/{hung}"))
        )
        wait_for(lambda: _get(crs, "pingcap.com", ns, hung), lambda o: _phase(o) == "Running")
        import time

        time.sleep(1.5)
        assert _phase(_get(crs, "pingcap.com", ns, hung)) == "Running"
    finally:
        sandbox.set_faults(hang_backups=False)
    wait_for(lambda: _get(crs, "pingcap.com", ns, hung), lambda o: _phase(o) == "Complete")


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
