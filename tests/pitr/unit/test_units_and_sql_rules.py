from datetime import timedelta

import pytest
from tidb_pitr.hooks.sql import listed, user_objects
from tidb_pitr.units import format_bytes, format_duration


@pytest.mark.parametrize("value,text", [
    (timedelta(days=30), "30d"), (timedelta(minutes=10), "10m"), (timedelta(hours=1, minutes=30), "1h30m"),
    (2.53, "2.5s"), (45, "45s"), (0, "0s"), (timedelta(days=2, hours=3, seconds=5), "2d3h"), (-90, "-1m30s"),
])
def test_durations_read_as_people_write_them(value, text):
    assert format_duration(value) == text


def test_sizes_in_decimal_units():
    assert [format_bytes(n) for n in (0, 840, 12_345, 1_500_000_000)] == ["0 B", "840 B", "12.3 KB", "1.5 GB"]


def test_an_empty_fresh_tidb_is_empty_for_br():
    # What a new TiDB shows: the system schemas and an empty `test` (BR's AssertUserDBsEmpty skips both).
    system = ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "mysql", "sys", "test"]
    assert user_objects(system, [("mysql", "user"), ("INFORMATION_SCHEMA", "TABLES")]) == []


def test_user_tables_and_empty_user_databases_are_not_empty():
    found = user_objects(["mysql", "shop", "empty_db", "test"], [("shop", "orders"), ("test", "t1"),
                                                                  ("mysql", "user")])
    assert found == ["empty_db", "shop.orders", "test.t1"]


def test_a_long_list_is_cut_like_brs():
    objects = [f"db.t{i:02d}" for i in range(13)]
    assert listed(objects) == ", ".join(objects[:10]) + " and 3 more"
