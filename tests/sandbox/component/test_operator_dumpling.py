"""Dumpling Backups (`from:`) and Lightning Restores (`to:`) of TiDB Operator v1, from seed 004's YAML."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import boto3
import yaml

from .conftest import VERSION, unique, wait_for

SEED = Path(__file__).parent / "seed_examples"
GROUP = "pingcap.com"


def _s3(sandbox: Any) -> Any:
    env = sandbox.env
    return boto3.client("s3", endpoint_url=env["TIDB_SANDBOX_S3_ENDPOINT"], region_name="us-west-1",
                        aws_access_key_id=env["TIDB_SANDBOX_S3_ACCESS_KEY"],
                        aws_secret_access_key=env["TIDB_SANDBOX_S3_SECRET_KEY"])


def _seed_backup(example: str, sandbox: Any, namespace: str, cluster: str, prefix: str) -> dict[str, Any]:
    """Seed 004's Backup with its ${placeholders} filled as a reader would, in the test's namespace."""
    text = (SEED / example).read_text()
    for key, value in {"tidb_host": f"{cluster}-tidb.{namespace}", "tidb_port": "4000", "tidb_user": "root",
                       "region": "us-west-1", "bucket": "my-bucket",
                       "endpoint": sandbox.env["TIDB_SANDBOX_S3_ENDPOINT"]}.items():
        text = text.replace("${" + key + "}", value)
    body = yaml.safe_load(text)
    body["metadata"] = {"name": unique("dump"), "namespace": namespace}
    body["spec"]["from"]["secretName"] = f"backup-{cluster}-tidb-secret"
    body["spec"]["s3"]["prefix"] = prefix
    return body


def _get(crs: Any, ns: str, name: str, plural: str = "backups") -> dict[str, Any]:
    return crs.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)


def _done(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Complete", "Failed", "Invalid")


def _run(crs: Any, body: dict[str, Any], plural: str = "backups") -> dict[str, Any]:
    ns = body["metadata"]["namespace"]
    crs.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body)
    return wait_for(lambda: _get(crs, ns, body["metadata"]["name"], plural), _done, timeout=60)


def _archive(sandbox: Any, backup_path: str) -> dict[str, bytes]:
    bucket, _, key = backup_path.removeprefix("s3://").partition("/")
    data = _s3(sandbox).get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_seed_backups_aws_and_ceph_dump_then_lightning_restores_the_rows(sandbox, crs, core, new_cluster):
    namespace, cluster = new_cluster()
    wait_for(lambda: sandbox.rows(namespace, cluster)["rows"], lambda rows: len(rows) > 20, timeout=30)
    for example in ("22-backup-demo1-backup-s3.yaml", "23-backup-demo1-backup-s3.yaml"):
        body = _seed_backup(example, sandbox, namespace, cluster, f"{cluster}/logical")
        provider = body["spec"]["s3"]["provider"]
        done = _run(crs, body)
        status = done["status"]
        assert status["phase"] == "Complete", (provider, status)
        path = status["backupPath"]
        assert path.startswith(f"s3://my-bucket/{cluster}/logical/backup-") and path.endswith("Z.tgz"), path
        assert int(status["backupSize"]) > 0 and status["backupSizeReadable"]
        files = _archive(sandbox, path)
        folder = path.rsplit("/", 1)[1].removesuffix(".tgz")
        metadata = files[f"{folder}/metadata"].decode()
        assert f"Pos: {status['commitTs']}" in metadata
        assert f"{folder}/shop-schema-create.sql" in files and f"{folder}/shop.orders-schema.sql" in files
        assert f"{folder}/shop.orders.000000000.sql" in files

    # Lightning into an empty cluster: its rows equal the source at the dump's TSO.
    target_ns, target = new_cluster(workload={})
    restore = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Restore",
               "metadata": {"name": unique("import"), "namespace": target_ns},
               "spec": {"to": {"host": f"{target}-tidb.{target_ns}.svc", "port": 4000, "user": "root",
                               "secretName": f"backup-{target}-tidb-secret"},
                        "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "path": path},
                        "storageSize": "1Gi"}}
    done = _run(crs, restore, "restores")
    assert done["status"]["phase"] == "Complete", done["status"]
    assert done["status"]["commitTs"] == status["commitTs"]
    source_rows = sandbox.rows(namespace, cluster, as_of=int(status["commitTs"]))["rows"]
    restored = sandbox.rows(target_ns, target)["rows"]
    data = {k: v for k, v in source_rows.items() if k.count("/") == 2}
    assert data and {k: v for k, v in restored.items() if k.count("/") == 2} == data

    # Into the same (now filled) target again, and with a wrong password: Lightning's failures.
    again = dict(restore, metadata={"name": unique("import"), "namespace": target_ns})
    status = _run(crs, again, "restores")["status"]
    assert (status["phase"], status["conditions"][-1]["reason"]) == ("Failed", "LoaderBackupDataFailed")
    # Lightning's tidb backend has no empty-table precheck: the first row is a duplicate (test_restore_targets).
    assert "Error 1062 (23000): Duplicate entry" in status["conditions"][-1]["message"]
    other_ns, other = new_cluster(workload={})
    core.create_namespaced_secret(other_ns, {"metadata": {"name": "wrong"}, "stringData": {"password": "nope"}})
    bad = {**restore, "metadata": {"name": unique("import"), "namespace": other_ns},
           "spec": {**restore["spec"], "to": {**restore["spec"]["to"], "host": f"{other}-tidb.{other_ns}",
                                              "secretName": "wrong"}}}
    status = _run(crs, bad, "restores")["status"]
    message = status["conditions"][-1]["message"]
    assert (status["phase"], status["conditions"][-1]["reason"]) == ("Failed", "LoaderBackupDataFailed")
    # As upstream: the command line with the password, then Lightning's error.
    assert "--tidb-password=nope" in message and "Access denied for user 'root'" in message


def test_wrong_password_fails_as_the_export_job_does(sandbox, crs, core, new_cluster):
    namespace, cluster = new_cluster(workload={})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "wrong-tidb-secret"},
                                              "stringData": {"password": "not-the-password"}})
    body = _seed_backup("22-backup-demo1-backup-s3.yaml", sandbox, namespace, cluster, f"{cluster}/bad")
    body["spec"]["from"]["secretName"] = "wrong-tidb-secret"
    status = _run(crs, body)["status"]
    assert (status["phase"], status["conditions"][-1]["reason"]) == ("Failed", "ConnectTidbFailed")
    assert status["conditions"][-1]["message"] == "timed out waiting for the condition"


def test_missing_tidb_secret_is_retried_and_v2_is_invalid(sandbox, crs, new_cluster):
    namespace, cluster = new_cluster(workload={})
    body = _seed_backup("22-backup-demo1-backup-s3.yaml", sandbox, namespace, cluster, f"{cluster}/x")
    body["spec"]["from"]["secretName"] = "no-such-secret"
    crs.create_namespaced_custom_object(GROUP, VERSION, namespace, "backups", body)
    obj = wait_for(lambda: _get(crs, namespace, body["metadata"]["name"]),
                   lambda o: (o.get("status") or {}).get("phase") == "RetryFailed", timeout=30)
    assert obj["status"]["conditions"][-1]["reason"] == "GetTidbSecretFailed"
    v2 = dict(body, apiVersion="br.pingcap.com/v1alpha1", metadata={"name": unique("dump"), "namespace": namespace})
    crs.create_namespaced_custom_object("br.pingcap.com", VERSION, namespace, "backups", v2)
    obj = wait_for(lambda: crs.get_namespaced_custom_object("br.pingcap.com", VERSION, namespace, "backups",
                                                            v2["metadata"]["name"]), _done, timeout=30)
    assert obj["status"]["phase"] == "Invalid"
    assert ".spec.br is required" in obj["status"]["conditions"][-1]["message"]
