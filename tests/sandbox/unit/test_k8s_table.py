"""Server-side Table printing and HumanDuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tidb_sandbox.k8s import crd
from tidb_sandbox.k8s.crd import ResourceType
from tidb_sandbox.k8s.table import NAME_DESCRIPTION, human_duration, to_table

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def rt_of(group: str, kind: str) -> ResourceType:
    return next(rt for rt in crd.load_crds() + crd.builtin_types() if (rt.group, rt.kind) == (group, kind))


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=-5), "<invalid>"),
    (timedelta(seconds=-1.5), "0s"),
    (timedelta(seconds=0), "0s"),
    (timedelta(seconds=5), "5s"),
    (timedelta(seconds=119), "119s"),
    (timedelta(minutes=2), "2m"),
    (timedelta(minutes=3, seconds=20), "3m20s"),
    (timedelta(minutes=10, seconds=59), "10m"),
    (timedelta(hours=2, minutes=59), "179m"),
    (timedelta(hours=3), "3h"),
    (timedelta(hours=7, minutes=59), "7h59m"),
    (timedelta(hours=8, minutes=30), "8h"),
    (timedelta(hours=47), "47h"),
    (timedelta(days=2), "2d"),
    (timedelta(days=2, hours=3), "2d3h"),
    (timedelta(days=7, hours=23), "7d23h"),
    (timedelta(days=8, hours=5), "8d"),
    (timedelta(days=40), "40d"),
    (timedelta(days=729), "729d"),
    (timedelta(days=730), "2y"),
    (timedelta(days=750), "2y20d"),
    (timedelta(days=365 * 8 + 3), "8y"),
])
def test_human_duration(delta: timedelta, text: str) -> None:
    assert human_duration(delta) == text


def test_backup_table_columns_and_cells() -> None:
    rt = rt_of("pingcap.com", "Backup")
    backup = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
        "metadata": {"name": "full-1", "namespace": "test1", "creationTimestamp": ago(days=2, hours=3)},
        "spec": {"backupType": "full", "backupMode": "snapshot"},
        "status": {"phase": "Complete", "backupPath": "s3://bucket/full-1", "backupSizeReadable": "1.2 GB",
                   "commitTs": "450000000000000000", "timeStarted": ago(minutes=5),
                   "timeCompleted": None, "timeTaken": "4m30s"},
    }
    table = to_table(rt, [backup], resource_version="42", now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    cols = table["columnDefinitions"]
    assert cols[0] == {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION,
                       "priority": 0}
    assert [(c["name"], c["type"], c["priority"]) for c in cols[1:]] == [
        ("Type", "string", 0), ("Mode", "string", 0), ("Status", "string", 0), ("BackupPath", "string", 0),
        ("BackupSize", "string", 0), ("IncrementalBackupSize", "string", 10), ("CommitTS", "string", 0),
        ("LogTruncateUntil", "string", 0), ("Started", "date", 1), ("Completed", "date", 1),
        ("TimeTaken", "string", 0), ("Age", "date", 0)]
    assert cols[1]["description"].startswith("the type of backup") and cols[1]["format"] == ""
    assert cols[-1]["description"] == ("Custom resource definition column (in JSONPath format): "
                                       ".metadata.creationTimestamp")
    (row,) = table["rows"]
    assert row["cells"] == ["full-1", "full", "snapshot", "Complete", "s3://bucket/full-1", "1.2 GB", None,
                            "450000000000000000", None, "5m", None, "4m30s", "2d3h"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": backup["metadata"]}


def test_absent_status_gives_none_cells() -> None:
    rt = rt_of("br.pingcap.com", "Backup")
    obj = {"metadata": {"name": "b", "creationTimestamp": ago(seconds=30)}, "spec": {}}
    (row,) = to_table(rt, [obj], resource_version="1", now=NOW)["rows"]
    assert row["cells"][0] == "b" and row["cells"][-1] == "30s"
    assert set(row["cells"][1:-1]) == {None}


def test_include_object_and_continue() -> None:
    rt = rt_of("br.pingcap.com", "Backup")
    obj = {"metadata": {"name": "b"}, "spec": {}}
    assert to_table(rt, [obj], resource_version="1", include_object="None")["rows"][0]["object"] is None
    assert to_table(rt, [obj], resource_version="1", include_object="Object")["rows"][0]["object"] is obj
    assert to_table(rt, [], resource_version="9", continue_token="abc")["metadata"] == {
        "resourceVersion": "9", "continue": "abc"}
    with pytest.raises(ValueError):
        to_table(rt, [obj], resource_version="1", include_object="Everything")


def test_cell_conversions() -> None:
    rt = ResourceType("example.com", "v1", "Thing", "things", "thing", (), True, None, (
        {"name": "S", "type": "string", "jsonPath": ".s"},
        {"name": "I", "type": "integer", "jsonPath": ".i"},
        {"name": "N", "type": "number", "jsonPath": ".n"},
        {"name": "B", "type": "boolean", "jsonPath": ".b"},
        {"name": "D", "type": "date", "jsonPath": ".d"},
    ), False)

    def cells(obj: dict) -> list:
        table = to_table(rt, [{"metadata": {"name": "t"}, **obj}], resource_version="1", now=NOW)
        return table["rows"][0]["cells"][1:]

    assert cells({"s": 5, "i": 7.9, "n": 2, "b": True, "d": ago(hours=3)}) == ["5", 7, 2.0, True, "3h"]
    assert cells({"s": {"b": 1, "a": [1.5]}, "i": "7", "n": "x", "b": "true", "d": "bad"}) == [
        '{"a":[1.5],"b":1}', None, None, None, "<invalid>"]
    assert cells({"s": None, "i": None, "d": ""}) == ["<no value>", None, None, None, "<unknown>"]
    assert cells({"s": 1e21, "d": "0001-01-01T00:00:00Z"})[::4] == ["1e+21", "<unknown>"]


def test_ready_condition_column() -> None:
    rt = rt_of("pingcap.com", "TidbCluster")
    tc = {"metadata": {"name": "demo1"}, "spec": {"pd": {"replicas": 3}, "tikv": {"replicas": 3}},
          "status": {"conditions": [{"type": "Ready", "status": "True", "message": "ok"}]}}
    (row,) = to_table(rt, [tc], resource_version="1", now=NOW)["rows"]
    assert row["cells"] == ["demo1", "True", 3, 3, None, "ok", None]


def test_builtin_computed_columns() -> None:
    secret = {"metadata": {"name": "s3-secret", "creationTimestamp": ago(days=40)}, "type": "Opaque",
              "data": {"access_key": "eA==", "secret_key": "eQ=="}}
    (row,) = to_table(rt_of("", "Secret"), [secret], resource_version="1", now=NOW)["rows"]
    assert row["cells"] == ["s3-secret", "Opaque", 2, "40d"]
    job = {"metadata": {"name": "backup-full-1"}, "spec": {"completions": 1},
           "status": {"succeeded": 1, "startTime": ago(minutes=3), "completionTime": ago(minutes=1),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    (row,) = to_table(rt_of("batch", "Job"), [job], resource_version="1", now=NOW)["rows"]
    assert row["cells"] == ["backup-full-1", "Complete", "1/1", "2m", None]
    running = {"metadata": {"name": "j"}, "spec": {}, "status": {"startTime": ago(seconds=20)}}
    (row,) = to_table(rt_of("batch", "Job"), [running], resource_version="1", now=NOW)["rows"]
    assert row["cells"][1:4] == ["Running", "0/1 of 1", "20s"]
    event = {"metadata": {"name": "e"}, "type": "Warning", "reason": "Failed", "message": "boom",
             "involvedObject": {"kind": "Backup", "name": "full-1"}, "lastTimestamp": ago(minutes=4)}
    (row,) = to_table(rt_of("", "Event"), [event], resource_version="1", now=NOW)["rows"]
    assert row["cells"] == ["e", "4m", "Warning", "Failed", "backup/full-1", "boom"]
    ns = {"metadata": {"name": "test1"}, "status": {"phase": "Active"}}
    (row,) = to_table(rt_of("", "Namespace"), [ns], resource_version="1", now=NOW)["rows"]
    assert row["cells"] == ["test1", "Active", None]
