"""Every simulated cluster answers SQL over the MySQL protocol like TiDB: driven here through PyMySQL."""

from __future__ import annotations

import base64
import zlib
from datetime import timedelta

import pymysql
import pytest
from kubernetes import client
from tidb_sandbox.client import sql_params
from tidb_sandbox.data.tso import tso_to_dt

from .conftest import NAMESPACE, SOURCE, TARGET, query, sql_error, wait_for

SANDBOX_CLOCK = "manual"  # time passes only where a test advances it

TABLES = "shop.orders, shop.customers, crm.accounts, crm.events"
SYSTEM = ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "mysql"]


def rows_of(sandbox, cluster: str, prefix: str, as_of: int | None = None) -> int:
    rows = sandbox.rows(NAMESPACE, cluster, as_of)["rows"]
    return sum(1 for key in rows if key.startswith(prefix))


# -- credentials --------------------------------------------------------------------------------------
def test_the_password_is_the_one_in_the_clusters_secret(sql_sandbox, kube, connect):
    secret = client.CoreV1Api(kube).read_namespaced_secret("backup-demo1-tidb-secret", NAMESPACE)
    password = base64.b64decode(secret.data["password"]).decode()
    url = sql_sandbox.env["TIDB_SANDBOX_SQL_TEST1_DEMO1"]
    assert url.startswith(f"mysql://root:{password}@127.0.0.1:")
    assert sql_sandbox.env["TIDB_SANDBOX_SQL_TEST1_DEMO1_RESTORE"].startswith("mysql://root:")
    env_file = (sql_sandbox.workdir / "sandbox.env").read_text()
    assert f"TIDB_SANDBOX_SQL_TEST1_DEMO1={url}" in env_file.splitlines()
    assert query(connect(user="root", password=password), "SELECT 1") == (["1"], [(1,)])


def test_a_wrong_password_or_user_is_refused(sql_sandbox, connect):
    right = sql_params(sql_sandbox.sql_url(NAMESPACE, SOURCE))["password"]
    for user, password in (("root", "wrong"), ("admin", right)):
        with pytest.raises(pymysql.err.OperationalError) as err:
            connect(user=user, password=password)
        assert err.value.args == (1045, f"Access denied for user '{user}'@'127.0.0.1' (using password: YES)")
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(password="")
    assert err.value.args == (1045, "Access denied for user 'root'@'127.0.0.1' (using password: NO)")


def test_a_changed_secret_changes_the_password(sql_sandbox, kube, connect):
    core = client.CoreV1Api(kube)
    name = "backup-demo1-restore-tidb-secret"
    old = core.read_namespaced_secret(name, NAMESPACE).data["password"]
    core.patch_namespaced_secret(name, NAMESPACE, {"data": {"password": base64.b64encode(b"n3w-pass").decode()}})
    try:
        assert query(connect(TARGET, password="n3w-pass"), "SELECT 1")[1] == [(1,)]
        with pytest.raises(pymysql.err.OperationalError):
            connect(TARGET, password=base64.b64decode(old).decode())
    finally:
        core.patch_namespaced_secret(name, NAMESPACE, {"data": {"password": old}})


# -- who it is -------------------------------------------------------------------------------------------
def test_version_and_tidb_version(connect):
    db = connect()
    assert query(db, "SELECT VERSION()") == (["VERSION()"], [("8.0.11-TiDB-v8.5.2",)])
    names, [(text,)] = query(db, "select tidb_version()")
    assert names == ["tidb_version()"]
    lines = text.splitlines()
    assert lines[0] == "Release Version: v8.5.2" and "Edition: Community" in lines and lines[-1] == "Store: tikv"
    assert db.get_server_info() == "8.0.11-TiDB-v8.5.2"
    assert query(db, "SELECT @@version_comment LIMIT 1")[1][0][0].startswith("TiDB Server")
    assert query(db, "/* app */ SELECT 1 FROM DUAL") == (["1"], [(1,)])


def test_current_tso_comes_from_the_sandboxs_pd(sql_sandbox, connect):
    before = sql_sandbox.tso()
    names, [(tso,)] = query(connect(), "SELECT TIDB_CURRENT_TSO()")
    assert names == ["TIDB_CURRENT_TSO()"] and before < tso < sql_sandbox.tso()
    names, [(parsed,)] = query(connect(), f"SELECT TIDB_PARSE_TSO({tso})")
    assert parsed == tso_to_dt(tso).replace(tzinfo=None)


# -- databases and tables ------------------------------------------------------------------------------
def test_show_databases_of_the_source_and_of_an_empty_cluster(connect):
    names, rows = query(connect(), "SHOW DATABASES")
    assert names == ["Database"]
    assert [r[0] for r in rows] == ["INFORMATION_SCHEMA", "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "crm", "mysql",
                                    "shop", "test"]
    assert [r[0] for r in query(connect(TARGET), "SHOW DATABASES")[1]] == [*SYSTEM, "test"]
    assert query(connect(), "SHOW DATABASES LIKE 's%'")[1] == [("shop",)]


def test_show_tables(connect):
    db = connect()
    assert query(db, "SHOW TABLES FROM shop") == (["Tables_in_shop"], [("customers",), ("orders",)])
    assert query(db, "SHOW FULL TABLES IN crm") == (["Tables_in_crm", "Table_type"],
                                                    [("accounts", "BASE TABLE"), ("events", "BASE TABLE")])
    assert sql_error(db, "SHOW TABLES") == (1046, "No database selected")
    query(db, "USE crm")
    assert query(db, "SHOW TABLES") == (["Tables_in_crm"], [("accounts",), ("events",)])
    assert query(connect(TARGET), "SHOW TABLES FROM test") == (["Tables_in_test"], [])


def test_information_schema(connect):
    db = connect()
    names, rows = query(db, "SELECT * FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME IN ('shop', 'crm') "
                            "ORDER BY SCHEMA_NAME")
    assert names[:4] == ["CATALOG_NAME", "SCHEMA_NAME", "DEFAULT_CHARACTER_SET_NAME", "DEFAULT_COLLATION_NAME"]
    assert [r[:4] for r in rows] == [("def", "crm", "utf8mb4", "utf8mb4_bin"),
                                     ("def", "shop", "utf8mb4", "utf8mb4_bin")]
    names, rows = query(db, "SELECT * FROM information_schema.tables WHERE table_schema = 'shop'")
    assert {"TABLE_SCHEMA", "TABLE_NAME", "TABLE_TYPE", "TABLE_ROWS", "DATA_LENGTH", "CREATE_TIME"} <= set(names)
    assert [r[names.index("TABLE_TYPE")] for r in rows] == ["BASE TABLE", "BASE TABLE"]
    query(db, f"SET @@tidb_snapshot = '{query(db, 'SELECT TIDB_CURRENT_TSO()')[1][0][0]}'")
    names, rows = query(db, "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH FROM INFORMATION_SCHEMA.TABLES "
                            "WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME LIKE 'ord%'")
    assert names == ["TABLE_NAME", "TABLE_ROWS", "DATA_LENGTH"]
    [(table, table_rows, data_length)] = rows
    assert table == "orders" and table_rows == query(db, "SELECT COUNT(*) FROM shop.orders")[1][0][0] > 0
    assert data_length == query(db, "ADMIN CHECKSUM TABLE shop.orders")[1][0][4]
    assert query(db, "SELECT COUNT(*) FROM information_schema.tables")[1] == [(4,)]
    assert sql_error(db, "SELECT nope FROM information_schema.tables") == (
        1054, "Unknown column 'nope' in 'field list'")


# -- reads at a TSO ----------------------------------------------------------------------------------------
def test_count_now_and_as_of_tidb_snapshot(sql_sandbox, connect):
    db = connect()
    tso = sql_sandbox.tso()
    expected = rows_of(sql_sandbox, SOURCE, "shop/orders/", tso)
    query(db, f"SET @@tidb_snapshot = '{tso}'")
    assert query(db, "SELECT @@tidb_snapshot")[1] == [(str(tso),)]
    sql_sandbox.advance(1.0)  # the workload writes on; the snapshot does not move
    assert query(db, "SELECT COUNT(*) FROM shop.orders") == (["COUNT(*)"], [(expected,)])
    assert query(db, "select count(1) as n from shop.orders") == (["n"], [(expected,)])
    query(db, "SET @@tidb_snapshot = ''")
    assert query(db, "SELECT @@tidb_snapshot")[1] == [("",)]
    assert query(db, "SELECT COUNT(*) FROM shop.orders")[1][0][0] > 0
    # A datetime is read in the session time zone (UTC here), to the millisecond.
    query(db, f"SET @@tidb_snapshot = '{tso_to_dt(tso).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}'")
    assert query(db, "SELECT COUNT(*) FROM shop.orders")[1] == [(rows_of(sql_sandbox, SOURCE, "shop/orders/",
                                                                          tso >> 18 << 18),)]


def test_select_as_of_timestamp(sql_sandbox, connect):
    db = connect()
    tso = sql_sandbox.tso()
    sql_sandbox.advance(0.5)
    at_ms = tso >> 18 << 18  # AS OF takes a datetime: TIDB_PARSE_TSO drops the logical part, as in TiDB
    expected = rows_of(sql_sandbox, SOURCE, "crm/events/", at_ms)
    assert query(db, f"SELECT COUNT(*) FROM crm.events AS OF TIMESTAMP TIDB_PARSE_TSO({tso})")[1] == [(expected,)]
    at = tso_to_dt(tso)
    assert query(db, f"SELECT COUNT(*) FROM crm.events AS OF TIMESTAMP '{at:%Y-%m-%d %H:%M:%S.%f}'")[1] == [(expected,)]
    # A datetime is read in the session time zone.
    query(db, "SET time_zone = '+08:00'")
    plus8 = at + timedelta(hours=8)
    assert query(db, f"SELECT COUNT(*) FROM crm.events AS OF TIMESTAMP '{plus8:%Y-%m-%d %H:%M:%S.%f}'")[1] == [
        (expected,)]
    assert query(db, "SELECT COUNT(*) FROM crm.events AS OF TIMESTAMP NOW() - INTERVAL 1 SECOND")[1][0][0] >= 0


def test_reads_below_the_gc_safe_point_are_refused(sql_sandbox, connect):
    db = connect()
    assert query(db, "SELECT @@tidb_gc_life_time")[1] == [("10m0s",)]
    # The seeded history is hours old: beyond the default 10 minutes.
    code, message = sql_error(db, "SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP NOW() - INTERVAL 1 HOUR")
    assert code == 9006 and message.startswith("GC life time is shorter than transaction duration, transaction "
                                               "starts at ") and ", GC safe point is " in message
    tso = sql_sandbox.tso()
    assert sql_sandbox.set_config(gc_life_time=1)["gc_life_time"] == 1.0
    try:
        assert query(db, "SELECT @@global.tidb_gc_life_time")[1] == [("1s",)]
        sql_sandbox.advance(1.5)
        code, message = sql_error(db, f"SET @@tidb_snapshot = '{tso}'")
        assert code == 8055 and message.startswith("snapshot is older than GC safe point ")
        assert message.endswith(" +0000 UTC")
        assert query(db, "SELECT @@tidb_snapshot")[1] == [("",)], "a refused snapshot is not set"
        code, _ = sql_error(db, f"SELECT COUNT(*) FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({tso})")
        assert code == 9006
    finally:
        sql_sandbox.set_config(gc_life_time=600)
    code, message = sql_error(db, f"SET @@tidb_snapshot = '{sql_sandbox.tso() + (3600_000 << 18)}'")
    assert (code, message) == (1105, "cannot set read timestamp to a future time")


# -- checksums and restores ------------------------------------------------------------------------------
def _cr(kube, plural: str, name: str) -> dict:
    return client.CustomObjectsApi(kube).get_namespaced_custom_object("pingcap.com", "v1alpha1", NAMESPACE,
                                                                      plural, name)


def test_checksums_equal_after_a_restore_and_differ_after_one_changed_row(sql_sandbox, kube, connect):
    crs = client.CustomObjectsApi(kube)
    storage = {"s3": {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket",
                      "prefix": "demo1/sql-snapshot"}}
    crs.create_namespaced_custom_object("pingcap.com", "v1alpha1", NAMESPACE, "backups", {
        "metadata": {"name": "sql-snapshot"}, "spec": {"backupType": "full", "br": {"cluster": SOURCE}, **storage}})
    backup = wait_for(lambda: _cr(kube, "backups", "sql-snapshot"),
                      lambda o: (o.get("status") or {}).get("phase") in ("Complete", "Failed"))
    assert backup["status"]["phase"] == "Complete", backup["status"]
    commit_ts = int(backup["status"]["commitTs"])
    crs.create_namespaced_custom_object("pingcap.com", "v1alpha1", NAMESPACE, "restores", {
        "metadata": {"name": "sql-restore"}, "spec": {"br": {"cluster": TARGET}, **storage}})
    restore = wait_for(lambda: _cr(kube, "restores", "sql-restore"),
                       lambda o: (o.get("status") or {}).get("phase") in ("Complete", "Failed"))
    assert restore["status"]["phase"] == "Complete", restore["status"]

    source, target = connect(), connect(TARGET)
    query(source, f"SET @@tidb_snapshot = '{commit_ts}'")
    names, at_backup = query(source, f"ADMIN CHECKSUM TABLE {TABLES}")
    assert names == ["Db_name", "Table_name", "Checksum_crc64_xor", "Total_kvs", "Total_bytes"]
    assert [r[:2] for r in at_backup] == [("shop", "orders"), ("shop", "customers"), ("crm", "accounts"),
                                          ("crm", "events")]
    assert all(r[2] > 0 and r[3] > 0 and r[4] > 0 for r in at_backup)
    restored = query(target, f"ADMIN CHECKSUM TABLE {TABLES}")[1]
    assert restored == at_backup
    # The restored cluster has the same databases and tables, and the same rows as the source then.
    assert query(target, "SHOW DATABASES") == query(source, "SHOW DATABASES")
    assert query(target, "SHOW TABLES FROM crm") == query(source, "SHOW TABLES FROM crm")
    assert sql_sandbox.rows(NAMESPACE, TARGET)["digest"] == sql_sandbox.rows(NAMESPACE, SOURCE, commit_ts)["digest"]
    # The source has moved on since: its checksum now is not the one at the backup.
    query(source, "SET @@tidb_snapshot = ''")
    assert query(source, f"ADMIN CHECKSUM TABLE {TABLES}")[1] != at_backup

    before_change = sql_sandbox.tso()
    row_id = int(next(k for k in sql_sandbox.rows(NAMESPACE, TARGET)["rows"] if k.startswith("shop/orders/"))
                 .rsplit("/", 1)[1])
    sql_sandbox.write_row(NAMESPACE, TARGET, "shop", "orders", row_id, {"amount": 0.01})
    changed = query(target, f"ADMIN CHECKSUM TABLE {TABLES}")[1]
    assert changed[0][2] != at_backup[0][2] and changed[0][3] == at_backup[0][3]
    assert changed[1:] == at_backup[1:]
    query(target, f"SET @@tidb_snapshot = '{before_change}'")
    assert query(target, "ADMIN CHECKSUM TABLE shop.orders")[1] == [at_backup[0]]


def test_checksum_errors(connect):
    db = connect()
    assert sql_error(db, "ADMIN CHECKSUM TABLE shop.nope") == (1146, "Table 'shop.nope' doesn't exist")
    assert sql_error(db, "ADMIN CHECKSUM TABLE orders") == (1046, "No database selected")
    query(db, "USE shop")
    assert query(db, "ADMIN CHECKSUM TABLE orders")[1][0][:2] == ("shop", "orders")


# -- row-level reads -----------------------------------------------------------------------------------------
FINGERPRINT = ("SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS(',', id, customer_id, amount, status, version, "
               "ISNULL(id), ISNULL(customer_id), ISNULL(amount), ISNULL(status), ISNULL(version)))) FROM shop.orders")


def _orders_fingerprint(sandbox, tso: int) -> tuple[list[dict], tuple[int, int]]:
    """The rows of shop.orders at `tso`, and (COUNT(*), BIT_XOR of MySQL's CRC32 of each row's text)."""
    rows = [v for k, v in sandbox.rows(NAMESPACE, SOURCE, tso)["rows"].items() if k.startswith("shop/orders/")]
    xor = 0
    for row in rows:
        values = [row["id"], row["customer_id"], f"{row['amount']:.2f}", row["status"], row["version"]]
        xor ^= zlib.crc32((",".join(str(v) for v in values) + ",0,0,0,0,0").encode())  # no NULLs: ISNULL is 0
    return rows, (len(rows), xor)


def test_a_row_fingerprint_as_of_a_tso_is_mysqls_crc32_of_each_rows_text(sql_sandbox, connect):
    db = connect()
    tso = sql_sandbox.tso()
    sql_sandbox.advance(0.5)  # the workload writes on; the read at the TSO does not see it
    rows, expected = _orders_fingerprint(sql_sandbox, tso)
    query(db, f"SET @@tidb_snapshot = '{tso}'")
    assert query(db, FINGERPRINT)[1] == [expected]
    query(db, "SET @@tidb_snapshot = ''")
    at_ms = tso >> 18 << 18  # AS OF takes a datetime: TIDB_PARSE_TSO drops the logical part
    as_of = FINGERPRINT.replace("FROM shop.orders", f"FROM shop.orders AS OF TIMESTAMP TIDB_PARSE_TSO({tso})")
    assert query(db, as_of)[1] == [_orders_fingerprint(sql_sandbox, at_ms)[1]]
    # Ordered reads over the primary key, and the column list a fingerprint is built from.
    first = min(rows, key=lambda r: r["id"])
    query(db, f"SET @@tidb_snapshot = '{tso}'")
    assert query(db, "SELECT id, status FROM shop.orders ORDER BY id LIMIT 1") == (
        ["id", "status"], [(first["id"], first["status"])])
    query(db, "SET @@tidb_snapshot = ''")
    names, columns = query(db, "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY FROM INFORMATION_SCHEMA.COLUMNS "
                               "WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'orders' ORDER BY ORDINAL_POSITION")
    assert columns == [("id", "bigint(20)", "PRI"), ("customer_id", "bigint(20)", ""),
                       ("amount", "decimal(10,2)", ""), ("status", "varchar(16)", ""), ("version", "int(11)", "")]
    assert sql_error(db, "SELECT nope FROM shop.orders") == (1054, "Unknown column 'nope' in 'field list'")


# -- errors ------------------------------------------------------------------------------------------------
def test_errors_in_tidbs_format(connect):
    db = connect()
    assert sql_error(db, "garbage here") == (1064, "You have an error in your SQL syntax; check the manual that "
                                                   "corresponds to your TiDB version for the right syntax to use "
                                                   'line 1 column 7 near "garbage here" ')
    assert sql_error(db, "SELECT COUNT(*) FROM shop.nope") == (1146, "Table 'shop.nope' doesn't exist")
    assert sql_error(db, "SELECT COUNT(*) FROM nodb.t") == (1146, "Table 'nodb.t' doesn't exist")
    assert sql_error(db, "SHOW TABLES FROM nodb") == (1049, "Unknown database 'nodb'")
    assert sql_error(db, "USE nodb") == (1049, "Unknown database 'nodb'")
    assert sql_error(db, "SELECT @@nope") == (1193, "Unknown system variable 'nope'")
    for statement in ("INSERT INTO shop.orders VALUES (1)", "SELECT UPPER(status) FROM shop.orders",
                      "ADMIN SHOW DDL JOBS", "SELECT status, COUNT(*) FROM shop.orders GROUP BY status",
                      "SELECT a.id FROM shop.orders a JOIN shop.customers c ON a.customer_id = c.id",
                      "SELECT COUNT(*) FROM shop.orders WHERE LOWER(status) = 'new'", "SHOW CREATE TABLE shop.orders"):
        code, message = sql_error(db, statement)
        assert code == 1105 and message.endswith("is not supported by the tidb-sandbox SQL endpoint"), statement


# -- clusters made later -------------------------------------------------------------------------------------
def test_a_cluster_created_later_gets_an_endpoint(sql_sandbox, connect):
    made = sql_sandbox.create_cluster("sql-later", "late1", workload={"inserts_per_s": 50})
    assert made["sql"].startswith("mysql://root:")
    env = (sql_sandbox.workdir / "sandbox.env").read_text()
    assert f"TIDB_SANDBOX_SQL_SQL_LATER_LATE1={made['sql']}" in env.splitlines()
    db = connect(url=made["sql"])
    wait_for(lambda: query(db, "SHOW DATABASES")[1], lambda rows: ("shop",) in rows, timeout=10)
    assert sql_sandbox.call("GET", "/sql")["sql-later/late1"] == made["sql"]


def test_show_grants_answers_like_tidb_for_root_and_for_an_account_granted_nothing(sql_sandbox, connect):
    """Root has every privilege (TiDB's bootstrap); an account made without a GRANT (the sandbox has none) only
    USAGE."""
    assert query(connect(), "SHOW GRANTS") == (
        ["Grants for root@%"], [("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION",)])
    sql_sandbox.call("POST", f"/clusters/{NAMESPACE}/{SOURCE}/accounts", {"user": "reader", "password": "pw"})
    try:
        reader = connect(user="reader", password="pw")
        assert query(reader, "SHOW GRANTS") == (["Grants for reader@%"], [("GRANT USAGE ON *.* TO 'reader'@'%'",)])
    finally:
        sql_sandbox.call("POST", f"/clusters/{NAMESPACE}/{SOURCE}/accounts", {"user": "reader", "delete": True})
