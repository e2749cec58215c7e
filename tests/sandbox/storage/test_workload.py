from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from tidb_sandbox.data.mvcc import ClusterData
from tidb_sandbox.data.tso import TsoAllocator, dt_to_tso
from tidb_sandbox.data.workload import Workload, poisson, seed_history


def test_poisson_mean() -> None:
    rng = random.Random(3)
    for lam in (0.5, 4.0, 200.0):
        draws = [poisson(rng, lam) for _ in range(4000)]
        assert sum(draws) / len(draws) == pytest.approx(lam, rel=0.06)
    assert poisson(rng, 0) == 0


def test_tick_writes_the_requested_mix_at_fresh_tsos() -> None:
    data, alloc = ClusterData(), TsoAllocator()
    workload = Workload(data, alloc, random.Random(5), inserts_per_s=20, updates_per_s=10, deletes_per_s=2)
    before = alloc.next()
    changes = [c for _ in range(50) for c in workload.tick(1.0)]
    kinds = {"insert": 0, "update": 0, "delete": 0}
    seen: set[str] = set()
    for change in changes:
        if change.value is None:
            kinds["delete"] += 1
        elif change.key in seen:
            kinds["update"] += 1
        else:
            kinds["insert"] += 1
        seen.add(change.key)
    assert kinds["insert"] == pytest.approx(1000, rel=0.15)
    assert kinds["update"] == pytest.approx(500, rel=0.2)
    assert kinds["delete"] == pytest.approx(100, rel=0.35)
    assert all(c.ts > before for c in changes)
    assert [c.ts for c in changes] == sorted(c.ts for c in changes)
    assert data.rows_now() == {k: v for k, v in data.rows_at(alloc.next()).items()}
    assert len(data.rows_now()) == workload.live_count


def test_rows_have_the_documented_shape_and_updates_bump_version() -> None:
    data = ClusterData()
    rates = {"inserts_per_s": 5, "updates_per_s": 50, "deletes_per_s": 0}
    workload = Workload(data, TsoAllocator(), random.Random(1), **rates)
    for _ in range(20):
        workload.tick(0.5)
    rows = data.rows_now()
    assert rows
    for key, row in rows.items():
        assert set(row) == {"id", "customer", "amount", "version"}
        assert key == f"orders/{row['id']:010d}"
    assert max(row["version"] for row in rows.values()) > 1


def test_seed_history_writes_the_past() -> None:
    data, alloc, rng = ClusterData(), TsoAllocator(), random.Random(9)
    end = datetime(2024, 5, 1, tzinfo=UTC)
    start = end - timedelta(days=2)
    written = seed_history(data, alloc, start, end, ops_per_hour=60, rng=rng, initial_rows=50)
    assert written == data.version_count
    assert 50 + 0.7 * 2880 < written < 50 + 1.3 * 2880
    # The initial batch shares start's millisecond, with rising logical parts.
    assert len(data.rows_at(dt_to_tso(start + timedelta(milliseconds=1)) - 1)) == 50
    assert dt_to_tso(start) <= data.min_ts and data.max_ts < dt_to_tso(end)
    assert alloc.next() > data.max_ts
    # A live workload continues after the history without clashing with its ids.
    workload = Workload(data, alloc, rng, inserts_per_s=10, updates_per_s=0, deletes_per_s=0)
    assert workload.live_count == len(data.rows_now())
    workload.tick(1.0)
