"""The cluster configuration: the example file, defaults, CR blocks, and errors that say where and what."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tidb_pitr.config import (
    ENV_CONFIG,
    ClusterConfig,
    ConfigError,
    ProjectConfig,
    StorageConfig,
    config_path,
    load_config,
    parse_duration,
)
from tidb_pitr.cr.api import ApiGroup

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "include" / "clusters.yaml"

S3 = {"provider": "s3", "bucket": "my-bucket", "root": "demo1", "region": "us-west-1", "conn_id": "tidb_backup_s3"}


def cluster(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "demo1", "namespace": "test1", "api_group": "pingcap.com", "storage": dict(S3)}
    base.update(over)
    return base


def write(tmp_path: Path, data: Any, name: str = "clusters.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def problems(tmp_path: Path, data: Any) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, data))
    assert str(tmp_path / "clusters.yaml") in str(exc.value)
    return exc.value.problems


# --- the example file --------------------------------------------------------------------------------------

def test_example_file_loads_as_is() -> None:
    config = load_config(EXAMPLE)
    [demo] = config.clusters
    assert (demo.name, demo.namespace, demo.api_group, demo.timezone) == ("demo1", "test1", "pingcap.com", "UTC")
    assert demo.tidb_cluster == "demo1"
    assert demo.storage.cr_block() == {
        "s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket"}
    }
    assert demo.storage.conn_id == "tidb_backup_s3"
    assert demo.rpo.warn == timedelta(minutes=10) and demo.rpo.critical == timedelta(minutes=30)
    assert demo.retention == timedelta(days=30)
    assert demo.group() == ApiGroup("pingcap.com")


def test_example_second_cluster_loads_when_uncommented(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# - name: prod2")
    uncommented = lines[:start] + [line.replace("  # ", "  ", 1) for line in lines[start:]]
    config = load_config(write(tmp_path, "\n".join(uncommented)))
    prod2 = config.cluster("prod2")
    assert prod2.api_group == "br.pingcap.com" and prod2.group().is_v2
    assert (prod2.timezone, prod2.snapshot_anchor) == ("Asia/Shanghai", "02:00")
    assert prod2.storage.cr_block() == {"azblob": {"secretName": "azblob-secret", "container": "my-container"}}
    assert prod2.storage.conn_id == "tidb_backup_wasb"
    assert prod2.owners == ["dba"]  # from defaults
    assert prod2.restore_target_allowed("prod2-restore") and not prod2.restore_target_allowed("other")


# --- derived names and CR blocks -----------------------------------------------------------------------------

def test_derived_names() -> None:
    c = ClusterConfig.model_validate(cluster(namespace="tidb-prod", name="db-1"))
    assert c.dag_id("snapshot") == "tidb_tidb-prod_db-1_snapshot"
    assert c.dag_id("log guard") == "tidb_tidb-prod_db-1_log_guard"
    assert c.log_backup_name == "db-1-log-backup"
    assert c.storage.prefix("snapshot-20260101000000") == "demo1/snapshot-20260101000000"
    assert c.storage.prefix("/a/", "", "b") == "demo1/a/b"
    assert c.storage.log_prefix == "demo1/log-backup"
    assert c.storage.snapshot_prefix("20260101000000") == "demo1/snapshot-20260101000000"
    assert c.storage.log_prefix_for(2) == "demo1/log-backup-2"
    assert c.storage.is_snapshot_prefix("demo1/snapshot-20260101000000")
    for other in ("demo1/snapshot-2026", "demo1/log-backup", "demo10/snapshot-20260101000000", "demo1",
                  "backups", "demo1/snapshot-20260101000000/x"):
        assert not c.storage.is_snapshot_prefix(other), other


def test_log_backup_name_is_configurable_and_fits_the_operators_job_names(tmp_path: Path) -> None:
    c = ClusterConfig.model_validate(cluster(log_backup={"name": "pitr-log"}))
    assert c.log_backup_name == "pitr-log"
    long = ClusterConfig.model_validate(cluster(name="a" * 40))
    assert len(f"backup-{long.log_backup_name}-log-truncate") <= 63 and long.log_backup_name.startswith("aaaa")
    [problem] = problems(tmp_path, {"clusters": [cluster(log_backup={"name": "x" * 41})]})
    assert "log_backup.name: must be at most 40 characters" in problem


def test_table_filter_is_refused_a_pitr_base_is_a_whole_cluster(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, {"clusters": [cluster(table_filter=["db1.*"])]})
    assert "table_filter: must be empty: a point-in-time restore starts from a full-cluster snapshot" in problem


def test_compaction_on_v2_is_refused_without_an_override(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, {"clusters": [cluster(api_group="br.pingcap.com", compaction=True)]})
    assert "compaction: TiDB Operator v2 (br.pingcap.com) has no CompactBackup controller" in problem
    ok = ClusterConfig.model_validate(cluster(api_group="br.pingcap.com", compaction=True,
                                              compaction_v2_controller=True))
    assert ok.compaction
    [problem] = problems(tmp_path, {"clusters": [cluster(compaction_v2_controller=True)]})
    assert "compaction_v2_controller: applies to api_group 'br.pingcap.com' only" in problem


def test_waits_have_defaults_and_must_be_positive(tmp_path: Path) -> None:
    c = ClusterConfig.model_validate(cluster(waits={"tracker_interval": "30s"}))
    assert c.waits.tracker_interval.total_seconds() == 30 and c.waits.retry_failed_grace.total_seconds() == 600
    [problem] = problems(tmp_path, {"clusters": [cluster(waits={"start_grace": "0s"})]})
    assert "waits.start_grace: must be positive" in problem


def test_s3_block_with_endpoint_and_pod_identity() -> None:
    storage = StorageConfig.model_validate({**S3, "endpoint": "http://minio:9000", "s3_provider": "minio",
                                            "region": None, "secret_name": None, "force_path_style": True})
    assert storage.cr_block() == {"s3": {"provider": "minio", "bucket": "my-bucket",
                                         "endpoint": "http://minio:9000", "forcePathStyle": True}}


def test_local_block_and_hook_kwargs() -> None:
    storage = StorageConfig.model_validate({
        "provider": "local", "bucket": "backup", "root": "demo1", "local_mount_path": "/backup",
        "local_volume": {"persistentVolumeClaim": {"claimName": "backup-pvc"}},
    })
    assert storage.cr_block() == {"local": {
        "volume": {"name": "backup", "persistentVolumeClaim": {"claimName": "backup-pvc"}},
        "volumeMount": {"name": "backup", "mountPath": "/backup"},
    }}
    assert storage.hook_kwargs() == {"provider": "local", "conn_id": None, "bucket": "/backup", "managed_root": "demo1"}


def test_br_block_camel_case() -> None:
    c = ClusterConfig.model_validate(cluster(
        tidb_cluster="basic",
        br={"concurrency": 8, "rate_limit": 0, "options": ["--log-level=debug"], "send_cred_to_tikv": False,
            "checksum": True},
    ))
    assert c.br_block() == {"cluster": "basic", "clusterNamespace": "test1", "concurrency": 8, "rateLimit": 0,
                            "sendCredToTikv": False, "checksum": True, "options": ["--log-level=debug"]}
    assert ClusterConfig.model_validate(cluster()).br_block() == {"cluster": "demo1", "clusterNamespace": "test1"}


@pytest.mark.parametrize(("text", "expected"), [
    ("10m", timedelta(minutes=10)), ("1h30m", timedelta(minutes=90)), ("30d", timedelta(days=30)),
    ("PT10M", timedelta(minutes=10)), ("P30D", timedelta(days=30)), (600, timedelta(minutes=10)),
    ("2w", timedelta(days=14)),
])
def test_durations(text: Any, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["ten minutes", True, "10x", ""])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError, match="10m"):
        parse_duration(text)


def test_restore_targets() -> None:
    c = ClusterConfig.model_validate(cluster())
    assert c.restore_target_allowed("other") and not c.restore_target_allowed("demo1")
    assert c.restore_target_allowed("demo1", "elsewhere")
    limited = ClusterConfig.model_validate(cluster(restore_targets=["restore1", "ns2/restore2"]))
    assert limited.restore_target_allowed("restore1") and limited.restore_target_allowed("restore2", "ns2")
    assert not limited.restore_target_allowed("restore2") and not limited.restore_target_allowed("x")


def test_unquoted_yaml_anchor_is_read_back(tmp_path: Path) -> None:
    # YAML 1.1 reads an unquoted 12:30 as the base-60 number 750.
    text = (
        "clusters:\n"
        "  - name: demo1\n    namespace: test1\n    api_group: pingcap.com\n    snapshot_anchor: 12:30\n"
        "    storage: {provider: s3, bucket: b, root: demo1, region: r, conn_id: c}\n"
    )
    assert yaml.safe_load(text)["clusters"][0]["snapshot_anchor"] == 750
    assert load_config(write(tmp_path, text)).clusters[0].snapshot_anchor == "12:30"
    [problem] = problems(tmp_path, text.replace("12:30", "25:00"))
    assert "snapshot_anchor: must be a local time 'HH:MM' from '00:00' to '23:59' (got '25:00')" in problem


# --- defaults ----------------------------------------------------------------------------------------------

def test_defaults_are_merged(tmp_path: Path) -> None:
    data = {
        "defaults": {"timezone": "Europe/Berlin", "storage": dict(S3), "rpo": {"warn": "5m"}, "owners": ["sre"]},
        "clusters": [
            {"name": "a", "namespace": "n", "api_group": "pingcap.com", "storage": {"root": "a"}},
            {"name": "b", "namespace": "n", "api_group": "br.pingcap.com", "timezone": "UTC",
             "rpo": {"critical": "1h"}, "storage": {"root": "b", "bucket": "other"}},
            {"name": "c", "namespace": "n", "api_group": "pingcap.com",
             "storage": {"provider": "azblob", "bucket": "cont", "root": "c", "conn_id": "wasb"}},
        ],
    }
    a, b, c = load_config(write(tmp_path, data)).clusters
    assert (a.timezone, a.storage.root, a.storage.bucket, a.owners) == ("Europe/Berlin", "a", "my-bucket", ["sre"])
    assert (a.rpo.warn, a.rpo.critical) == (timedelta(minutes=5), timedelta(minutes=30))
    assert (b.timezone, b.storage.bucket, b.storage.region) == ("UTC", "other", "us-west-1")
    assert (b.rpo.warn, b.rpo.critical) == (timedelta(minutes=5), timedelta(hours=1))
    # Another provider: none of the default s3 keys (region, ...) leak into the azblob block.
    assert c.storage.cr_block() == {"azblob": {"secretName": "azblob-secret", "container": "cont"}}


def test_project_config_merges_defaults_when_built_directly() -> None:
    project = ProjectConfig.model_validate({"defaults": {"storage": S3}, "clusters": [
        {"name": "a", "namespace": "n", "api_group": "pingcap.com"}]})
    assert project.clusters[0].storage.bucket == "my-bucket"


# --- errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "expected"), [
    ({"storage": {**S3, "provider": "gcs"}},
     "storage.provider: Input should be 's3', 'azblob' or 'local' (got 'gcs')"),
    ({"timezone": "Mars/Olympus"}, "timezone: must be an IANA time zone name such as 'UTC'"),
    ({"snapshot_anchor": "25:00"}, "snapshot_anchor: must be a local time 'HH:MM' from '00:00' to '23:59'"),
    ({"rpo": {"warn": "30m", "critical": "30m"}}, "rpo.warn: must be less than critical (30m >= 30m)"),
    ({"retention": 0}, "retention: must be at least 1 day"),
    ({"retention": "0d"}, "retention: must be at least 1 day"),
    ({"api_group": "pingcap.io"}, "api_group: Input should be 'pingcap.com' or 'br.pingcap.com'"),
    ({"storage": {**S3, "root": "/demo1/"}}, "storage.root: must not start or end with '/'"),
    ({"storage": {**S3, "endpoint": "minio:9000"}}, "storage.endpoint: must be a URL with scheme and host"),
    ({"storage": {**S3, "conn_id": None}}, "storage.conn_id: is required for provider 's3'"),
    ({"storage": {**S3, "local_mount_path": "/x"}}, "storage.local_mount_path: applies to provider 'local' only"),
    ({"api_group": "br.pingcap.com", "legacy_log_stop": True}, "legacy_log_stop: applies to api_group 'pingcap.com'"),
    ({"restore_targets": ["demo1"]}, "restore_targets[0]: test1/demo1 is this cluster itself"),
    ({"restore_targets": ["r1", {"name": "r1", "namespace": "test1"}]}, "restore_targets[1]: test1/r1 is listed twice"),
    ({"restore_targets": [{"name": "r1", "sql": "x"}]},
     "restore_targets[0].sql: unknown key; allowed keys: name, namespace, sql_conn_id"),
    ({"name": "Demo_1"}, "name: must be a DNS-1123 label"),
    ({"br": {"concurrency": 0}}, "br.concurrency: Input should be greater than 0"),
])
def test_each_broken_field_is_named(tmp_path: Path, override: dict[str, Any], expected: str) -> None:
    name = override.get("name", "demo1")
    [problem] = problems(tmp_path, {"clusters": [cluster(**override)]})
    assert f'cluster "{name}": {expected}' in problem


def test_unknown_key_with_typo_suggests_the_known_one(tmp_path: Path) -> None:
    data = cluster(timezon="UTC")
    data["storage"] = {**S3, "regoin": "x"}
    found = problems(tmp_path, {"clusters": [data]})
    assert any('cluster "demo1": timezon: unknown key; did you mean \'timezone\'?' in p for p in found)
    assert any('cluster "demo1": storage.regoin: unknown key; did you mean \'region\'?' in p for p in found)
    assert all("allowed keys:" in p for p in found)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, {"default": {}, "clusters": [cluster()]})
    assert "default: unknown key; did you mean 'defaults'?" in problem


def test_bad_default_is_reported_once_under_defaults(tmp_path: Path) -> None:
    data = {"defaults": {"timezone": "Mars/Olympus"}, "clusters": [cluster(name="a"), cluster(name="b")]}
    [problem] = problems(tmp_path, data)
    assert "defaults: timezone: must be an IANA time zone name" in problem


def test_duplicate_cluster(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, {"clusters": [cluster(), cluster(timezone="UTC")]})
    assert 'cluster "demo1" (clusters[1]): duplicate cluster test1/demo1 (also clusters[0])' in problem


def test_same_name_in_other_namespace_is_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"clusters": [cluster(), cluster(namespace="test2")]}))
    assert len({c.dag_id("snapshot") for c in config.clusters}) == 2


def test_missing_name_is_reported_by_index(tmp_path: Path) -> None:
    data = cluster()
    del data["name"]
    [problem] = problems(tmp_path, {"clusters": [cluster(name="ok"), data]})
    assert "clusters[1] (no name): name: Field required" in problem


def test_all_problems_are_listed(tmp_path: Path) -> None:
    data = {"clusters": [cluster(timezone="Mars/Olympus", snapshot_anchor="25:00"),
                         cluster(name="b", storage={**S3, "provider": "gcs"}), cluster()]}
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, data))
    assert len(exc.value.problems) == 4
    assert str(exc.value).startswith(f"{tmp_path / 'clusters.yaml'}: 4 problems:")


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "clusters: [\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    [problem] = problems(tmp_path, {"defaults": {}})
    assert "clusters: Field required" in problem


# --- location and speed --------------------------------------------------------------------------------------

def test_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_CONFIG, raising=False)
    assert config_path() == EXAMPLE
    monkeypatch.setenv(ENV_CONFIG, str(tmp_path / "x.yaml"))
    assert config_path() == tmp_path / "x.yaml"


def test_hundred_clusters_load(tmp_path: Path) -> None:
    data = {"defaults": {"storage": dict(S3), "timezone": "Europe/Berlin"},
            "clusters": [{"name": f"c{i}", "namespace": f"ns{i % 7}", "api_group": "pingcap.com",
                          "storage": {"root": f"c{i}"}} for i in range(100)]}
    config = load_config(write(tmp_path, data))
    assert len(config.clusters) == 100
    assert len({c.dag_id("snapshot") for c in config.clusters}) == 100


# --- drills and notifiers ---------------------------------------------------------------------------------

SCRATCH = {"name": "scratch1", "scratch": True, "sql_conn_id": "tidb_scratch1"}


def test_a_drill_needs_a_scratch_target_with_sql_and_the_source_sql(tmp_path: Path) -> None:
    found = problems(tmp_path, {"clusters": [cluster(restore_targets=["keep1", {**SCRATCH, "sql_conn_id": None}],
                                                     drill={"target": "keep1"})]})
    path = tmp_path / "clusters.yaml"
    assert found == [
        f'{path}: cluster "demo1": restore_targets[1].sql_conn_id: is required with scratch: true: a drill '
        "compares and empties a scratch cluster over SQL",
        f'{path}: cluster "demo1": sql_conn_id: is required for a drill: the source is read over SQL as of the '
        "restore time to compare the tables",
        f"{path}: cluster \"demo1\": drill.target: 'keep1' must be one of restore_targets marked 'scratch: true' "
        "(a drill empties it afterwards); allowed: test1/scratch1",
    ]
    found = problems(tmp_path, {"clusters": [cluster(sql_conn_id="tidb_demo1", drill={"target": "scratch1"},
                                                     restore_targets=[{**SCRATCH, "sql_conn_id": None}])]})
    assert found == [f'{path}: cluster "demo1": restore_targets[0].sql_conn_id: is required with scratch: true: a '
                     "drill compares and empties a scratch cluster over SQL"]


def test_a_drill_defaults_to_weekly_after_the_snapshot_and_recent_mode() -> None:
    config = ClusterConfig.model_validate(cluster(sql_conn_id="tidb_demo1", snapshot_anchor="22:30",
                                                  restore_targets=[SCRATCH], drill={"target": "test1/scratch1"}))
    assert config.drill is not None and config.drill.mode == "recent" and config.drill.tables == ["*.*"]
    assert config.drill_schedule() == "30 2 * * 0"
    assert config.drill_target() == ClusterConfig.model_validate(cluster(restore_targets=[SCRATCH])).restore_target(
        "scratch1")
    assert config.scratch_choices() == {"test1/scratch1": "scratch1 (namespace test1, scratch)"}


@pytest.mark.parametrize(("drill", "expected"), [
    ({"schedule": "every sunday"}, "drill.schedule: must be a cron expression such as '0 4 * * 0'"),
    ({"mode": "sometimes"}, "drill.mode: Input should be 'recent' or 'random'"),
    ({"tables": ["shop"]}, "drill.tables: 'shop' must be 'db.table'"),
    ({"margin": "0s"}, "drill.margin: must be positive"),
    ({"source_scan_rate": 0}, "drill.source_scan_rate: must be a positive number of bytes per second, got 0.0"),
])
def test_bad_drill_fields_are_named(tmp_path: Path, drill: dict[str, Any], expected: str) -> None:
    found = problems(tmp_path, {"clusters": [cluster(sql_conn_id="s", restore_targets=[SCRATCH],
                                                     drill={"target": "scratch1", **drill})]})
    assert len(found) == 1 and f'cluster "demo1": {expected}' in found[0], found


def test_notifiers_are_dotted_class_paths_with_arguments(tmp_path: Path) -> None:
    config = ClusterConfig.model_validate(cluster(notifiers=[{
        "class": "airflow.providers.http.notifications.HttpNotifier",
        "args": {"http_conn_id": "alerts", "json": {"text": "{{ tidb_pitr.summary }}"}}}]))
    assert config.notifiers[0].class_path == "airflow.providers.http.notifications.HttpNotifier"
    found = problems(tmp_path, {"clusters": [cluster(notifiers=[{"class": "HttpNotifier"}])]})
    assert len(found) == 1 and "notifiers[0].class: must be the dotted path of a BaseNotifier class" in found[0]
