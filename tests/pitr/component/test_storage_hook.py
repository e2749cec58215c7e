"""BackupStorageHook against real servers: moto (S3, IAM auth on), Azurite (Azure Blob) and a local folder.

Data is seeded and checked with the plain SDK clients, not through the hook under test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient
from botocore.exceptions import ClientError
from tidb_pitr.hooks.storage import BackupStorageHook, LogVolume, StorageDeleteError, StorageDeleteRefused
from tidb_pitr.tso import dt_to_tso
from tidb_sandbox.data.mvcc import Change
from tidb_sandbox.storage.br_layout import flush_log_history, list_metas, log_bytes
from tidb_sandbox.storage.local_location import LocalLocation
from tidb_sandbox.storage.services import (
    AZURITE_DEFAULT_ACCOUNT,
    AZURITE_DEFAULT_KEY,
    ManagedService,
    start_azurite,
    start_moto,
)

pytestmark = pytest.mark.component

BUCKET = "tidb-backups"
REGION = "us-west-1"
S3_CONN = "pitr_s3"
AZURE_CONN = "pitr_azure"
PROVIDERS = ("s3", "azblob", "local")


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedService]:
    with start_moto(0, log_path=tmp_path_factory.mktemp("logs") / "moto.log") as service:
        yield service


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedService]:
    work = tmp_path_factory.mktemp("azurite")
    with start_azurite(0, workdir=work / "data", log_path=work / "azurite.log") as service:
        yield service


@pytest.fixture(scope="module")
def raw_s3(moto: ManagedService) -> Any:
    assert moto.s3_credentials is not None
    access_key, secret_key = moto.s3_credentials
    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def _azure_connection_string(azurite: ManagedService) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_DEFAULT_ACCOUNT};AccountKey={AZURITE_DEFAULT_KEY};"
        f"BlobEndpoint={azurite.endpoint}/{AZURITE_DEFAULT_ACCOUNT};"
    )


@pytest.fixture(scope="module")
def raw_container(azurite: ManagedService) -> ContainerClient:
    container = ContainerClient.from_connection_string(_azure_connection_string(azurite), BUCKET)
    container.create_container()
    return container


@pytest.fixture
def storage_connections(monkeypatch: pytest.MonkeyPatch, moto: ManagedService, azurite: ManagedService) -> None:
    """The hook gets its credentials only from Airflow connections (here: AIRFLOW_CONN_* env vars)."""
    assert moto.s3_credentials is not None
    access_key, secret_key = moto.s3_credentials
    aws = {
        "conn_type": "aws",
        "login": access_key,
        "password": secret_key,
        "extra": {"endpoint_url": moto.endpoint, "region_name": REGION},
    }
    wasb = {"conn_type": "wasb", "extra": {"connection_string": _azure_connection_string(azurite)}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN.upper()}", json.dumps(aws))
    monkeypatch.setenv(f"AIRFLOW_CONN_{AZURE_CONN.upper()}", json.dumps(wasb))


@dataclass
class Store:
    """One provider's bucket as the test sees it: a hook factory plus raw seeding and listing."""

    provider: str
    hook: Callable[..., BackupStorageHook]
    put: Callable[[str, bytes], None]
    names: Callable[[str], set[str]]

    def seed(self, objects: dict[str, bytes]) -> None:
        with ThreadPoolExecutor(16) as pool:  # thousands of small PUTs: keep the setup short
            list(pool.map(lambda item: self.put(*item), objects.items()))


def _s3_store(raw_s3: Any) -> Store:
    def names(prefix: str) -> set[str]:
        pages = raw_s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    return Store(
        "s3",
        lambda **kw: BackupStorageHook("s3", conn_id=S3_CONN, bucket=BUCKET, **kw),
        lambda key, data: raw_s3.put_object(Bucket=BUCKET, Key=key, Body=data),
        names,
    )


def _azure_store(raw_container: ContainerClient) -> Store:
    return Store(
        "azblob",
        lambda **kw: BackupStorageHook("azblob", conn_id=AZURE_CONN, bucket=BUCKET, **kw),
        lambda key, data: raw_container.upload_blob(key, data, overwrite=True),
        lambda prefix: set(raw_container.list_blob_names(name_starts_with=prefix)),
    )


def _local_store(base: Path) -> Store:
    def put(key: str, data: bytes) -> None:
        path = base / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def names(prefix: str) -> set[str]:
        files = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return {key for key in files if key.startswith(prefix)}

    return Store("local", lambda **kw: BackupStorageHook("local", conn_id=None, bucket=str(base), **kw), put, names)


@pytest.fixture(params=PROVIDERS)
def store(request: pytest.FixtureRequest, storage_connections: None, tmp_path: Path) -> Store:
    if request.param == "s3":
        return _s3_store(request.getfixturevalue("raw_s3"))
    if request.param == "azblob":
        return _azure_store(request.getfixturevalue("raw_container"))
    return _local_store(tmp_path / "pvc")


@pytest.fixture
def root() -> str:
    """A backup root unique to the test, so tests share one bucket without seeing each other."""
    return f"cluster-{uuid.uuid4().hex[:8]}"


def br_snapshot(root: str, ts: str, *, ssts: int = 4, backupmeta: bool = True) -> dict[str, bytes]:
    """A BR-like snapshot folder: region SSTs under store folders, a lock file, and backupmeta (written last)."""
    folder = f"{root}/snapshot-{ts}"
    objects = {f"{folder}/backup.lock": b"lock"}
    for i in range(ssts):
        objects[f"{folder}/{i % 3 + 1}/{i}_abc_write.sst"] = b"w" * (100 + i)
    if backupmeta:
        objects[f"{folder}/backupmeta"] = b"m" * 64
    return objects


def neighbours(root: str) -> dict[str, bytes]:
    return {
        **br_snapshot(root, "20261103000000"),
        f"{root}/log-backup/v1/backupmeta/1.meta": b"log",
        f"{root}/log-backup/v1/20261101/1.log": b"kv" * 10,
        f"{root}/snapshot-20261101000000-extra/x": b"not under the target folder",
    }


def test_list_snapshot_prefixes(store: Store, root: str) -> None:
    store.seed(
        {
            **br_snapshot(root, "20261103000000"),
            **br_snapshot(root, "20261101000000"),
            **br_snapshot(root, "20261102000000", backupmeta=False),
            f"{root}/log-backup/v1/1.log": b"x",
            f"{root}/snapshot-notes.txt": b"a file, not a folder",
            f"{root}/nested/snapshot-20261104000000/backupmeta": b"deeper than one level",
        }
    )
    hook = store.hook()
    expected = [f"{root}/snapshot-2026110{d}000000" for d in (1, 2, 3)]
    assert hook.list_snapshot_prefixes(root) == expected
    assert hook.list_snapshot_prefixes(root + "/") == expected
    assert hook.list_snapshot_prefixes(f"{root}-nothing-here") == []


def test_snapshot_info(store: Store, root: str) -> None:
    complete = br_snapshot(root, "20261101000000", ssts=5)
    partial = br_snapshot(root, "20261102000000", ssts=3, backupmeta=False)
    store.seed({**complete, **partial})
    hook = store.hook(page_size=2)  # several pages even for a small folder

    info = hook.snapshot_info(f"{root}/snapshot-20261101000000/")
    assert info.prefix == f"{root}/snapshot-20261101000000"
    assert info.exists_backupmeta
    assert info.objects == len(complete)
    assert info.total_bytes == sum(len(v) for v in complete.values())
    assert info.backupmeta_bytes == 64

    missing_meta = hook.snapshot_info(f"{root}/snapshot-20261102000000")
    assert not missing_meta.exists_backupmeta
    assert (missing_meta.objects, missing_meta.backupmeta_bytes) == (len(partial), 0)
    assert missing_meta.total_bytes == sum(len(v) for v in partial.values())

    absent = hook.snapshot_info(f"{root}/snapshot-20261109000000")
    assert (absent.exists_backupmeta, absent.objects, absent.total_bytes) == (False, 0, 0)


def test_read_exists_and_list_keys(store: Store, root: str) -> None:
    objects = br_snapshot(root, "20261101000000")
    store.seed(objects)
    hook = store.hook()
    meta = f"{root}/snapshot-20261101000000/backupmeta"
    assert hook.exists(meta)
    assert not hook.exists(f"{root}/snapshot-20261101000000/nope")
    assert hook.read_object(meta) == b"m" * 64
    with pytest.raises(FileNotFoundError):
        hook.read_object(f"{root}/snapshot-20261101000000/nope")
    listed = {entry.key: entry.size for entry in hook.list_keys(f"{root}/snapshot-20261101000000")}
    assert listed == {key: len(data) for key, data in objects.items()}


# A restore window across midnight: 22:40 on Nov 1 to 00:20 on Nov 2 (UTC).
LOG_START = datetime(2026, 11, 1, 22, 40, tzinfo=UTC)
LOG_END = datetime(2026, 11, 2, 0, 20, tzinfo=UTC)


def log_file(log_prefix: str, min_time: datetime, size: int, *, store: int = 1,
             folder: datetime | None = None) -> dict[str, bytes]:
    """One TiKV log data file, `v1/<YYYYMMDD>/<HH>/<store>/<min_ts>-<uuid>.log`, filed under `folder`'s hour
    (TiKV uses the file's max_ts; by default here the min_ts's own hour)."""
    hour = (folder or min_time).strftime("%Y%m%d/%H")
    return {f"{log_prefix}/v1/{hour}/{store}/{dt_to_tso(min_time)}-{uuid.uuid4()}.log": b"k" * size}


def test_log_volume_counts_files_in_the_hours_and_ts_bounds(store: Store, root: str) -> None:
    log = f"{root}/log-backup"
    at = LOG_START.replace(minute=0)  # 22:00
    replayed = {
        **log_file(log, LOG_START, 160),  # begins exactly at start_ts
        **log_file(log, at + timedelta(minutes=45), 100, store=1),
        **log_file(log, at + timedelta(minutes=50), 110, store=2),
        **log_file(log, at + timedelta(minutes=90), 120, store=3),
        **log_file(log, at + timedelta(minutes=130), 130),
        **log_file(log, LOG_END, 150, store=2),  # begins exactly at end_ts
        # Begins before end_ts, ends after 01:00: TiKV files it under its max_ts's hour, the next one.
        **log_file(log, at + timedelta(minutes=139), 140, folder=at + timedelta(hours=3)),
    }
    ignored = {
        **log_file(log, at + timedelta(minutes=10), 1000),  # in the first hour, wholly before start_ts
        **log_file(log, at - timedelta(minutes=10), 1000),  # an hour before
        **log_file(log, LOG_END + timedelta(minutes=5), 1000),  # in the last hour, after end_ts
        **log_file(log, at + timedelta(minutes=185), 1000),  # in the extra hour, after end_ts
        **log_file(log, at + timedelta(minutes=120), 1000, folder=at + timedelta(hours=5)),  # no hour listed
        f"{log}/v1/20261101/23/1/notes.txt": b"x" * 1000,
        f"{log}/v1/20261101/23/1/not-a-tso.log": b"x" * 1000,
        f"{log}/v1/backupmeta/{dt_to_tso(LOG_START):016X}.meta": b"m" * 1000,
        **log_file(f"{log}-old", at + timedelta(minutes=50), 1000),  # another log backup beside it
        **log_file(f"{root}/other/log-backup", at + timedelta(minutes=50), 1000),
    }
    store.seed({**replayed, **ignored})
    hook = store.hook(page_size=2)

    volume = hook.log_volume(log, dt_to_tso(LOG_START), dt_to_tso(LOG_END))

    # Hours 22, 23, 00, 01 (the extra one): one listing each.
    assert volume == LogVolume(bytes=sum(map(len, replayed.values())), files=len(replayed), hours=4)
    assert hook.log_volume(log + "/", dt_to_tso(LOG_START), dt_to_tso(LOG_END)) == volume


def test_log_volume_matches_what_the_sandbox_restore_reads(store: Store, root: str, tmp_path: Path) -> None:
    """Log data written by the sandbox's own BR writer (three stores, a flush every 10 minutes over 3 hours):
    from a flush boundary the hook counts exactly the bytes the sandbox's restore replays."""
    written = LocalLocation(root=tmp_path / "written", mount_path="/nfs", prefix=None)
    t0 = datetime(2026, 11, 1, 22, 5, tzinfo=UTC)
    flushes = []
    for n in range(1, 19):
        changes = [Change(dt_to_tso(t0 + timedelta(minutes=10 * n - m)), f"db/t/{n}-{m}", {"id": n, "m": m})
                   for m in range(1, 10)]
        flushes.append((changes, dt_to_tso(t0 + timedelta(minutes=10 * n))))
    flush_log_history(written, flushes)
    log = f"{root}/log-backup"
    store.seed({f"{log}/{info.rel}": written.get(info.rel) for info in written.list()})
    start_ts = flushes[3][1]  # 22:45, right after a flush
    end_ts = dt_to_tso(t0 + timedelta(minutes=125))  # 00:10, in the middle of one

    volume = store.hook().log_volume(log, start_ts, end_ts)

    files = [f for m in list_metas(written) for f in m.files if f.max_ts > start_ts and f.min_ts <= end_ts]
    assert volume.bytes == log_bytes(written, start_ts, end_ts) == sum(f.length for f in files) > 0
    assert (volume.files, volume.hours) == (len(files), 4)


def test_log_volume_of_nothing_and_bad_ranges(store: Store, root: str) -> None:
    hook = store.hook()
    start, end = dt_to_tso(LOG_START), dt_to_tso(LOG_END)
    assert hook.log_volume(f"{root}/log-backup", start, end) == LogVolume(bytes=0, files=0, hours=4)
    assert hook.log_volume(f"{root}/log-backup", start, start).hours == 2
    with pytest.raises(ValueError, match="before start_ts"):
        hook.log_volume(f"{root}/log-backup", end, start)
    with pytest.raises(ValueError):
        hook.log_volume("", start, end)


@pytest.mark.parametrize("provider", ["s3", "azblob"])
def test_log_volume_storage_error_propagates(storage_connections: None, provider: str) -> None:
    """A missing bucket is not an empty log: the caller sees the error and reports the volume unknown."""
    conn_id = S3_CONN if provider == "s3" else AZURE_CONN
    hook = BackupStorageHook(provider, conn_id=conn_id, bucket="no-such-bucket")  # type: ignore[arg-type]
    with pytest.raises(ClientError if provider == "s3" else ResourceNotFoundError):
        hook.log_volume("cluster/log-backup", dt_to_tso(LOG_START), dt_to_tso(LOG_END))


# More than two full batches per provider (S3: 1000 keys, Azure: 256 blobs per request).
DELETE_SIZES = {"s3": 2600, "azblob": 700, "local": 1500}


def test_delete_prefix_many_keys_leaves_neighbours(store: Store, root: str) -> None:
    target = br_snapshot(root, "20261101000000", ssts=DELETE_SIZES[store.provider])
    kept = neighbours(root)
    store.seed({**target, **kept})
    # A small page and concurrency 2: deletes run while the listing is still paging.
    hook = store.hook(max_concurrency=2, page_size=400, managed_root=root)

    result = hook.delete_prefix(f"{root}/snapshot-20261101000000")

    assert (result.keys, result.bytes, result.dry_run) == (len(target), sum(map(len, target.values())), False)
    assert result.prefix == f"{root}/snapshot-20261101000000"
    assert len(result.sample) == 20 and set(result.sample) <= set(target)
    assert store.names(root) == set(kept)
    assert hook.list_snapshot_prefixes(root) == [
        f"{root}/snapshot-20261101000000-extra",
        f"{root}/snapshot-20261103000000",
    ]

    # Deleting again is fine: everything is already gone.
    again = hook.delete_prefix(f"{root}/snapshot-20261101000000/")
    assert (again.keys, again.bytes, again.sample) == (0, 0, [])
    assert store.names(root) == set(kept)


def test_dry_run_deletes_nothing(store: Store, root: str) -> None:
    target = br_snapshot(root, "20261101000000", ssts=30)
    store.seed({**target, **neighbours(root)})
    before = store.names(root)

    result = store.hook(managed_root=root).delete_prefix(f"{root}/snapshot-20261101000000", dry_run=True)

    assert result.dry_run
    assert (result.keys, result.bytes) == (len(target), sum(map(len, target.values())))
    assert len(result.sample) == 20 and set(result.sample) <= set(target)
    assert store.names(root) == before


def test_delete_keys_tolerates_already_gone(store: Store, root: str) -> None:
    folder = f"{root}/snapshot-20261101000000"
    store.seed({f"{folder}/a": b"1", f"{folder}/b": b"2"})
    hook = store.hook(managed_root=root)
    assert hook.delete_keys([f"{folder}/a", f"{folder}/never-existed", f"{folder}/b"]) == 3
    assert store.names(root) == set()
    assert hook.delete_keys([f"{folder}/a"]) == 1
    with pytest.raises(StorageDeleteRefused):
        hook.delete_keys([f"{root}/log-backup/backupmeta"])


@pytest.mark.parametrize("prefix", ["{root}/log-backup", "{root}", "{root}/snapshot-2026110100000",
                                    "{root}/snapshot-20261101000000/1", "other/snapshot-20261101000000",
                                    "{root}x/snapshot-20261101000000", "backups", "{root}/snapshot-20261101000000-x"])
def test_deletes_only_this_clusters_snapshot_folders(store: Store, root: str, prefix: str) -> None:
    """Defence in depth: whatever a caller planned, only `<root>/snapshot-<14 digits>` can be deleted."""
    prefix = prefix.format(root=root)
    store.seed({f"{prefix}/keep": b"x"})
    with pytest.raises(StorageDeleteRefused, match="only snapshot folders of this cluster"):
        store.hook(managed_root=root).delete_prefix(prefix)
    with pytest.raises(StorageDeleteRefused, match="no managed root"):
        store.hook().delete_prefix(f"{root}/snapshot-20261101000000")
    assert store.names(prefix) == {f"{prefix}/keep"}


@pytest.mark.parametrize("prefix", ["", "/", "//", "a/../b", "./x"])
def test_refuses_empty_root_or_escaping_prefix(store: Store, root: str, prefix: str) -> None:
    store.seed({f"{root}/keep": b"x"})
    hook = store.hook(managed_root=root)
    with pytest.raises(ValueError):
        hook.delete_prefix(prefix)
    with pytest.raises(ValueError):
        hook.delete_prefix(prefix, dry_run=True)
    assert store.names(root) == {f"{root}/keep"}


def test_azure_per_blob_failure_is_reported_after_all_batches(
    storage_connections: None, raw_container: ContainerClient, root: str
) -> None:
    store = _azure_store(raw_container)
    target = br_snapshot(root, "20261101000000", ssts=600)
    store.seed(target)
    leased_key = f"{root}/snapshot-20261101000000/1/0_abc_write.sst"
    lease = raw_container.get_blob_client(leased_key).acquire_lease()  # a leased blob refuses deletion (412)

    hook = store.hook(managed_root=root)
    with pytest.raises(StorageDeleteError) as caught:
        hook.delete_prefix(f"{root}/snapshot-20261101000000")

    assert list(caught.value.failures) == [leased_key]
    assert "LeaseIdMissing" in caught.value.failures[leased_key]
    assert leased_key in str(caught.value)
    assert store.names(root) == {leased_key}  # every other batch still ran

    lease.release()
    assert hook.delete_prefix(f"{root}/snapshot-20261101000000").keys == 1
    assert store.names(root) == set()


def test_rejects_bad_construction() -> None:
    with pytest.raises(ValueError):
        BackupStorageHook("gcs", conn_id="x", bucket="b")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        BackupStorageHook("azblob", conn_id=None, bucket="b")
    with pytest.raises(ValueError):
        BackupStorageHook("s3", conn_id="x", bucket="")
