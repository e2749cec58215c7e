"""DROP DATABASE, the GC worker's safe point and mysql.tidb, and the corrupt_restore fault, without a server."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from mysql_mimic.errors import MysqlError
from tidb_sandbox.data.mvcc import ClusterData
from tidb_sandbox.data.tso import TsoAllocator, dt_to_tso, physical_ms
from tidb_sandbox.data.workload import Workload
from tidb_sandbox.faults import Faults
from tidb_sandbox.operator.restore import corrupt_one_row, restored_tables
from tidb_sandbox.sql import ddl
from tidb_sandbox.sql.catalog import Catalog
from tidb_sandbox.sql.config import SqlConfig
from tidb_sandbox.sql.parsing import drop_database
from tidb_sandbox.sql.readts import ReadTimes
from tidb_sandbox.sql.systables import gc_time, tidb_rows

START = datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _times(life: float, every: float) -> tuple[Clock, ReadTimes]:
    clock = Clock()
    return clock, ReadTimes(TsoAllocator(clock), SqlConfig(gc_life_time=life, gc_run_interval=every))


def _at(clock: Clock, times: ReadTimes, **delta: float) -> tuple[str, str]:
    """(last run, safe point) as mysql.tidb prints them, `delta` after START."""
    clock.now = START + timedelta(**delta)
    run = times.gc_run(times.now())
    return gc_time(run.run_ms), gc_time(physical_ms(run.safe_point))


# -- the GC worker ------------------------------------------------------------------------------------
def test_the_safe_point_moves_in_steps_of_the_run_interval() -> None:
    clock, times = _times(life=600, every=600)
    assert _at(clock, times) == ("20261201-16:00:00.000 +0000", "20261201-15:50:00.000 +0000")  # runs at start
    assert _at(clock, times, minutes=9, seconds=59) == ("20261201-16:00:00.000 +0000", "20261201-15:50:00.000 +0000")
    assert _at(clock, times, minutes=10) == ("20261201-16:10:00.000 +0000", "20261201-16:00:00.000 +0000")
    assert _at(clock, times, minutes=35) == ("20261201-16:30:00.000 +0000", "20261201-16:20:00.000 +0000")


def test_the_safe_point_never_moves_back_and_a_skipped_run_is_tried_again() -> None:
    clock, times = _times(life=600, every=600)
    _at(clock, times, minutes=10)  # safe point 16:00
    times.config.gc_life_time = 1200
    # The run due at 16:20 would set 16:00 again: skipped, tried again each minute until it moves forward.
    assert _at(clock, times, minutes=20, seconds=30) == ("20261201-16:10:00.000 +0000",
                                                         "20261201-16:00:00.000 +0000")
    assert _at(clock, times, minutes=21) == ("20261201-16:21:00.000 +0000", "20261201-16:01:00.000 +0000")
    assert _at(clock, times, minutes=30) == ("20261201-16:21:00.000 +0000", "20261201-16:01:00.000 +0000")
    assert _at(clock, times, minutes=31) == ("20261201-16:31:00.000 +0000", "20261201-16:11:00.000 +0000")


def test_runs_come_on_the_workers_minute_ticks() -> None:
    clock, times = _times(life=600, every=90)  # due 90 s after a run, run at the next tick: every 2 minutes
    assert _at(clock, times, seconds=119)[0] == "20261201-16:00:00.000 +0000"
    assert _at(clock, times, minutes=2)[0] == "20261201-16:02:00.000 +0000"
    assert _at(clock, times, minutes=7)[0] == "20261201-16:06:00.000 +0000"
    clock, times = _times(life=1, every=2)  # under a minute: ticks at the interval
    assert _at(clock, times, seconds=5) == ("20261201-16:00:04.000 +0000", "20261201-16:00:03.000 +0000")


def test_a_continuous_gc_is_now_minus_the_life_time_and_keeps_what_a_short_life_time_did() -> None:
    clock, times = _times(life=600, every=0)
    assert _at(clock, times, minutes=5) == ("20261201-16:05:00.000 +0000", "20261201-15:55:00.000 +0000")
    times.config.gc_life_time = 1
    assert _at(clock, times, minutes=6)[1] == "20261201-16:05:59.000 +0000"
    times.settle()  # the settings change: what ran under the old ones stays
    times.config.gc_life_time = 600
    assert _at(clock, times, minutes=7)[1] == "20261201-16:05:59.000 +0000"
    with pytest.raises(MysqlError) as err:
        times.check_read(dt_to_tso(START + timedelta(minutes=5)))
    assert err.value.code == 9006


def test_mysql_tidb_rows() -> None:
    clock, times = _times(life=600, every=600)
    clock.now = START + timedelta(minutes=12, seconds=30, milliseconds=123)
    rows = {r["VARIABLE_NAME"]: r["VARIABLE_VALUE"] for r in tidb_rows(times, times.now(), "demo1-tidb-0")}
    assert rows["tikv_gc_safe_point"] == "20261201-16:00:00.000 +0000"
    assert rows["tikv_gc_last_run_time"] == "20261201-16:10:00.000 +0000"
    assert rows["tikv_gc_life_time"] == rows["tikv_gc_run_interval"] == "10m0s"
    assert rows["tikv_gc_enable"] == "true" and rows["bootstrapped"] == "True"
    assert rows["tikv_gc_leader_lease"] == "20261201-16:14:00.000 +0000"  # last tick (16:12) + 2m
    assert rows["tikv_gc_leader_desc"] == "host:demo1-tidb-0, pid:1, start at 2026-12-01 16:00:00 +0000 UTC"
    assert int(rows["tikv_gc_leader_uuid"], 16) == times.started_ts


# -- DROP DATABASE ------------------------------------------------------------------------------------
def test_drop_database_statements() -> None:
    assert drop_database("DROP DATABASE shop") == ("shop", False)
    assert drop_database("drop schema if exists `my db`") == ("my db", True)
    assert drop_database("DROP TABLE shop.orders") is None
    for text in ("DROP DATABASE", "DROP DATABASE IF EXISTS", "DROP DATABASE a b"):
        with pytest.raises(MysqlError) as err:
            drop_database(text)
        assert err.value.code == 1064, text


def test_drop_database_deletes_every_key_at_one_tso_and_a_restore_loads_after() -> None:
    data, alloc = ClusterData(), TsoAllocator()
    times = ReadTimes(alloc, SqlConfig())
    workload = Workload(data, alloc, random.Random(3), inserts_per_s=40, updates_per_s=10, deletes_per_s=2)
    workload.tick(1.0)
    before = alloc.next()
    kept = data.rows_at(before)
    ts = ddl.drop_database(data, times, "SHOP", if_exists=False)
    assert ts is not None and not any(k.startswith("shop") for k in data.rows_now())
    assert {c.key for c in data.changes_between(ts - 1, ts)} == {k for k in kept if k.startswith("shop")}
    assert data.rows_at(before) == kept, "a read at an older TSO still sees the database"
    workload.tick(1.0)
    assert not any(k.startswith("shop") for k in data.rows_now()), "the workload stops writing to it"
    assert ddl.drop_database(data, times, "shop", if_exists=True) is None
    with pytest.raises(MysqlError) as err:
        ddl.drop_database(data, times, "shop", if_exists=False)
    assert (err.value.code, err.value.msg) == (1008, "Can't drop database 'shop'; database doesn't exist")
    ddl.drop_database(data, times, "crm", if_exists=False)
    ddl.drop_database(data, times, "test", if_exists=False)
    assert data.is_empty() and "test" not in Catalog(data, alloc.next()).schema_names()
    workload.tick(1.0)
    data.load(kept, alloc.next())  # a restore into the emptied cluster: every key's versions still rise
    assert data.rows_now() == kept


def test_drop_database_refusals_come_in_tidbs_order() -> None:
    for name, code, message in (
        ("information_schema", 1044, "Access denied for user 'root'@'%' to database 'information_schema'"),
        ("PERFORMANCE_SCHEMA", 1044, "Access denied for user 'root'@'%' to database 'PERFORMANCE_SCHEMA'"),
        ("mysql", 1105, "can not execute write statement when 'tidb_snapshot' is set"),
    ):
        with pytest.raises(MysqlError) as err:
            ddl.check_drop_database(name, "root", snapshot_ts=1)
        assert (err.value.code, err.value.msg) == (code, message)
    with pytest.raises(MysqlError) as err:
        ddl.check_drop_database("MySQL", "root", snapshot_ts=0)
    assert (err.value.code, err.value.msg) == (1105, "Drop 'mysql' database is forbidden")
    ddl.check_drop_database("test", "root", snapshot_ts=0)


# -- corrupt_restore ----------------------------------------------------------------------------------
def test_corrupt_one_row_changes_the_first_value_after_id_of_the_smallest_key() -> None:
    data, alloc = ClusterData(), TsoAllocator()
    Workload(data, alloc, random.Random(5), inserts_per_s=60, updates_per_s=0, deletes_per_s=0).tick(1.0)
    rows = data.rows_now()
    assert {"shop.orders", "crm.events"} <= restored_tables(rows)
    changed = corrupt_one_row(rows, "Shop.Orders")
    differing = [k for k in rows if rows[k] != changed[k]]
    first = min(k for k in rows if k.startswith("shop/orders/"))
    assert differing == [first]
    assert changed[first] == {**rows[first], "customer_id": rows[first]["customer_id"] + 1}
    names = {"shop/t": {"columns": [{"name": "id"}, {"name": "note"}, {"name": "n"}]},
             "shop/t/0000000001": {"id": 1, "note": "x", "n": 2}, "shop/t/0000000002": {"id": 2, "note": "y", "n": 3}}
    assert corrupt_one_row(names, "shop.t")["shop/t/0000000001"] == {"id": 1, "note": "x-corrupt", "n": 2}
    money = {"shop/m/0000000001": {"id": 1, "amount": 10.1}}
    assert corrupt_one_row(money, "shop.m")["shop/m/0000000001"]["amount"] == 11.1


def test_the_corrupt_restore_fault_waits_for_a_restore_with_its_table() -> None:
    faults = Faults()
    faults.update({"corrupt_restore": "shop.orders"})
    assert faults.take_restore_corruption({"crm.events"}) is None and faults.corrupt_restore == "shop.orders"
    assert faults.take_restore_corruption({"shop.orders", "crm.events"}) == "shop.orders"
    assert faults.corrupt_restore is None
    assert faults.take_restore_corruption({"shop.orders"}) is None
