from __future__ import annotations

import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tidb_sandbox.data.mvcc import Change, ClusterData
from tidb_sandbox.data.tso import TsoAllocator, dt_to_tso
from tidb_sandbox.data.workload import seed_history
from tidb_sandbox.storage.base import Location
from tidb_sandbox.storage.br_layout import (
    TRUNCATE_LOCK,
    TRUNCATE_SAFEPOINT,
    BRError,
    compact_log,
    flush_log,
    flush_log_history,
    list_metas,
    log_metadata,
    read_log,
    start_log,
    truncate_log,
    write_snapshot,
)

from .storage_helpers import BUCKET, s3_keys

Opener = Callable[[str], Callable[[str], Location]]
T0 = datetime(2024, 5, 1, 9, 40, tzinfo=UTC)


def ts(minutes: float, logical: int = 0) -> int:
    return dt_to_tso(T0 + timedelta(minutes=minutes), logical)


def history(hours: int = 12, ops_per_hour: float = 120) -> tuple[ClusterData, int, int]:
    data, alloc = ClusterData(cluster_id=77), TsoAllocator()
    start, end = T0, T0 + timedelta(hours=hours)
    seed_history(data, alloc, start, end, ops_per_hour=ops_per_hour, rng=random.Random(4), initial_rows=30)
    return data, dt_to_tso(start), dt_to_tso(end)


def flushed(loc: Location, data: ClusterData, start_ts: int, end_ts: int, every: timedelta) -> list[int]:
    """Start a log task at start_ts and flush its changes every `every` until end_ts; the flush TSOs."""
    start_log(loc, start_ts=start_ts, cluster_id=data.cluster_id, task_name="pitr")
    flushes, previous, step = [], start_ts, dt_to_tso(T0 + every) - dt_to_tso(T0)
    while previous + step <= end_ts:
        flushes.append((data.changes_between(previous, previous + step), previous + step))
        previous += step
    flush_log_history(loc, flushes)
    return [f for _, f in flushes]


def test_flush_layout_across_hour_boundaries(open_at: Opener, raw_s3: Any) -> None:
    loc = open_at("s3")("log-backup")
    start_log(loc, start_ts=ts(0), cluster_id=9, task_name="pitr")
    # 09:45..09:50, then a flush spanning 09:55..10:10, then 10:30: files sit under their max_ts's hour, as
    # TiKV's `path_to_log_file` files them, and are named by their min_ts.
    first = [Change(ts(5), "orders/1", {"id": 1}), Change(ts(10), "orders/2", {"id": 2})]
    second = [Change(ts(15), "orders/1", {"id": 1, "v": 2}), Change(ts(30), "orders/3", {"id": 3})]
    third = [Change(ts(50), "orders/4", {"id": 4})]
    infos = [
        flush_log(loc, first, flush_ts=ts(12)),
        flush_log(loc, second, flush_ts=ts(45)),
        flush_log(loc, third, flush_ts=ts(55)),
    ]
    assert [i.changes for i in infos] == [2, 2, 1] and all(i.files >= 1 for i in infos)
    names = {key[len(loc.prefix) + 1 :] for key in s3_keys(raw_s3, loc.prefix + "/")}
    files = {f.path: f for m in list_metas(loc) for f in m.files}
    assert set(files) == {n for n in names if n.endswith(".log")}
    for path, file in files.items():
        hour = (T0 + timedelta(minutes=(file.max_ts - ts(0) >> 18) / 60000)).strftime("%Y%m%d/%H")
        assert path.startswith(f"v1/{hour}/{file.store_id}/{file.min_ts}-")
    assert {p[:15] for p in files} == {"v1/20240501/09/", "v1/20240501/10/"}
    # orders/1 and orders/3 share store 1: the second flush's one file runs 09:55..10:10 and sits under 10.
    [straddling] = [f for f in files.values() if f.min_ts == ts(15)]
    assert straddling.max_ts == ts(30) and straddling.path.startswith(f"v1/20240501/10/1/{ts(15)}-")
    metas = sorted(n for n in names if n.startswith("v1/backupmeta/"))
    assert len(metas) == 3 and all(m.endswith(".meta") for m in metas)
    assert metas[0].split("/")[-1].startswith(f"{ts(12):016X}-")
    checkpoints = sorted(n for n in names if n.startswith("v1/global_checkpoint/"))
    assert checkpoints == [f"v1/global_checkpoint/{store}.ts" for store in (1, 2, 3)]
    raw = raw_s3.get_object(Bucket=BUCKET, Key=f"{loc.prefix}/v1/global_checkpoint/1.ts")["Body"].read()
    assert len(raw) == 8 and struct.unpack("<Q", raw)[0] == ts(55)  # little-endian, as BR reads it
    assert read_log(loc, ts(0), ts(55)) == first + second + third
    assert read_log(loc, ts(10), ts(30)) == second  # after < ts <= until, across 10:00
    assert read_log(loc, ts(30), ts(49)) == []


def test_empty_flush_still_advances_the_checkpoint(open_at: Opener) -> None:
    loc = open_at("local")("log")
    start_log(loc, start_ts=ts(0), cluster_id=9, task_name="pitr")
    assert log_metadata(loc).max_ts == ts(0)  # no checkpoint yet: max = min
    info = flush_log(loc, [], flush_ts=ts(20))
    assert info.meta_path is None and info.files == 0
    assert list_metas(loc) == []
    rng = log_metadata(loc)
    assert (rng.min_ts, rng.max_ts, rng.cluster_id, rng.checkpoint) == (ts(0), ts(20), 9, ts(20))


def test_flushes_cannot_carry_future_changes(open_at: Opener) -> None:
    loc = open_at("local")("future")
    with pytest.raises(ValueError, match="future"):
        flush_log(loc, [Change(ts(5), "k", {})], flush_ts=ts(4))


def test_log_and_snapshot_prefixes_do_not_mix(open_at: Opener) -> None:
    opener = open_at("s3")
    snap = opener("snap")
    write_snapshot(snap, {}, commit_ts=ts(0), cluster_id=1)
    with pytest.raises(BRError, match="has been used for full backup"):
        start_log(snap, start_ts=ts(1), cluster_id=1, task_name="pitr")
    with pytest.raises(BRError, match="has been used for full backup"):
        log_metadata(snap)
    with pytest.raises(BRError, match="no log backup"):
        log_metadata(opener("nothing-here"))
    log = opener("log")
    start_log(log, start_ts=ts(0), cluster_id=1, task_name="pitr")
    with pytest.raises(BRError, match="another cluster"):
        start_log(log, start_ts=ts(1), cluster_id=2, task_name="pitr")


@pytest.mark.parametrize("kind", ["s3", "azblob"])
def test_truncate_deletes_exactly_the_files_before_until(kind: str, open_at: Opener) -> None:
    data, start_ts, end_ts = history(hours=8)
    loc = open_at(kind)("log")
    flush_tsos = flushed(loc, data, start_ts, end_ts, timedelta(minutes=30))
    every_file = {f.path: f for m in list_metas(loc) for f in m.files}
    until = data.changes_between(flush_tsos[4], end_ts)[7].ts  # a real change's TSO, mid-file
    doomed = {p for p, f in every_file.items() if f.max_ts < until}

    dry = truncate_log(loc, until, dry_run=True)
    assert (dry.deleted_files, dry.safepoint, dry.dry_run) == (len(doomed), 0, True)
    assert {i.rel for i in loc.list("v1/2")} == set(every_file)  # dry run touched nothing

    result = truncate_log(loc, until)
    assert result.deleted_files == len(doomed) > 0
    assert result.deleted_bytes == sum(every_file[p].length for p in doomed)
    assert {i.rel for i in loc.list("v1/2")} == set(every_file) - doomed
    assert not loc.exists(TRUNCATE_LOCK)
    assert loc.get(TRUNCATE_SAFEPOINT) == str(until).encode()
    assert all(f.max_ts >= until for m in list_metas(loc) for f in m.files)
    # Every change at or after `until` is still there; the log now starts at `until`.
    assert read_log(loc, until - 1, end_ts) == data.changes_between(until - 1, end_ts)
    assert log_metadata(loc).min_ts == until and log_metadata(loc).max_ts == flush_tsos[-1]

    lower = truncate_log(loc, until - (1 << 30))
    assert lower.safepoint == until and loc.get(TRUNCATE_SAFEPOINT) == str(until).encode()
    assert lower.deleted_files == 0


def test_truncate_refuses_while_another_holds_the_lock(open_at: Opener) -> None:
    loc = open_at("s3")("locked")
    start_log(loc, start_ts=ts(0), cluster_id=1, task_name="pitr")
    loc.put(TRUNCATE_LOCK, b"left over")
    with pytest.raises(BRError, match="manually deleting the lock file truncating.lock"):
        truncate_log(loc, ts(10))
    assert loc.get(TRUNCATE_LOCK) == b"left over"
    with pytest.raises(BRError, match="--until"):
        truncate_log(loc, 0)


def test_read_log_verifies_checksums(open_at: Opener) -> None:
    loc = open_at("local")("corrupt")
    start_log(loc, start_ts=ts(0), cluster_id=1, task_name="pitr")
    flush_log(loc, [Change(ts(1), "k", {"v": 1})], flush_ts=ts(2))
    victim = next(i.rel for i in loc.list("v1/2"))
    loc.put(victim, loc.get(victim).replace(b'"v":1', b'"v":2'))
    with pytest.raises(BRError, match="checksum mismatch"):
        read_log(loc, 0, ts(2))


def test_compaction_writes_outputs_and_leaves_restores_alone(open_at: Opener) -> None:
    data, start_ts, end_ts = history(hours=3)
    loc = open_at("local")("compact")
    flush_tsos = flushed(loc, data, start_ts, end_ts, timedelta(minutes=30))
    before = read_log(loc, start_ts, end_ts)
    result = compact_log(loc, start_ts, flush_tsos[2], name="compact-1")
    assert result.metas >= 2 and result.files >= result.output_files > 0 and result.end_ts == flush_tsos[2]
    assert loc.exists("v1/compaction_out/compact-1/compaction.meta")
    assert read_log(loc, start_ts, end_ts) == before
