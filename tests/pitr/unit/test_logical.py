"""Logical backups: the config section, the seed 004 CR body, ownership, the dump's check, password masking."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tidb_pitr.config import ClusterConfig, ConfigError, load_config
from tidb_pitr.cr.logical import (
    backup_spec,
    check_dump,
    is_dump_key,
    logical_backup_body,
    logical_problem,
    redact,
)
from tidb_pitr.cr.model import BackupView

BASE: dict[str, Any] = {"name": "demo1", "namespace": "test1", "api_group": "pingcap.com",
                        "storage": {"provider": "s3", "bucket": "my-bucket", "root": "demo1", "region": "us-west-1",
                                    "conn_id": "aws"}}


def _config(**logical: Any) -> ClusterConfig:
    return ClusterConfig.model_validate({**BASE, "logical_backup": logical})


def test_the_seed_004_body_with_defaults():
    spec = backup_spec(_config())
    body = logical_backup_body(name="demo1-logical-20261201020000", namespace="test1", labels={}, annotations={},
                               **spec)
    assert body["spec"] == {
        "from": {"host": "demo1-tidb.test1.svc", "port": 4000, "user": "root",
                 "secretName": "backup-demo1-tidb-secret"},
        "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket",
               "prefix": "demo1/logical"},
        "dumpling": {"options": ["--threads=16", "--rows=10000"]}, "storageSize": "10Gi", "cleanPolicy": "Retain"}


def _problems(tmp_path: Path, cluster: dict[str, Any]) -> str:
    path = tmp_path / "clusters.yaml"
    path.write_text(json.dumps({"clusters": [cluster]}))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    return str(refused.value)


def test_config_refusals_name_the_field(tmp_path: Path):
    assert 'cluster "demo1": logical_backup.keep.count: set count and/or age' in _problems(
        tmp_path, {**BASE, "logical_backup": {"keep": {}}})
    assert "logical_backup.storage.provider: must be 's3'" in _problems(tmp_path, {**BASE, "logical_backup": {
        "storage": {"provider": "azblob", "bucket": "c", "root": "x", "conn_id": "w"}}})
    assert "logical_backup.storage_size: must be a Kubernetes quantity" in _problems(
        tmp_path, {**BASE, "logical_backup": {"storage_size": "ten gigs"}})
    assert "logical_backup.storage: is required when the cluster's storage is 'azblob'" in _problems(tmp_path, {
        **BASE, "storage": {"provider": "azblob", "bucket": "c", "root": "demo1", "conn_id": "w"},
        "logical_backup": {}})
    assert "logical_backup.kep: unknown key; did you mean 'keep'?" in _problems(
        tmp_path, {**BASE, "logical_backup": {"kep": {"count": 1}}})


def _view(labels: dict[str, str], prefix: str = "demo1/logical", path: str | None = None, **spec: Any) -> BackupView:
    return BackupView.from_cr({
        "metadata": {"name": "b", "namespace": "test1", "labels": labels},
        "spec": {"from": {"host": "h"}, "s3": {"bucket": "my-bucket", "prefix": prefix}, **spec},
        "status": {"backupPath": path or f"s3://my-bucket/{prefix}/backup-2026-12-01T02:00:00Z.tgz"}})


OURS = {"app.kubernetes.io/managed-by": "tidb-pitr-airflow", "tidb-pitr-airflow/cluster": "demo1",
        "app.kubernetes.io/component": "logical-backup", "tidb-pitr-airflow/flow": "logical-backup"}


def test_ownership_of_logical_backups():
    def problem(view: BackupView) -> str | None:
        return logical_problem(view, cluster_name="demo1", bucket="my-bucket", root="demo1/logical")

    assert problem(_view(OURS)) is None
    assert "managed-by" in problem(_view({}))
    assert "cluster" in problem(_view({**OURS, "tidb-pitr-airflow/cluster": "other"}))
    assert "prefix" in problem(_view(OURS, prefix="demo1"))
    assert "backupPath" in problem(_view(OURS, path="s3://my-bucket/demo1/logical/../x.tgz"))
    assert "Dumpling" in problem(_view(OURS, br={"cluster": "demo1"}))
    assert is_dump_key("demo1/logical", "demo1/logical/backup-2026-12-01T02:00:00Z.tgz")
    assert not is_dump_key("demo1/logical", "demo1/logical/theirs/backup-2026-12-01T02:00:00Z.tgz")
    assert not is_dump_key("demo1/logical", "demo1/logical/backup-2026-12-01T02:00:00Z.tgz.tmp")


def _archive(files: dict[str, bytes], folder: str = "backup-2026-12-01T02:00:00Z") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_the_dump_check():
    good = {"metadata": b"Started dump at: x\nSHOW MASTER STATUS:\n\t\tLog: tidb-binlog\n\t\tPos: 4242\n",
            "shop-schema-create.sql": b"", "shop.orders-schema.sql": b"", "shop.orders.000000000.sql": b"",
            "shop.empty-schema.sql": b""}
    check = check_dump(_archive(good), "backup-2026-12-01T02:00:00Z")
    assert (check.metadata_ts, check.problems) == ("4242", [])
    assert check.summary()["tables_without_rows"] == ["shop.empty"]
    broken = {k: v for k, v in good.items() if k not in ("metadata", "shop-schema-create.sql")}
    broken["crm.t.000000000.sql"] = b""
    problems = check_dump(_archive(broken), "backup-2026-12-01T02:00:00Z").problems
    assert any("metadata" in p for p in problems) and any("crm.t: data files without" in p for p in problems)
    assert any("no shop-schema-create.sql" in p for p in problems)
    assert check_dump(io.BytesIO(b"not a tgz"), "x").problems[0].startswith("the archive cannot be read")


def test_passwords_printed_by_the_operator_are_masked():
    line = "execute loader command [--tidb-user=root --tidb-password=s3cr3t --tidb-host=h] failed --password=x1"
    assert redact(line) == ("execute loader command [--tidb-user=root --tidb-password=****** --tidb-host=h] "
                            "failed --password=******")


def test_the_storage_hook_deletes_one_dumpling_archive_and_nothing_else(tmp_path: Path):
    from tidb_pitr.hooks.storage import BackupStorageHook, StorageDeleteRefused

    root = tmp_path / "demo1" / "logical"
    (root / "theirs").mkdir(parents=True)
    ours, tmp, theirs = (root / "backup-2026-12-01T02:00:00Z.tgz", root / "backup-2026-12-01T02:00:00Z.tgz.tmp",
                         root / "theirs" / "backup-2026-12-01T02:00:00Z.tgz")
    for path in (ours, tmp, theirs):
        path.write_bytes(b"x")
    hook = BackupStorageHook("local", conn_id=None, bucket=str(tmp_path))
    for key in ("demo1/logical/theirs/backup-2026-12-01T02:00:00Z.tgz", "demo1/logical/backup-2026-12-01T02:00:00Z"
                ".tgz.tmp", "demo1/logical", "demo1/logical/../logical/backup-2026-12-01T02:00:00Z.tgz"):
        with pytest.raises((StorageDeleteRefused, ValueError)):
            hook.delete_dump("demo1/logical", key)
    hook.delete_dump("demo1/logical", "demo1/logical/backup-2026-12-01T02:00:00Z.tgz")
    hook.delete_dump("demo1/logical", "demo1/logical/backup-2026-12-01T02:00:00Z.tgz")  # gone already: fine
    assert not ours.exists() and tmp.exists() and theirs.exists()
