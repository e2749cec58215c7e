"""The SQL endpoints' pieces without a server: crc64, checksums, read timestamps, parsing, catalog, settings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from mysql_mimic.errors import MysqlError
from tidb_sandbox.data.mvcc import Change, ClusterData
from tidb_sandbox.data.schema import Column, TableDef
from tidb_sandbox.data.tso import TsoAllocator, dt_to_tso
from tidb_sandbox.data.workload import Workload
from tidb_sandbox.operator.context import SimConfig
from tidb_sandbox.sql import crc64, rowsql
from tidb_sandbox.sql.catalog import Catalog
from tidb_sandbox.sql.checksum import row_key, table_checksum
from tidb_sandbox.sql.config import SqlConfig, update_settings
from tidb_sandbox.sql.errors import go_time
from tidb_sandbox.sql.parsing import (
    admin_checksum_tables,
    parse_statement,
    select_item_texts,
    split_as_of,
    statement_text,
)
from tidb_sandbox.sql.readts import ReadTimes, snapshot_value_ts


@pytest.mark.parametrize("data,expected", [
    (b"", 0),
    (b"123456789", 0x995DC9BBDF1939FA),  # CRC-64/XZ check value = Go's crc64.Checksum(.., MakeTable(ECMA))
    (b"a", 0x330284772E652B05),
    (b"The quick brown fox jumps over the lazy dog", 0x5B5EB8C2E54AA1C4),
])
def test_crc64_ecma_known_vectors(data: bytes, expected: int) -> None:
    assert crc64.checksum(data) == expected


def test_crc64_update_continues_a_checksum() -> None:
    assert crc64.update(crc64.checksum(b"12345"), b"6789") == crc64.checksum(b"123456789")


def test_checksum_is_order_free_and_sees_one_changed_row() -> None:
    rows = {f"shop/orders/{i:010d}": {"id": i, "amount": i * 1.5} for i in range(1, 50)}
    same = dict(reversed(list(rows.items())))
    assert table_checksum(rows, 110) == table_checksum(same, 110)
    changed = {**rows, "shop/orders/0000000007": {"id": 7, "amount": 0.01}}
    assert table_checksum(changed, 110).crc64_xor != table_checksum(rows, 110).crc64_xor
    assert table_checksum(changed, 110).total_kvs == table_checksum(rows, 110).total_kvs == 49
    assert table_checksum({}, 110).crc64_xor == 0


def test_checksum_folds_the_table_id_into_each_key_as_tidb_row_keys_do() -> None:
    rows = {f"shop/orders/{i:010d}": {"id": i, "amount": i * 1.5} for i in range(1, 20)}
    kept, moved = table_checksum(rows, 110), table_checksum(rows, 131)
    assert moved.crc64_xor != kept.crc64_xor
    assert (moved.total_kvs, moved.total_bytes) == (kept.total_kvs, kept.total_bytes)
    # tablecodec.EncodeRowKeyWithHandle(110, 7): 't', comparable int64 110, '_r', comparable int64 7.
    assert row_key(110, "shop/orders/0000000007") == (
        b"t\x80\x00\x00\x00\x00\x00\x00\x6e_r\x80\x00\x00\x00\x00\x00\x00\x07")


def test_go_time_prints_like_go() -> None:
    at = datetime(2026, 11, 30, 10, 0, 0, 120000, tzinfo=UTC)
    assert go_time(dt_to_tso(at)) == "2026-11-30 10:00:00.12 +0000 UTC"
    assert go_time(dt_to_tso(at.replace(microsecond=0))) == "2026-11-30 10:00:00 +0000 UTC"


def test_snapshot_values_are_tsos_or_datetimes() -> None:
    assert snapshot_value_ts("", UTC) == 0
    assert snapshot_value_ts("436568622965194754", UTC) == 436568622965194754
    at = datetime(2024, 5, 1, 12, 30, 1, 250000, tzinfo=UTC)
    assert snapshot_value_ts("2024-05-01 12:30:01.25", UTC) == dt_to_tso(at)
    plus8 = timezone(timedelta(hours=8))
    assert snapshot_value_ts("2024-05-01 20:30:01.25", plus8) == dt_to_tso(at)
    with pytest.raises(MysqlError) as err:
        snapshot_value_ts("yesterday", UTC)
    assert err.value.code == 1292 and err.value.msg == "Incorrect timestamp value: 'yesterday'"


def test_safe_point_is_now_minus_gc_life_time() -> None:
    config = SqlConfig(gc_life_time=60)
    times = ReadTimes(TsoAllocator(), config)
    now = times.now()
    assert times.safe_point(now) == ((now >> 18) - 60_000) << 18
    old = now - (61_000 << 18)
    with pytest.raises(MysqlError) as too_old:
        times.check_snapshot(old)
    assert too_old.value.code == 8055 and too_old.value.msg.startswith("snapshot is older than GC safe point ")
    with pytest.raises(MysqlError) as early:
        times.check_read(old)
    assert early.value.code == 9006 and "GC life time is shorter than transaction duration" in early.value.msg
    with pytest.raises(MysqlError) as future:
        times.check_read(now + (60_000 << 18))
    assert future.value.msg == "cannot set read timestamp to a future time"
    times.check_read(now - (1_000 << 18))


def test_admin_checksum_table_names() -> None:
    assert admin_checksum_tables("ADMIN CHECKSUM TABLE shop.orders, `crm`.`events`,t") == [
        ("shop", "orders"), ("crm", "events"), (None, "t")]
    assert admin_checksum_tables("admin checksum table shop . orders") == [("shop", "orders")]
    assert admin_checksum_tables("ADMIN SHOW DDL JOBS") is None
    with pytest.raises(MysqlError) as err:
        admin_checksum_tables("ADMIN CHECKSUM TABLE shop.orders, 1+1")
    assert err.value.code == 1064


def test_as_of_is_taken_out_of_the_statement() -> None:
    rest, as_of = split_as_of("SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO(42) WHERE 1")
    assert rest == "SELECT COUNT(*) FROM shop.orders  WHERE 1" and as_of.text == "TIDB_PARSE_TSO(42)"
    rest, as_of = split_as_of("select count(*) from t as of timestamp '2024-05-01 10:00:00'")
    assert rest == "select count(*) from t" and as_of.text == "'2024-05-01 10:00:00'"
    assert split_as_of("SELECT 'as of timestamp x'") == ("SELECT 'as of timestamp x'", None)


def test_statement_text_drops_leading_comments_and_the_final_semicolon() -> None:
    assert statement_text("/* app=x */ SELECT 1 ;") == "SELECT 1"
    assert statement_text("-- note\n# more\nSHOW DATABASES") == "SHOW DATABASES"
    assert statement_text("SELECT /*+ hint */ 1") == "SELECT /*+ hint */ 1"


def test_statements_and_their_errors() -> None:
    assert parse_statement("SELECT 1").key == "select"
    for text, code in (("garbage here", 1064), ("SELECT FROM", 1064), ("INSERT INTO t VALUES (1)", 1105),
                       ("FLUSH TABLES", 1105)):
        with pytest.raises(MysqlError) as err:
            parse_statement(text)
        assert err.value.code == code, text
    with pytest.raises(MysqlError) as err:
        parse_statement("garbage here")
    assert err.value.msg.endswith('to use line 1 column 7 near "garbage here" ')
    assert select_item_texts("SELECT version(), @@tidb_snapshot AS s, 'a,b' FROM x") == [
        "version()", "@@tidb_snapshot AS s", "'a,b'"]


def test_catalog_reads_definitions_at_a_tso() -> None:
    data, alloc = ClusterData(), TsoAllocator()
    empty = Catalog(data, alloc.next())
    assert empty.schema_names() == ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "mysql", "test"]
    workload = Workload(data, alloc, random.Random(4), inserts_per_s=30, updates_per_s=0, deletes_per_s=0)
    workload.tick(1.0)
    catalog = Catalog(data, alloc.next())
    assert {"shop", "crm"} <= set(catalog.schema_names()) and catalog.schema_names()[0] == "INFORMATION_SCHEMA"
    assert [t.name for t in catalog.user_tables("SHOP")] == ["customers", "orders"]
    orders = catalog.find_table("Shop", "ORDERS")
    assert orders is not None and all(k.startswith("shop/orders/") for k in catalog.rows(orders))
    assert Catalog(data, empty.ts).find_table("shop", "orders") is None
    data.apply([Change(alloc.next(), "shop/orders", None)])
    assert Catalog(data, alloc.next()).find_table("shop", "orders") is None


def test_settings_go_to_their_config_and_unknown_names_list_all() -> None:
    sim, sql = SimConfig(), SqlConfig()
    update_settings(sim, sql, {"gc_life_time": "5", "backup_duration": "2"})
    assert sql.gc_life_time == 5.0 and sim.backup_duration == 2.0
    with pytest.raises(ValueError) as err:
        update_settings(sim, sql, {"gc_life_time": "7", "nope": 1})
    assert "unknown setting 'nope'" in str(err.value)
    assert "gc_life_time" in str(err.value) and "backup_duration" in str(err.value)
    with pytest.raises(ValueError):
        update_settings(sim, sql, {"gc_life_time": "7", "backup_duration": "slow"})
    assert sql.gc_life_time == 5.0, "a bad value changes nothing"


def _one_row_table(row: dict) -> tuple[Catalog, object]:
    data = ClusterData(1)
    definition = TableDef("db", "t", 110, (Column("id", "bigint(20)"), Column("name", "varchar(16)"),
                                            Column("price", "decimal(10,2)")))
    data.apply([Change(1, definition.key, definition.definition()), Change(2, "db/t/0000000001", row)])
    catalog = Catalog(data, 3)
    return catalog, catalog.find_table("db", "t")


@pytest.mark.parametrize("select,expected", [
    ("SELECT CRC32(name) FROM t", [[3259397556]]),  # the MySQL manual's CRC32('MySQL')
    ("SELECT CONCAT_WS('|', name, NULL, price, ISNULL(NULL), ISNULL(name)) FROM t", [["MySQL|1.50|1|0"]]),
    ("SELECT CONCAT(name, NULL) FROM t", [[None]]),
    ("SELECT MD5(name), SHA2(name, 7) FROM t", [["62a004b95946bb97541afa471dcca73a", None]]),
    ("SELECT COUNT(*), BIT_XOR(id) FROM t WHERE id > 5", [[0, 0]]),  # BIT_XOR over no rows is 0, not NULL
])
def test_row_sql_functions_answer_as_mysql_does(select, expected):
    catalog, table = _one_row_table({"id": 1, "name": "MySQL", "price": 1.5})
    assert rowsql.select_rows(parse_statement(select), catalog, table, select_item_texts(select)).rows == expected
