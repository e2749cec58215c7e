"""DROP DATABASE and the GC safe point in mysql.tidb, through PyMySQL against the module's own sandbox.

The GC tests move the safe point for good (it never moves back, as in TiDB): they come last.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pymysql
from kubernetes import client
from tidb_sandbox.data.tso import dt_to_tso, tso_to_dt

from .conftest import NAMESPACE, SOURCE, TARGET, query, sandbox_now, sql_error, wait_for

SANDBOX_CLOCK = "manual"  # time passes only where a test advances it

GC_TIME = re.compile(r"^\d{8}-\d{2}:\d{2}:\d{2}\.\d{3} \+0000$")  # tikvutil.GCTimeFormat in UTC
TABLES = "shop.orders, shop.customers, crm.accounts, crm.events"


def _execute(db: pymysql.Connection, sql: str) -> tuple[int, int]:
    """(affected rows, warnings) of a statement without a result set."""
    with db.cursor() as cursor:
        affected = cursor.execute(sql)
        return affected, db._result.warning_count if db._result else 0


def _databases(db: pymysql.Connection) -> list[str]:
    return [r[0] for r in query(db, "SHOW DATABASES")[1]]


def _gc_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d-%H:%M:%S.%f %z")


def _mysql_tidb(db: pymysql.Connection) -> dict[str, str]:
    return dict(query(db, "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM mysql.tidb")[1])


# -- DROP DATABASE ------------------------------------------------------------------------------------
def test_a_dropped_database_disappears_now_and_stays_readable_at_older_tsos(sql_sandbox, connect):
    made = sql_sandbox.create_cluster("sql-drop", "drop1", workload={"inserts_per_s": 40, "updates_per_s": 10})
    db, other = connect(url=made["sql"]), connect(url=made["sql"])
    wait_for(lambda: _databases(db), lambda names: {"shop", "crm"} <= set(names), timeout=10)
    query(other, "USE shop")
    sql_sandbox.advance(0.01)  # below, TIDB_PARSE_TSO reads at `before`'s millisecond: the tables are older
    before = query(db, "SELECT TIDB_CURRENT_TSO()")[1][0][0]
    orders = query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({before})")[1][0][0]
    assert orders > 0

    assert _execute(db, "DROP DATABASE shop") == (0, 0)
    assert _databases(db) == ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "crm", "mysql", "test"]
    assert query(db, "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME = 'shop'")[1] == []
    assert query(db, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'shop'")[1] == [(0,)]
    assert sql_error(db, "SELECT COUNT(*) FROM shop.orders") == (1146, "Table 'shop.orders' doesn't exist")
    assert sql_error(db, "SHOW TABLES FROM shop") == (1049, "Unknown database 'shop'")
    assert sql_error(db, "USE shop") == (1049, "Unknown database 'shop'")
    assert query(other, "SELECT DATABASE()")[1] == [("shop",)], "only the dropping session leaves it"

    # Reads at an older TSO still see it, as of then (until the GC safe point passes that TSO).
    at = tso_to_dt(before)
    assert query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP '{at:%Y-%m-%d %H:%M:%S.%f}'")[1] == [
        (query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({before})")[1][0][0],)]
    query(db, f"SET @@tidb_snapshot = '{before}'")
    assert "shop" in _databases(db)
    assert query(db, "SELECT COUNT(*) FROM shop.orders")[1] == [(orders,)]
    assert query(db, "SHOW TABLES FROM shop")[1] == [("customers",), ("orders",)]
    # Writes are refused in a snapshot session, DDL too.
    assert sql_error(db, "DROP DATABASE crm") == (1105, "can not execute write statement when 'tidb_snapshot' is set")
    query(db, "SET @@tidb_snapshot = ''")
    assert "crm" in _databases(db)

    # The workload writes on to crm only: nothing of shop comes back.
    sql_sandbox.advance(0.6)
    rows = sql_sandbox.rows("sql-drop", "drop1")["rows"]
    assert not [k for k in rows if k.split("/")[0] == "shop"]
    assert len([k for k in rows if k.startswith("crm/")]) > 2

    # Dropping the session's current database leaves it without one (executeDropDatabase).
    query(other, "USE crm")
    assert _execute(other, "DROP DATABASE CRM") == (0, 0)
    assert query(other, "SELECT DATABASE()")[1] == [(None,)]
    assert sql_error(other, "SHOW TABLES") == (1046, "No database selected")
    sql_sandbox.advance(0.5)
    assert sql_sandbox.call("GET", "/clusters/sql-drop/drop1")["empty"] is True


def test_drop_database_errors_as_tidb_gives_them(connect):
    db = connect(TARGET)
    assert sql_error(db, "DROP DATABASE nodb") == (1008, "Can't drop database 'nodb'; database doesn't exist")
    assert _execute(db, "DROP DATABASE IF EXISTS nodb") == (0, 0)
    assert _execute(db, "drop schema if exists `nodb`;") == (0, 0)
    for name in ("mysql", "MySQL"):
        assert sql_error(db, f"DROP DATABASE {name}") == (1105, "Drop 'mysql' database is forbidden")
        assert sql_error(db, f"DROP DATABASE IF EXISTS {name}") == (1105, "Drop 'mysql' database is forbidden")
    for name in ("INFORMATION_SCHEMA", "information_schema", "PERFORMANCE_SCHEMA", "METRICS_SCHEMA"):
        assert sql_error(db, f"DROP DATABASE IF EXISTS {name}") == (
            1044, f"Access denied for user 'root'@'%' to database '{name}'")
    code, message = sql_error(db, "DROP DATABASE sys")
    assert code == 1105 and message.endswith("is not supported by the tidb-sandbox SQL endpoint")
    assert sql_error(db, "DROP TABLE shop.orders") == (1051, "Unknown table 'shop.orders'")
    assert sql_error(db, "DROP DATABASE")[0] == 1064
    assert _databases(db) == ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "mysql", "test"]


def test_drop_table_takes_only_the_named_tables_and_errors_as_tidb(sql_sandbox, connect):
    made = sql_sandbox.create_cluster("sql-drop", "droptable1", workload={"inserts_per_s": 40, "updates_per_s": 10})
    db = connect(url=made["sql"])
    wait_for(lambda: query(db, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA IN ('shop', "
                               "'crm')")[1][0][0], lambda n: n == 4, timeout=10)
    sql_sandbox.advance(0.01)
    before = query(db, "SELECT TIDB_CURRENT_TSO()")[1][0][0]
    customers = query(db, "SELECT COUNT(*) FROM shop.customers")[1][0][0]
    assert sql_error(db, "DROP TABLE shop.orders, shop.nothing, crm.none") == (
        1051, "Unknown table 'shop.nothing,crm.none'")
    assert query(db, "SELECT COUNT(*) FROM shop.orders")[1][0][0] >= 0, "a failed DROP TABLE drops nothing"
    query(db, "USE shop")
    assert _execute(db, "DROP TABLE IF EXISTS orders, nothing") == (0, 0)
    assert sql_error(db, "SELECT COUNT(*) FROM shop.orders") == (1146, "Table 'shop.orders' doesn't exist")
    assert query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({before})")[1][0][0] >= 0
    assert query(db, "SELECT COUNT(*) FROM shop.customers")[1][0][0] >= customers  # the other table stays
    assert "shop" in _databases(db)
    for statement, error in (("DROP TABLE mysql.user", 1105), ("DROP TABLE INFORMATION_SCHEMA.TABLES", 1044),
                             ("DROP TABLE", 1064)):
        assert sql_error(db, statement)[0] == error, statement


def _cr(kube, plural: str, name: str) -> dict:
    return client.CustomObjectsApi(kube).get_namespaced_custom_object("pingcap.com", "v1alpha1", NAMESPACE,
                                                                      plural, name)


def _run(kube, plural: str, body: dict) -> dict:
    client.CustomObjectsApi(kube).create_namespaced_custom_object("pingcap.com", "v1alpha1", NAMESPACE, plural, body)
    done = wait_for(lambda: _cr(kube, plural, body["metadata"]["name"]),
                    lambda o: (o.get("status") or {}).get("phase") in ("Complete", "Failed"))
    assert done["status"]["phase"] == "Complete", done["status"]
    return done


def test_a_restore_into_a_cluster_emptied_by_drop_database(sql_sandbox, kube, connect):
    storage = {"s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket",
                      "prefix": "demo1/drop-snapshot"}}
    backup = _run(kube, "backups", {"metadata": {"name": "drop-snapshot"},
                                    "spec": {"backupType": "full", "br": {"cluster": SOURCE}, **storage}})
    commit_ts = int(backup["status"]["commitTs"])
    restore = {"metadata": {"name": "drop-restore-1"}, "spec": {"br": {"cluster": TARGET}, **storage}}
    _run(kube, "restores", restore)
    source_then = sql_sandbox.rows(NAMESPACE, SOURCE, commit_ts)["digest"]
    assert sql_sandbox.rows(NAMESPACE, TARGET)["digest"] == source_then

    target = connect(TARGET)
    restored_at = query(target, "SELECT TIDB_CURRENT_TSO()")[1][0][0]
    checksums = query(target, f"ADMIN CHECKSUM TABLE {TABLES}")[1]
    for database in ("shop", "crm", "test"):
        _execute(target, f"DROP DATABASE {database}")
    assert _databases(target) == ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "mysql"]
    assert sql_sandbox.call("GET", f"/clusters/{NAMESPACE}/{TARGET}")["empty"] is True
    query(target, f"SET @@tidb_snapshot = '{restored_at}'")
    assert query(target, f"ADMIN CHECKSUM TABLE {TABLES}")[1] == checksums, "the dropped data as of then"
    query(target, "SET @@tidb_snapshot = ''")

    # BR's fresh-cluster check passes now; the restore loads at a later TSO than the deletions. But the
    # target has allocated IDs past the source's (the first restore, the DROP jobs): BR's prealloc_table_id
    # gives every table a new ID, so ADMIN CHECKSUM's crc64 differs from the source's at the restore point
    # for the same rows, while Total_kvs and Total_bytes stay equal.
    source = connect()
    at_t = f"SET @@tidb_snapshot = '{commit_ts}'"
    query(source, at_t)
    source_ids = _table_ids(source)
    source_sums = query(source, f"ADMIN CHECKSUM TABLE {TABLES}")[1]
    assert checksums == source_sums and _table_ids(target) == {}, "the first restore kept the IDs"
    _run(kube, "restores", {**restore, "metadata": {"name": "drop-restore-2"}})
    assert _user_rows(sql_sandbox.rows(NAMESPACE, TARGET)["rows"]) == _user_rows(
        sql_sandbox.rows(NAMESPACE, SOURCE, commit_ts)["rows"]), "the same rows"
    restored_ids = _table_ids(target)
    assert restored_ids.keys() == source_ids.keys()
    assert min(restored_ids.values()) > max(source_ids.values()), (restored_ids, source_ids)
    restored_sums = query(target, f"ADMIN CHECKSUM TABLE {TABLES}")[1]
    for (db, table, crc, kvs, size), restored in zip(source_sums, restored_sums, strict=True):
        assert restored[:2] == (db, table) and restored[3:] == (kvs, size)
        assert restored[2] != crc, f"{db}.{table}: crc64 must follow the new table ID"
    assert {"shop", "crm"} <= set(_databases(target))


def _table_ids(db: pymysql.Connection) -> dict[str, int]:
    rows = query(db, "SELECT TABLE_SCHEMA, TABLE_NAME, TIDB_TABLE_ID FROM INFORMATION_SCHEMA.TABLES")[1]
    return {f"{schema}.{table}": int(table_id) for schema, table, table_id in rows}


def _user_rows(records: dict[str, Any]) -> dict[str, Any]:
    """Row records only (`db/table/handle`): table definitions carry the ID, which a restore may change."""
    return {key: value for key, value in records.items() if key.count("/") == 2}


# -- mysql.tidb and the GC safe point -----------------------------------------------------------------
def test_mysql_tidb_holds_the_gc_rows_in_tidbs_format(sql_sandbox, connect):
    db = connect()
    names, rows = query(db, "SELECT * FROM mysql.tidb")
    assert names == ["VARIABLE_NAME", "VARIABLE_VALUE", "COMMENT"]
    values = {name: value for name, value, _ in rows}
    assert {"bootstrapped", "tikv_gc_leader_uuid", "tikv_gc_leader_desc", "tikv_gc_leader_lease", "tikv_gc_enable",
            "tikv_gc_run_interval", "tikv_gc_life_time", "tikv_gc_last_run_time", "tikv_gc_safe_point"} <= set(values)
    assert values["tikv_gc_life_time"] == "10m0s" and values["tikv_gc_enable"] == "true"
    assert values["tikv_gc_run_interval"] == "0s"  # the sandbox's default: the GC runs continuously
    for key in ("tikv_gc_safe_point", "tikv_gc_last_run_time", "tikv_gc_leader_lease"):
        assert GC_TIME.match(values[key]), (key, values[key])
    safe, last_run = _gc_time(values["tikv_gc_safe_point"]), _gc_time(values["tikv_gc_last_run_time"])
    assert last_run - safe == timedelta(minutes=10)
    assert abs(sandbox_now(sql_sandbox) - timedelta(minutes=10) - safe) < timedelta(seconds=5)
    assert values["tikv_gc_leader_desc"].startswith("host:demo1-tidb-0, pid:1, start at ")
    assert dict((n, c) for n, _, c in rows)["tikv_gc_safe_point"] == (
        "All versions after safe point can be accessed. (DO NOT EDIT)")

    assert query(db, "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = "
                     "'tikv_gc_life_time'") == (["VARIABLE_NAME", "VARIABLE_VALUE"], [("tikv_gc_life_time", "10m0s")])
    names, rows = query(db, "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME='tikv_gc_safe_point'")
    assert names == ["VARIABLE_VALUE"] and len(rows) == 1 and GC_TIME.match(rows[0][0])
    names, rows = query(db, "select variable_name, variable_value from mysql.tidb where variable_name in "
                            "('tikv_gc_safe_point', \"tikv_gc_life_time\") order by variable_name")
    assert names == ["variable_name", "variable_value"]
    assert [r[0] for r in rows] == ["tikv_gc_life_time", "tikv_gc_safe_point"]
    query(db, "USE mysql")
    assert query(db, "SELECT VARIABLE_VALUE FROM tidb WHERE VARIABLE_NAME = 'tikv_gc_enable'")[1] == [("true",)]
    for statement in ("SELECT @@GLOBAL.tidb_gc_life_time", "SELECT @@tidb_gc_life_time"):
        assert query(db, statement)[1] == [("10m0s",)], statement
    assert query(db, "SELECT @@global.tidb_gc_run_interval")[1] == [("0s",)]
    code, message = sql_error(db, "SELECT VARIABLE_VALUE FROM mysql.tidb AS OF TIMESTAMP NOW() - INTERVAL 1 SECOND")
    assert code == 1105 and "mysql.tidb at a past TSO" in message
    code, _ = sql_error(db, "SELECT COUNT(*) FROM mysql.user")
    assert code == 1105


def _read_around(db: pymysql.Connection, safe: datetime, exact: bool = True) -> None:
    """Reads at the safe point + 1 s succeed; at - 1 s they are refused, naming that safe point (`exact`;
    a continuous GC has moved it on by the milliseconds since)."""
    over, under = safe + timedelta(seconds=1), safe - timedelta(seconds=1)
    assert query(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP '{over:%Y-%m-%d %H:%M:%S.%f}'")[1][0][0] > 0
    query(db, f"SET @@tidb_snapshot = '{dt_to_tso(over)}'")
    query(db, "SET @@tidb_snapshot = ''")
    shown = f"{safe:%Y-%m-%d %H:%M:%S}" + (f".{safe.microsecond // 1000:03d}".rstrip("0").rstrip("."))
    code, message = sql_error(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP '{under:%Y-%m-%d %H:%M:%S.%f}'")
    assert code == 9006 and (not exact or message.endswith(f", GC safe point is {shown} +0000 UTC")), message
    code, message = sql_error(db, f"SET @@tidb_snapshot = '{dt_to_tso(under)}'")
    assert code == 8055 and (not exact or message == f"snapshot is older than GC safe point {shown} +0000 UTC")


def test_the_safe_point_in_mysql_tidb_is_the_one_reads_are_checked_against(sql_sandbox, connect):
    db = connect()
    _read_around(db, _gc_time(_mysql_tidb(db)["tikv_gc_safe_point"]), exact=False)  # continuous GC
    assert sql_sandbox.set_config(gc_run_interval=3600)["gc_run_interval"] == 3600.0
    try:
        values = _mysql_tidb(db)
        assert values["tikv_gc_run_interval"] == "1h0m0s"
        safe = _gc_time(values["tikv_gc_safe_point"])
        sql_sandbox.advance(1.2)  # the worker does not run again within the hour: the safe point stays put
        assert _mysql_tidb(db)["tikv_gc_safe_point"] == values["tikv_gc_safe_point"]
        _read_around(db, safe)
    finally:
        sql_sandbox.set_config(gc_run_interval=0)


def test_the_safe_point_moves_in_steps_and_never_back(sql_sandbox, connect):
    db = connect()
    sql_sandbox.set_config(gc_life_time=1, gc_run_interval=1)
    try:
        sql_sandbox.advance(2.2)  # the first run under these settings: due after 1 s, on the next tick
        seen: dict[str, str] = {}
        for _ in range(35):  # 3.5 s, read every 0.1 s
            values = _mysql_tidb(db)
            now = sandbox_now(sql_sandbox)
            safe, last_run = _gc_time(values["tikv_gc_safe_point"]), _gc_time(values["tikv_gc_last_run_time"])
            assert last_run - safe == timedelta(seconds=1)
            assert now - timedelta(seconds=1) - safe < timedelta(seconds=1.5), "lags by at most the interval"
            seen[values["tikv_gc_last_run_time"]] = values["tikv_gc_safe_point"]
            sql_sandbox.advance(0.1)
        runs = sorted(_gc_time(t) for t in seen)
        assert len(runs) >= 3
        assert all((b - a).total_seconds() % 1 == 0 for a, b in zip(runs, runs[1:], strict=False))
        latest = max(seen.values())
        sql_sandbox.set_config(gc_life_time=600)  # a longer life time does not bring history back
        values = _mysql_tidb(db)
        assert values["tikv_gc_life_time"] == "10m0s" and values["tikv_gc_safe_point"] >= latest
        _read_around(db, _gc_time(values["tikv_gc_safe_point"]))
    finally:
        sql_sandbox.set_config(gc_life_time=600, gc_run_interval=0)
