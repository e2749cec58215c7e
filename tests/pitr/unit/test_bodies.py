
import pytest
from tidb_pitr.cr.api import V1_GROUP, V2_GROUP, ApiGroup
from tidb_pitr.cr.bodies import (
    compact_backup,
    log_backup,
    log_control_patch,
    pitr_restore,
    snapshot_backup,
    snapshot_restore,
    storage_with_prefix,
    truncate_patch,
)
from tidb_pitr.cr.model import BackupView, CompactView, RestoreView
from tidb_pitr.cr.names import run_label
from tidb_sandbox.k8s.crd import load_crds
from tidb_sandbox.k8s.validation import prepare_object

GROUPS = [ApiGroup(V1_GROUP), ApiGroup(V2_GROUP), ApiGroup(V1_GROUP, legacy_log_stop=True)]
S3 = {"s3": {"provider": "aws", "region": "us-west-1", "bucket": "backups", "secretName": "s3-secret"}}
AZ = {"azblob": {"container": "backups", "secretName": "azblob-secret"}}
TS = 436568622965194754
LABELS = {"app.kubernetes.io/managed-by": "tidb-pitr-airflow", "tidb-pitr-airflow/run": run_label("d", "r")}
ANNOTATIONS = {"tidb-pitr-airflow/run-id": "scheduled__2026-11-21T00:00:00+00:00"}
BR = {"concurrency": 8, "rateLimit": 100, "options": ["--log-level=info"], "sendCredToTikv": True,
      "checksum": True}
_TYPES = {(rt.group, rt.plural): rt for rt in load_crds()}


def assert_valid(group: ApiGroup, plural: str, body: dict) -> None:
    prepared = prepare_object(_TYPES[(group.group, plural)], body)
    assert prepared.errors == [], prepared.errors
    assert prepared.unknown_fields == []
    assert prepared.decode_error is None


@pytest.mark.parametrize("group", GROUPS, ids=str)
@pytest.mark.parametrize("storage", [S3, AZ], ids=["s3", "azblob"])
def test_snapshot_backup(group, storage):
    body = snapshot_backup(group, name="snapshot-20261121000000", namespace="tidb", cluster="basic",
                           cluster_namespace="tidb", storage=storage, prefix="/basic/snapshot-20261121000000/",
                           labels=LABELS, annotations=ANNOTATIONS, br=BR, service_account="tidb-backup-manager",
                           table_filter=["*.*", "!mysql.*"], tool_image="pingcap/br:v8.5.0")
    assert_valid(group, "backups", body)
    spec = body["spec"]
    assert body["apiVersion"] == f"{group.group}/v1alpha1" and body["kind"] == "Backup"
    assert (spec["backupType"], spec["backupMode"], spec["cleanPolicy"]) == ("full", "snapshot", "Delete")
    assert spec["br"] == {**BR, "cluster": "basic", "clusterNamespace": "tidb"}
    provider = next(iter(storage))
    assert spec[provider] == {**storage[provider], "prefix": "basic/snapshot-20261121000000"}
    view = BackupView.from_cr(body)
    assert view.prefix == "basic/snapshot-20261121000000" and view.cluster == "basic"
    assert storage[provider].get("prefix") is None  # the caller's block is not changed


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_log_backup(group):
    body = log_backup(group, name="basic-log", namespace="tidb", cluster="basic", cluster_namespace="tidb",
                      storage=S3, prefix="basic/log", labels=LABELS, annotations=ANNOTATIONS,
                      br={"sendCredToTikv": True})
    assert_valid(group, "backups", body)
    spec = body["spec"]
    assert spec["backupMode"] == "log" and spec["cleanPolicy"] == "Retain" and "backupType" not in spec
    assert spec.get("logSubcommand") == (None if group.legacy_log_stop else "log-start")
    assert "logStop" not in spec


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_log_patches_keep_the_cr_valid(group):
    base = log_backup(group, name="basic-log", namespace="tidb", cluster="basic", cluster_namespace="tidb",
                      storage=S3, prefix="basic/log")
    actions = ["start", "stop"] if group.legacy_log_stop else ["start", "pause", "resume", "stop"]
    for action in actions:
        patched = {**base, "spec": {**base["spec"], **log_control_patch(group, action)["spec"]}}
        assert_valid(group, "backups", patched)
    patched = {**base, "spec": {**base["spec"], **truncate_patch(TS)["spec"]}}
    assert_valid(group, "backups", patched)


def test_log_control_patch_shapes():
    v1, v2, legacy = GROUPS
    assert log_control_patch(v1, "pause") == {"spec": {"logSubcommand": "log-pause"}}
    assert log_control_patch(v2, "resume") == {"spec": {"logSubcommand": "log-start"}}
    assert log_control_patch(v2, "start") == {"spec": {"logSubcommand": "log-start"}}
    assert log_control_patch(v1, "stop") == {"spec": {"logSubcommand": "log-stop"}}
    assert log_control_patch(legacy, "stop") == {"spec": {"logStop": True}}
    for action in ("pause", "resume"):
        with pytest.raises(ValueError, match=r"v1\.5\.4 / v1\.6\.0"):
            log_control_patch(legacy, action)
    with pytest.raises(ValueError):
        log_control_patch(v1, "restart")  # type: ignore[arg-type]


def test_truncate_patch():
    assert truncate_patch(TS) == {"spec": {"logTruncateUntil": "436568622965194754"}}
    with pytest.raises(ValueError):
        truncate_patch(1700000000)


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_pitr_restore(group):
    body = pitr_restore(group, name="basic-pitr-20261121053000-abcdef", namespace="tidb-restore",
                        target_cluster="basic-restore", target_namespace="tidb-restore",
                        log_storage=storage_with_prefix(S3, "basic/log"),
                        snapshot_storage=storage_with_prefix(S3, "basic/snapshot-20221010000000"),
                        restored_ts=TS, labels=LABELS, annotations=ANNOTATIONS, br={"concurrency": 4})
    assert_valid(group, "restores", body)
    spec = body["spec"]
    assert spec["restoreMode"] == "pitr" and spec["pitrRestoredTs"] == "436568622965194754"
    assert spec["s3"]["prefix"] == "basic/log"
    assert spec["pitrFullBackupStorageProvider"]["s3"]["prefix"] == "basic/snapshot-20221010000000"
    view = RestoreView.from_cr(body)
    assert view.restored_ts == TS and view.cluster == "basic-restore"


def test_pitr_restore_refusals():
    kw = dict(name="r", namespace="ns", target_cluster="t", target_namespace="ns", restored_ts=TS)
    with pytest.raises(ValueError, match="same storage"):
        pitr_restore(GROUPS[0], log_storage=storage_with_prefix(S3, "log"),
                     snapshot_storage=storage_with_prefix(AZ, "snap"), **kw)
    with pytest.raises(ValueError, match="prefix"):
        pitr_restore(GROUPS[0], log_storage=storage_with_prefix(S3, "log"), snapshot_storage=S3, **kw)


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_snapshot_restore(group):
    body = snapshot_restore(group, name="restore-1", namespace="ns", target_cluster="t", target_namespace="ns",
                            storage=storage_with_prefix(S3, "basic/snapshot-1"), labels=LABELS)
    assert_valid(group, "restores", body)
    assert body["spec"]["restoreMode"] == "snapshot"


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_compact_backup(group):
    body = compact_backup(group, name="compact-1", namespace="tidb", cluster="basic",
                          log_storage=storage_with_prefix(S3, "basic/log"), start_ts=TS, end_ts=TS + (3600000 << 18),
                          labels=LABELS, service_account="tidb-backup-manager")
    assert_valid(group, "compactbackups", body)
    spec = body["spec"]
    assert spec["serviceAccount"] == "tidb-backup-manager", "pod identity reaches CompactBackup Jobs too"
    assert spec["startTs"] == str(TS) and spec["concurrency"] == 4 and spec["maxRetryTimes"] == 6
    assert spec["br"] == {"cluster": "basic", "clusterNamespace": "tidb"}
    assert CompactView.from_cr(body).start_ts == TS
    with pytest.raises(ValueError):
        compact_backup(group, name="c", namespace="tidb", cluster="basic", log_storage=S3, start_ts=TS, end_ts=TS)


def test_refusals():
    v1 = GROUPS[0]
    kw = dict(name="s", namespace="ns", cluster="c", cluster_namespace="ns")
    with pytest.raises(ValueError, match="prefix is required"):
        snapshot_backup(v1, storage=S3, prefix="/", **kw)
    with pytest.raises(ValueError, match="without a prefix"):
        snapshot_backup(v1, storage=storage_with_prefix(S3, "root"), prefix="root/x", **kw)
    with pytest.raises(ValueError, match="'..'"):
        snapshot_backup(v1, storage=S3, prefix="a/../b", **kw)
    with pytest.raises(ValueError, match="cleanPolicy"):
        snapshot_backup(v1, storage=S3, prefix="a", clean_policy="Sometimes", **kw)
    with pytest.raises(ValueError, match="conflicts"):
        snapshot_backup(v1, storage=S3, prefix="a", br={"cluster": "other"}, **kw)
    with pytest.raises(ValueError, match="one provider block"):
        log_backup(v1, storage={}, prefix="a", **kw)
    with pytest.raises(ValueError, match="one provider block"):
        snapshot_backup(v1, storage={**S3, **AZ}, prefix="a", **kw)
    with pytest.raises(ValueError, match="cluster"):
        log_backup(v1, storage=S3, prefix="a", name="l", namespace="ns", cluster="", cluster_namespace="ns")


def test_validator_is_not_a_rubber_stamp():
    body = log_backup(GROUPS[0], name="l", namespace="ns", cluster="c", cluster_namespace="ns", storage=S3,
                      prefix="log")
    body["spec"].update(logStop=True, bogus=1)
    prepared = prepare_object(_TYPES[(V1_GROUP, "backups")], body)
    assert prepared.unknown_fields == ["spec.bogus"] and prepared.errors  # CEL: logStop with logSubcommand
