from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_sandbox.data.mvcc import Change, ClusterData

KEYS = [f"shop/orders/{n:010d}" for n in range(6)]

# (key index, ts gap, value or None): gaps keep every key's versions strictly rising.
ops = st.lists(
    st.tuples(st.integers(0, len(KEYS) - 1), st.integers(1, 5), st.one_of(st.none(), st.integers(0, 9))),
    max_size=60,
)


def build(steps: list[tuple[int, int, int | None]]) -> tuple[ClusterData, list[Change]]:
    data, log, ts = ClusterData(cluster_id=7), [], 100
    for index, gap, value in steps:
        ts += gap
        log.append(Change(ts, KEYS[index], None if value is None else {"v": value}))
    data.apply(log)
    return data, log


def brute_rows_at(log: list[Change], ts: int) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for change in sorted(log, key=lambda c: c.ts):
        if change.ts > ts:
            break
        if change.value is None:
            rows.pop(change.key, None)
        else:
            rows[change.key] = change.value
    return rows


@settings(max_examples=150)
@given(ops, st.integers(90, 420))
def test_rows_at_matches_brute_force(steps: list[tuple[int, int, int | None]], at: int) -> None:
    data, log = build(steps)
    assert data.rows_at(at) == brute_rows_at(log, at)
    assert data.rows_now() == brute_rows_at(log, 10**9)


@settings(max_examples=100)
@given(ops, st.integers(90, 420), st.integers(0, 200))
def test_changes_between_is_the_half_open_range(
    steps: list[tuple[int, int, int | None]], after: int, span: int
) -> None:
    data, log = build(steps)
    until = after + span
    got = data.changes_between(after, until)
    assert [c.ts for c in got] == sorted(c.ts for c in log if after < c.ts <= until)
    # Replaying the range on top of rows_at(after) gives rows_at(until): what PITR relies on.
    rows = data.rows_at(after)
    for change in got:
        if change.value is None:
            rows.pop(change.key, None)
        else:
            rows[change.key] = change.value
    assert rows == data.rows_at(until)


def test_versions_of_a_key_must_move_forward() -> None:
    data = ClusterData()
    data.apply([Change(10, "k", {"v": 1})])
    with pytest.raises(ValueError, match="not after"):
        data.apply([Change(10, "k", {"v": 2})])
    data.apply([Change(5, "other", {"v": 1})])  # another key may be older
    assert data.min_ts == 5 and data.max_ts == 10
    assert [c.key for c in data.changes_between(0, 100)] == ["other", "k"]


def test_returned_rows_are_copies() -> None:
    data = ClusterData()
    data.apply([Change(1, "k", {"v": 1})])
    data.rows_at(1)["k"]["v"] = 99
    data.rows_now()["k"]["v"] = 98
    assert data.rows_at(1) == {"k": {"v": 1}}


def test_load_fills_a_fresh_cluster_only() -> None:
    data = ClusterData()
    assert data.is_empty() and data.min_ts == 0 and data.max_ts == 0
    data.load({"a": {"v": 1}, "b": {"v": 2}}, ts=50)
    assert data.rows_at(49) == {} and data.rows_at(50) == {"a": {"v": 1}, "b": {"v": 2}}
    assert data.version_count == 2
    with pytest.raises(ValueError, match="not empty"):
        data.load({"c": {}}, ts=60)


def test_cluster_ids_look_like_pd_ones() -> None:
    assert ClusterData().cluster_id >= 1 << 62
    assert ClusterData(cluster_id=42).cluster_id == 42


def test_rows_at_a_prefix_and_versions_with_their_commit_ts() -> None:
    data = ClusterData()
    data.apply([Change(1, "shop", {"charset": "utf8mb4"}), Change(2, "shop/orders", {"id": 110}),
                Change(3, "shop/orders/0000000001", {"id": 1}), Change(4, "shop/ordersx/0000000001", {"id": 1}),
                Change(5, "shop/orders/0000000001", {"id": 1, "v": 2})])
    assert data.rows_at(4, "shop/orders/") == {"shop/orders/0000000001": {"id": 1}}
    assert data.rows_at(5, "shop/orders/") == {"shop/orders/0000000001": {"id": 1, "v": 2}}
    found = data.versions_at(4, lambda key: key.count("/") < 2)
    assert found == {"shop": (1, {"charset": "utf8mb4"}), "shop/orders": (2, {"id": 110})}
    assert data.versions_at(0, lambda key: True) == {}


def test_empty_means_no_live_key() -> None:
    data = ClusterData()
    data.apply([Change(1, "shop", {}), Change(2, "shop", None)])
    assert data.is_empty() and data.version_count == 2
    data.apply([Change(3, "shop", {})])
    assert not data.is_empty()
