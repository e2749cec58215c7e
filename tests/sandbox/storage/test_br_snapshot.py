from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from tidb_sandbox.data.mvcc import ClusterData
from tidb_sandbox.data.tso import TsoAllocator
from tidb_sandbox.data.workload import Workload
from tidb_sandbox.storage.base import Location
from tidb_sandbox.storage.br_layout import BRError, read_snapshot, snapshot_meta, write_snapshot
from tidb_sandbox.storage.locations import Endpoints

from .storage_helpers import BUCKET, local_dir, s3_keys

Opener = Callable[[str], Callable[[str], Location]]


def some_rows(n_ticks: int = 20) -> tuple[ClusterData, int]:
    data, alloc = ClusterData(cluster_id=6999999999999999999), TsoAllocator()
    workload = Workload(data, alloc, random.Random(2), inserts_per_s=200, updates_per_s=50, deletes_per_s=10)
    for _ in range(n_ticks):
        workload.tick(1.0)
    return data, alloc.next()


def test_snapshot_on_s3_as_the_bucket_sees_it(open_at: Opener, raw_s3: Any) -> None:
    data, ts = some_rows()
    loc = open_at("s3")("snapshot-20240501000000")
    info = write_snapshot(loc, data.rows_at(ts), commit_ts=ts, cluster_id=data.cluster_id, rows_per_file=1000)
    keys = s3_keys(raw_s3, loc.prefix + "/")
    names = {key[len(loc.prefix) + 1 :] for key in keys}
    assert {"backupmeta", "backup.lock"} <= names
    ssts = sorted(n for n in names if n.endswith("_write.sst"))
    assert len(ssts) == info.file_count >= 6 and {n.split("/")[0] for n in ssts} == {"1", "2", "3"}
    meta = json.loads(raw_s3.get_object(Bucket=BUCKET, Key=f"{loc.prefix}/backupmeta")["Body"].read())
    assert (meta["cluster_id"], meta["start_version"], meta["end_version"]) == (data.cluster_id, 0, ts)
    assert sorted(f["name"] for f in meta["files"]) == ssts
    assert meta["backup_size"] == info.size == sum(keys[f"{loc.prefix}/{n}"] for n in ssts)
    got_meta, rows = read_snapshot(loc)
    assert rows == data.rows_at(ts) and got_meta.commit_ts == ts and got_meta.cluster_id == data.cluster_id
    assert snapshot_meta(loc) == got_meta


def test_snapshot_on_azure_as_the_container_sees_it(open_at: Opener, raw_container: Any) -> None:
    data, ts = some_rows(5)
    loc = open_at("azblob")("snap")
    info = write_snapshot(loc, data.rows_at(ts), commit_ts=ts, cluster_id=data.cluster_id)
    listed = raw_container.list_blobs(name_starts_with=loc.prefix + "/")
    blobs = {b.name[len(loc.prefix) + 1 :] for b in listed}
    assert "backupmeta" in blobs and len([b for b in blobs if b.endswith(".sst")]) == info.file_count
    assert read_snapshot(loc)[1] == data.rows_at(ts)


def test_snapshot_on_a_local_volume(open_at: Opener, endpoints: Endpoints) -> None:
    data, ts = some_rows(5)
    loc = open_at("local")("snap")
    write_snapshot(loc, data.rows_at(ts), commit_ts=ts, cluster_id=data.cluster_id)
    directory = local_dir(endpoints, loc.url.removeprefix("local:///nfs/"))
    assert (directory / "backupmeta").is_file() and list(directory.glob("*/*_write.sst"))
    assert read_snapshot(loc)[1] == data.rows_at(ts)


def test_an_empty_cluster_backs_up_its_system_tables(open_at: Opener) -> None:
    loc = open_at("local")("empty")
    info = write_snapshot(loc, {}, commit_ts=10 << 18, cluster_id=1)
    assert info.file_count == 1 and info.size > 0 and info.total_kvs == 0
    assert [i.rel for i in loc.list() if i.rel.endswith(".sst")] and read_snapshot(loc)[1] == {}


def test_interrupted_backup_has_no_backupmeta(open_at: Opener) -> None:
    data, ts = some_rows(3)
    loc = open_at("s3")("interrupted")
    write_snapshot(loc, data.rows_at(ts), commit_ts=ts, cluster_id=1, stop_before_meta=True)
    assert loc.exists("backup.lock") and not loc.exists("backupmeta")
    assert snapshot_meta(loc) is None
    with pytest.raises(BRError, match="backupmeta"):
        read_snapshot(loc)
    with pytest.raises(BRError, match="backup lock file and sst file exist"):
        write_snapshot(loc, {}, commit_ts=ts, cluster_id=1)


def test_a_used_prefix_is_refused(open_at: Opener) -> None:
    loc = open_at("s3")("used")
    write_snapshot(loc, {"k": {"v": 1}}, commit_ts=5 << 18, cluster_id=1)
    with pytest.raises(BRError, match="backup meta file exists in s3://my-bucket/.*/used/") as err:
        write_snapshot(loc, {"k": {"v": 2}}, commit_ts=6 << 18, cluster_id=1)
    assert err.value.message.endswith("[BR:Common:ErrInvalidArgument]invalid argument")


@pytest.mark.parametrize("damage", ["delete", "alter"])
def test_damaged_files_fail_the_read(open_at: Opener, damage: str) -> None:
    data, ts = some_rows(5)
    loc = open_at("s3")(f"damaged-{damage}")
    write_snapshot(loc, data.rows_at(ts), commit_ts=ts, cluster_id=1)
    victim = next(i.rel for i in loc.list() if i.rel.endswith(".sst") and "/0_" not in i.rel)  # user data
    if damage == "delete":
        loc.delete([victim])
        expected = "missing"
    else:
        loc.put(victim, loc.get(victim).replace(b'"amount":', b'"amount":1'))
        expected = "checksum mismatch"
    with pytest.raises(BRError, match=expected):
        read_snapshot(loc)
