"""What a restore asks a TiDB over SQL: does the target hold anything BR would refuse to restore over?

Through Airflow's MySQL provider (`MySqlHook`, an Airflow `mysql` connection per cluster: `sql_conn_id`).
"""

from __future__ import annotations

from collections.abc import Iterable

# TiDB's memory and system schemas (`IsMemOrSysDB`): never user data.
SYSTEM_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema", "metrics_schema"})
MAX_LISTED = 10  # BR lists up to ten tables, then "..."


def user_objects(databases: Iterable[str], tables: Iterable[tuple[str, str]]) -> list[str]:
    """BR's rule for "not an empty cluster" (`AssertUserDBsEmpty` in br/pkg/restore/misc.go): every table
    outside the system schemas, and every database outside them without tables except the empty `test`
    database a fresh TiDB creates. As `db.table` (or `db`), sorted."""
    by_db: dict[str, list[str]] = {}
    for db in databases:
        if db.lower() not in SYSTEM_DATABASES:
            by_db.setdefault(db, [])
    for db, table in tables:
        if db.lower() not in SYSTEM_DATABASES:
            by_db.setdefault(db, []).append(table)
    found = []
    for db, names in sorted(by_db.items()):
        if names:
            found.extend(f"{db}.{t}" for t in sorted(names))
        elif db.lower() != "test":
            found.append(db)
    return found


def listed(objects: list[str], limit: int = MAX_LISTED) -> str:
    shown = objects[:limit]
    return ", ".join(shown) + (f" and {len(objects) - limit} more" if len(objects) > limit else "")


def target_user_objects(conn_id: str) -> list[str]:
    """The user databases and tables of the TiDB behind `conn_id` (raises what the driver raises)."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    hook = MySqlHook(mysql_conn_id=conn_id)
    databases = [row[0] for row in hook.get_records("SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA")]
    tables = [(row[0], row[1]) for row in hook.get_records(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES")]
    return user_objects(databases, tables)
