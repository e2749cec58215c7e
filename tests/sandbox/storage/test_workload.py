from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_sandbox.data.mvcc import ClusterData
from tidb_sandbox.data.schema import TableDef, parse_key, row_key, table_key
from tidb_sandbox.data.tso import LOGICAL_MASK, TsoAllocator, dt_to_tso
from tidb_sandbox.data.workload import TABLES, Workload, extend_history, poisson, seed_history


def row_keys(keys) -> list[str]:
    return [k for k in keys if (parts := parse_key(k)) is not None and parts.is_row]


def test_poisson_mean() -> None:
    rng = random.Random(3)
    for lam in (0.5, 4.0, 200.0):
        draws = [poisson(rng, lam) for _ in range(4000)]
        assert sum(draws) / len(draws) == pytest.approx(lam, rel=0.06)
    assert poisson(rng, 0) == 0


def test_the_tables_are_two_databases_of_two_or_more_tables() -> None:
    by_db: dict[str, list[str]] = {}
    for table in TABLES:
        by_db.setdefault(table.table.database, []).append(table.table.name)
    assert len(by_db) >= 2 and all(len(names) >= 2 for names in by_db.values())


def test_tick_writes_the_requested_mix_at_fresh_tsos() -> None:
    data, alloc = ClusterData(), TsoAllocator()
    workload = Workload(data, alloc, random.Random(5), inserts_per_s=20, updates_per_s=10, deletes_per_s=2)
    before = alloc.next()
    changes = [c for _ in range(50) for c in workload.tick(1.0)]
    kinds = {"insert": 0, "update": 0, "delete": 0}
    seen: set[str] = set()
    for change in changes:
        if not parse_key(change.key).is_row:
            continue
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
    assert len(row_keys(data.rows_now())) == workload.live_count
    # The rates are for all tables together, spread by the tables' weights: every table gets rows.
    tables = {(p.database, p.table) for p in map(parse_key, row_keys(data.rows_now()))}
    assert tables == {(t.table.database, t.table.name) for t in TABLES}


def test_the_first_tick_creates_databases_and_tables_before_rows() -> None:
    data, alloc = ClusterData(), TsoAllocator()
    assert data.is_empty()
    workload = Workload(data, alloc, random.Random(2), inserts_per_s=50, updates_per_s=0, deletes_per_s=0)
    first = workload.tick(1.0)
    definitions = [c for c in first if not parse_key(c.key).is_row]
    assert {c.key for c in definitions} == {"shop", "crm", *(t.table.key for t in TABLES)}
    assert max(c.ts for c in definitions) <= min(c.ts for c in first if parse_key(c.key).is_row)
    assert not data.is_empty()
    definition = TableDef.from_definition("shop", "orders", data.get(table_key("shop", "orders")))
    assert [c.name for c in definition.columns] == ["id", "customer_id", "amount", "status", "version"]
    # A workload over existing tables writes no definitions again.
    again = Workload(data, alloc, random.Random(3), inserts_per_s=5, updates_per_s=0, deletes_per_s=0)
    assert all(parse_key(c.key).is_row for c in again.tick(1.0))


def test_rows_have_the_documented_shape_and_updates_bump_version() -> None:
    data = ClusterData()
    rates = {"inserts_per_s": 5, "updates_per_s": 50, "deletes_per_s": 0}
    workload = Workload(data, TsoAllocator(), random.Random(1), **rates)
    for _ in range(20):
        workload.tick(0.5)
    rows = {k: v for k, v in data.rows_now().items() if parse_key(k).is_row}
    assert rows
    columns = {(t.table.database, t.table.name): {c.name for c in t.table.columns} for t in TABLES}
    for key, row in rows.items():
        parts = parse_key(key)
        assert set(row) == columns[(parts.database, parts.table)]
        assert key == row_key(parts.database, parts.table, row["id"])
    assert max(row["version"] for row in rows.values()) > 1


def test_seed_history_writes_the_past() -> None:
    data, alloc, rng = ClusterData(), TsoAllocator(), random.Random(9)
    end = datetime(2024, 5, 1, tzinfo=UTC)
    start = end - timedelta(days=2)
    written = seed_history(data, alloc, start, end, ops_per_hour=60, rng=rng, initial_rows=50)
    assert written == data.version_count
    definitions = 2 + len(TABLES)
    assert definitions + 50 + 0.7 * 2880 < written < definitions + 50 + 1.3 * 2880
    # The definitions and the initial batch share start's millisecond, with rising logical parts.
    at_start = data.rows_at(dt_to_tso(start + timedelta(milliseconds=1)) - 1)
    assert len(row_keys(at_start)) == 50 and len(at_start) == 50 + definitions
    assert dt_to_tso(start) <= data.min_ts and data.max_ts < dt_to_tso(end)
    assert alloc.next() > data.max_ts
    # A live workload continues after the history without clashing with its ids.
    workload = Workload(data, alloc, rng, inserts_per_s=10, updates_per_s=0, deletes_per_s=0)
    assert workload.live_count == len(row_keys(data.rows_now()))
    workload.tick(1.0)


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.floats(min_value=1, max_value=6 * 3600))
def test_a_history_extended_later_continues_it_as_one_seed_would(seed: int, gap_s: float) -> None:
    # What a clone of a seeded template gets (seed_templates.py): the template's history, then the traffic
    # between the template's time and the clone's.
    data, alloc = ClusterData(), TsoAllocator()
    made = datetime(2026, 12, 1, 12, tzinfo=UTC)
    seed_history(data, alloc, made - timedelta(hours=6), made, ops_per_hour=30, rng=random.Random(seed))
    before, last = data.rows_now(), data.max_ts
    every_key = set(data.keys())
    now = made + timedelta(seconds=gap_s)

    written = extend_history(data, alloc, made, now, ops_per_hour=30, rng=random.Random(seed + 1))

    new = data.changes_between(last, 2**63)
    assert len(new) == written
    assert all(dt_to_tso(made) < change.ts <= dt_to_tso(now) + LOGICAL_MASK for change in new)
    assert all(parse_key(change.key).is_row for change in new), "no schema written twice"
    first_of_new_keys = {c.key: c for c in reversed(new) if c.key not in every_key}
    assert all(c.value is not None for c in first_of_new_keys.values()), "a new id begins with its insert"
    assert all(data.rows_at(c.ts - 1).get(c.key) is None for c in new if c.value is not None and "version" in c.value
               and c.value["version"] == 1), "an insert never lands on a live row"
    assert data.rows_at(last) == before, "the history before is unchanged"
