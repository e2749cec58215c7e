"""Statements over the user tables at a read TSO: SHOW DATABASES / TABLES, SELECT COUNT(*), ADMIN CHECKSUM."""

from __future__ import annotations

from mysql_mimic import ColumnType, ResultColumn, ResultSet
from sqlglot import expressions as exp

from . import errors
from .catalog import INFORMATION_SCHEMA, Catalog, TableInfo
from .checksum import encode_kv, table_checksum
from .infoschema import like

_S, _I = ColumnType.VAR_STRING, ColumnType.LONGLONG


def _like_pattern(show: exp.Show) -> str | None:
    if show.args.get("where") is not None:
        raise errors.not_supported(f"SHOW {show.name} WHERE")
    clause = show.args.get("like")
    return clause.name if clause is not None else None


def show_databases(catalog: Catalog, show: exp.Show) -> ResultSet:
    pattern = _like_pattern(show)
    names = [n for n in catalog.schema_names() if pattern is None or like(n, pattern)]
    return ResultSet([[n] for n in names], [ResultColumn("Database", _S)])


def show_tables(catalog: Catalog, show: exp.Show, current: str | None) -> ResultSet:
    pattern = _like_pattern(show)
    asked = show.text("db") or current
    if not asked:
        raise errors.no_database()
    database = catalog.find_database(asked)
    if database is None:
        raise errors.bad_database(asked)
    if catalog.is_system(database):
        raise errors.not_supported(f"SHOW TABLES FROM {database} (the sandbox does not model system tables)")
    names = [t.name for t in catalog.user_tables(database) if pattern is None or like(t.name, pattern)]
    columns = [ResultColumn(f"Tables_in_{asked}", _S)]
    if show.args.get("full"):
        columns.append(ResultColumn("Table_type", _S))
        return ResultSet([[n, "BASE TABLE"] for n in names], columns)
    return ResultSet([[n] for n in names], columns)


def resolve_table(catalog: Catalog, database: str | None, table: str, current: str | None) -> TableInfo:
    """A user table by name; TiDB's 1046 without a database, 1146 when it does not exist at this TSO."""
    database = database or current
    if not database:
        raise errors.no_database()
    if catalog.is_system(database):
        if database.upper() == INFORMATION_SCHEMA:
            raise errors.not_supported(f"this statement on {database}.{table}")
        raise errors.not_supported(f"reading {database}.{table} (the sandbox does not model system tables)")
    found = catalog.find_table(database, table)
    if found is None:
        raise errors.no_such_table(database, table)
    return found


def table_bytes(catalog: Catalog, table: TableInfo) -> int:
    """What a full scan of the table reads: INFORMATION_SCHEMA.TABLES DATA_LENGTH + INDEX_LENGTH (the sandbox
    keeps no secondary indexes, so its rows' key and value bytes)."""
    return sum(len(k) + len(v) for k, v in (encode_kv(key, row) for key, row in catalog.rows(table).items()))


def count_rows(catalog: Catalog, table: TableInfo, name: str) -> ResultSet:
    return ResultSet([[len(catalog.rows(table))]], [ResultColumn(name, _I)])


def admin_checksum(catalog: Catalog, tables: list[TableInfo]) -> ResultSet:
    """Db_name, Table_name, Checksum_crc64_xor, Total_kvs, Total_bytes: one row per table, as TiDB answers."""
    rows = []
    for table in tables:
        result = table_checksum(catalog.rows(table), table.definition.table_id)
        rows.append([table.database, table.name, result.crc64_xor, result.total_kvs, result.total_bytes])
    columns = [ResultColumn("Db_name", _S), ResultColumn("Table_name", _S), ResultColumn("Checksum_crc64_xor", _I),
               ResultColumn("Total_kvs", _I), ResultColumn("Total_bytes", _I)]
    return ResultSet(rows, columns)
