"""Full-table reads take time and the GC can overtake them; a log backup's checkpoint moves at TiKV's flush
interval, can be pinned by a long-open transaction, and holds the GC safe point where it is.

On the module's manual-clock sandbox, so that time passes only where a test says: each read runs in a thread
while the test advances the clock. Every test here fails if the sandbox becomes kinder again (instant scans,
a safe point that ignores the log backup, a checkpoint that is always "now").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pymysql
import pytest
from kubernetes import client
from tidb_sandbox.data.tso import LOGICAL_BITS

from .conftest import NAMESPACE, SOURCE, query

SANDBOX_CLOCK = "manual"
SANDBOX_SETTINGS = {"scan_rate": 0}  # each test sets the rate it needs at run time
LOG_BACKUP = f"{SOURCE}-log-backup"  # the seeded cluster's log backup


@pytest.fixture
def in_thread() -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def _table_bytes(db: pymysql.Connection, schema: str, table: str) -> int:
    rows = query(db, "SELECT DATA_LENGTH, INDEX_LENGTH FROM INFORMATION_SCHEMA.TABLES "
                     f"WHERE TABLE_SCHEMA = '{schema}' AND TABLE_NAME = '{table}'")[1]
    return int(rows[0][0]) + int(rows[0][1])


def _start(sandbox: Any, pool: ThreadPoolExecutor, fn: Callable[[], Any]) -> Future[Any]:
    """Run `fn` (one read) in a thread and return once the sandbox sleeps on it: the clock's sleepers grow by
    one (the scan's), so advancing from here on moves the scan."""
    idle = sandbox.settle()["sleepers"]
    future = pool.submit(fn)
    deadline = time.monotonic() + 10
    while sandbox.clock()["sleepers"] <= idle and not future.done():
        assert time.monotonic() < deadline, "the read never started"
        time.sleep(0.02)
    return future


def _seconds_until_done(sandbox: Any, future: Future[Any], limit: int = 40) -> int:
    """Advance the clock a second at a time until the read answers: how many seconds it took."""
    for second in range(1, limit + 1):
        sandbox.advance(1)
        deadline = time.monotonic() + 5
        while not future.done() and time.monotonic() < deadline and sandbox.clock()["threadsBusy"]:
            time.sleep(0.02)
        if future.done() or _answered(future):
            return second
    raise AssertionError(f"the read did not answer within {limit} s of the sandbox's time")


def _answered(future: Future[Any], wait: float = 0.2) -> bool:
    """The answer may still be on its way over the socket once the sandbox is idle."""
    try:
        future.exception(timeout=wait)
        return True
    except TimeoutError:
        return False


def _log_checkpoint(kube: client.ApiClient) -> int:
    backup = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "pingcap.com", "v1alpha1", NAMESPACE, "backups", LOG_BACKUP)
    return int(backup["status"]["logCheckpointTs"])


def _gc_safe_point_ms(db: pymysql.Connection) -> int:
    from datetime import datetime
    text = query(db, "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_safe_point'")[1][0][0]
    return int(datetime.strptime(text, "%Y%m%d-%H:%M:%S.%f %z").timestamp() * 1000)


def test_admin_checksum_takes_the_tables_bytes_over_the_scan_rate(sql_sandbox, connect, in_thread):
    db, reader = connect(), connect()
    size = _table_bytes(db, "shop", "orders")
    assert size > 0
    sql_sandbox.set_config(scan_rate=size / 20)  # a 20 s scan
    try:
        checksum = _start(sql_sandbox, in_thread, lambda: query(reader, "ADMIN CHECKSUM TABLE shop.orders")[1])
        assert 20 <= _seconds_until_done(sql_sandbox, checksum) <= 22
        ((_, _, _, _, total_bytes),) = checksum.result()
        assert total_bytes >= size  # the workload may have added a row since DATA_LENGTH was read

        # The workload has added rows during that scan's 20 s: size the next one from the table as it is now.
        sql_sandbox.set_config(scan_rate=_table_bytes(db, "shop", "orders") / 20)
        count = _start(sql_sandbox, in_thread, lambda: query(reader, "SELECT COUNT(*) FROM shop.orders")[1])
        assert 20 <= _seconds_until_done(sql_sandbox, count) <= 22, "a full-table COUNT(*) reads every byte too"
        assert count.result()[0][0] > 0
    finally:
        sql_sandbox.set_config(scan_rate=0)


def test_the_log_checkpoint_moves_at_the_flush_interval_not_now(sql_sandbox, kube):
    sql_sandbox.set_config(checkpoint_interval=9)  # TiKV's max-flush-interval, 3 min, scaled
    try:
        sql_sandbox.advance(10)  # the sleep under the old interval ends, a flush, then 9 s until the next
        first = _log_checkpoint(kube)
        sql_sandbox.advance(5)
        now_ms = int(sql_sandbox.clock()["time"] * 1000)
        assert _log_checkpoint(kube) == first, "the checkpoint moved between two flushes"
        assert now_ms - (first >> LOGICAL_BITS) >= 5000, "the checkpoint is not behind now"
        sql_sandbox.advance(9)
        assert _log_checkpoint(kube) > first
    finally:
        sql_sandbox.set_config(checkpoint_interval=0.3)
        sql_sandbox.advance(1)


def test_a_pinned_log_checkpoint_holds_the_gc_safe_point(sql_sandbox, connect, kube):
    db = connect()
    sql_sandbox.set_faults(pin_checkpoint=f"{NAMESPACE}/{SOURCE}")
    try:
        sql_sandbox.advance(2)
        pinned = _log_checkpoint(kube)
        rows_before = query(db, "SELECT COUNT(*) FROM shop.orders")[1][0][0]
        sql_sandbox.set_config(gc_life_time=5)
        sql_sandbox.advance(30)
        # Writes go on and are flushed, the checkpoint stays: a long-open transaction holds TiKV's resolved ts.
        assert query(db, "SELECT COUNT(*) FROM shop.orders")[1][0][0] > rows_before
        assert _log_checkpoint(kube) == pinned
        # The log backup's service safe point holds the GC at the checkpoint, 30 s behind now with a 5 s
        # life time: the source stays readable there.
        safe_ms = _gc_safe_point_ms(db)
        assert safe_ms <= pinned >> LOGICAL_BITS
        assert int(sql_sandbox.clock()["time"] * 1000) - safe_ms > 25_000
        assert query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({pinned})")[1][0][0] > 0
    finally:
        sql_sandbox.set_faults(pin_checkpoint=None)
    # The transaction ends: the checkpoint catches up, the GC follows, and the old time is gone.
    sql_sandbox.advance(2)
    assert _log_checkpoint(kube) > pinned
    with pytest.raises(pymysql.MySQLError) as err:
        query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({pinned})")
    assert err.value.args[0] == 9006
    assert "GC life time is shorter than transaction duration" in err.value.args[1]


def test_the_gc_overtakes_a_checksum_that_outlives_the_life_time(sql_sandbox, connect, in_thread):
    db, reader = connect(), connect()
    size = _table_bytes(db, "shop", "orders")
    sql_sandbox.set_config(gc_life_time=10, scan_rate=size / 60)  # a 60 s scan, 10 s of history kept
    try:
        at = query(db, "SELECT TIDB_CURRENT_TSO()")[1][0][0]
        query(reader, f"SET @@tidb_snapshot = '{at}'")
        checksum = _start(sql_sandbox, in_thread, lambda: query(reader, "ADMIN CHECKSUM TABLE shop.orders"))
        sql_sandbox.advance(61)
        with pytest.raises(pymysql.MySQLError) as err:
            checksum.result(timeout=30)
        code, message = err.value.args
        assert code == 9006
        assert message.startswith("GC life time is shorter than transaction duration, transaction starts at ")
    finally:
        sql_sandbox.set_config(scan_rate=0, gc_life_time=600)
