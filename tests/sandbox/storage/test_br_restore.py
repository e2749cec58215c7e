from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_sandbox.data.mvcc import ClusterData
from tidb_sandbox.data.schema import Column, TableDef, definition_ids
from tidb_sandbox.data.tso import TsoAllocator, dt_to_tso
from tidb_sandbox.data.workload import seed_history
from tidb_sandbox.storage.base import Location
from tidb_sandbox.storage.br_layout import (
    BRError,
    LogRange,
    apply_changes,
    check_restore_range,
    check_same_cluster,
    flush_log_history,
    log_metadata,
    read_log,
    read_snapshot,
    restore_point,
    start_log,
    truncate_log,
    write_snapshot,
)
from tidb_sandbox.storage.br_restore import prealloc_table_ids

Opener = Callable[[str], Callable[[str], Location]]
SEED_TS = 436568622965194754  # 2022-10-10 04:45:32.283 UTC


def test_range_errors_use_brs_wording() -> None:
    log_range = LogRange(min_ts=SEED_TS, max_ts=SEED_TS + (10_000 << 18))
    with pytest.raises(BRError) as gap:
        check_restore_range(log_range, SEED_TS - (1000 << 18), SEED_TS + 5)
    assert gap.value.message == (
        f"it has gap between full backup ts:{SEED_TS - (1000 << 18)}(2022-10-10 04:45:31.283 +0000 UTC) and "
        f"log backup ts:{SEED_TS}(2022-10-10 04:45:32.283 +0000 UTC). "
        ": [BR:Common:ErrInvalidArgument]invalid argument"
    )
    too_late = log_range.max_ts + 1
    wording = (
        r"restore log from \d+\(2022-10-10 [^)]*\) to \d+\(.*\), but the current "
        r"existed log from 436568622965194754\(2022-10-10 04:45:32.283 \+0000 UTC\) to \d+"
    )
    with pytest.raises(BRError, match=wording):
        check_restore_range(log_range, SEED_TS, too_late)
    with pytest.raises(ValueError):  # BR's invalid-argument family; callers may catch ValueError
        check_restore_range(log_range, SEED_TS + 10, SEED_TS + 9)
    assert check_restore_range(log_range, SEED_TS, 0) == log_range.max_ts  # 0 = log-max-ts
    assert check_restore_range(log_range, SEED_TS, SEED_TS) == SEED_TS  # start == log-min-ts is fine
    with pytest.raises(BRError, match="come from different cluster"):
        check_same_cluster(1, 2)


def test_apply_changes_does_not_touch_its_input() -> None:
    from tidb_sandbox.data.mvcc import Change

    rows = {"a": {"v": 1}, "b": {"v": 1}}
    out = apply_changes(rows, [Change(2, "a", None), Change(3, "c", {"v": 3})])
    assert out == {"b": {"v": 1}, "c": {"v": 3}} and rows == {"a": {"v": 1}, "b": {"v": 1}}


def test_snapshot_plus_log_equals_the_cluster_at_any_restorable_t(open_at: Opener) -> None:
    """The PITR invariant against real S3: rows(S) + log(S, T] == rows_at(T), before and after truncate."""
    start = datetime(2024, 4, 1, 0, 5, tzinfo=UTC)
    end = start + timedelta(days=3)
    data, alloc = ClusterData(cluster_id=4242), TsoAllocator()
    seed_history(data, alloc, start, end, ops_per_hour=60, rng=random.Random(11), initial_rows=40)
    opener = open_at("s3")

    log = opener("log-backup")
    log_start = dt_to_tso(start + timedelta(minutes=10))
    start_log(log, start_ts=log_start, cluster_id=data.cluster_id, task_name="pitr")
    flushes, previous, at = [], log_start, start + timedelta(hours=1, minutes=10)
    while at < end:
        flushes.append((data.changes_between(previous, dt_to_tso(at)), dt_to_tso(at)))
        previous, at = dt_to_tso(at), at + timedelta(hours=1)
    flush_log_history(log, flushes)
    checkpoint = previous

    snapshots: list[tuple[int, Location]] = []
    for day in (1, 2):
        commit_ts = dt_to_tso(datetime(2024, 4, 1 + day, tzinfo=UTC))
        loc = opener(f"snapshot-{day}")
        write_snapshot(loc, data.rows_at(commit_ts), commit_ts=commit_ts, cluster_id=data.cluster_id)
        snapshots.append((commit_ts, loc))

    def check(ts: int) -> None:
        base_ts, base = max((s for s in snapshots if s[0] <= ts), key=lambda s: s[0])
        result = restore_point(base, log, ts)
        assert result.rows == data.rows_at(ts), ts
        assert result.restored_ts == ts and result.snapshot.commit_ts == base_ts

    rng = random.Random(99)
    for _ in range(6):
        check(rng.randint(snapshots[0][0], checkpoint))
    check(snapshots[0][0])  # exactly at the snapshot: no log replayed
    check(checkpoint)  # exactly at the checkpoint
    assert restore_point(snapshots[0][1], log, 0).restored_ts == checkpoint

    with pytest.raises(BRError, match="but the current existed log"):
        restore_point(snapshots[0][1], log, checkpoint + 1)

    # Retention: truncate to the newer snapshot; restores from it still work, the older one has a gap.
    truncate_log(log, snapshots[1][0])
    assert log_metadata(log).min_ts == snapshots[1][0]
    for _ in range(3):
        check(rng.randint(snapshots[1][0], checkpoint))
    with pytest.raises(BRError, match="it has gap between full backup ts"):
        restore_point(snapshots[0][1], log, checkpoint)
    # Log-only restore from the snapshot's rows by hand, as the operator's pitr path does it.
    meta, rows = read_snapshot(snapshots[1][1])
    assert apply_changes(rows, read_log(log, meta.commit_ts, checkpoint)) == data.rows_at(checkpoint)


# -- table IDs (BR's prealloc_table_id) -------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(current=st.integers(100, 400), ids=st.lists(st.integers(101, 300), min_size=1, max_size=6, unique=True),
       partitions=st.integers(0, 3))
def test_restored_tables_keep_an_id_only_above_the_targets_global_id(current, ids, partitions):
    rows: dict[str, Any] = {}
    for n, table_id in enumerate(ids):
        definition = TableDef("db", f"t{n}", table_id, (Column("id", "bigint(20)"),),
                              tuple(range(1000 + 10 * n, 1000 + 10 * n + partitions)) if n == 0 else ())
        rows[definition.key] = definition.definition()
        rows[f"db/t{n}/0000000001"] = {"id": 1}
    result = prealloc_table_ids(rows, current)
    before = [i for key in sorted(rows) for i in definition_ids(key, rows[key])]
    after = [i for key in sorted(rows) for i in definition_ids(key, result.rows[key])]
    for old, new in zip(before, after, strict=True):
        assert (new == old) == (old > current), (old, new, current)
        assert new > current
    assert len(set(after)) == len(after), "every table and partition has its own ID"
    assert result.global_id >= max(after)
    assert {k: v for k, v in result.rows.items() if k.count("/") == 2} == {
        k: v for k, v in rows.items() if k.count("/") == 2}, "rows are untouched"
