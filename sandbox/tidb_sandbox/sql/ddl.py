"""DDL the endpoints carry out: DROP DATABASE, DROP TABLE.

The checks come in TiDB's order: the privilege check of the plan (`pkg/planner/core/planbuilder.go`
`buildDDL`: DROP on a memory schema is never granted, `pkg/privilege/privileges/privileges.go`
`RequestVerification` with `util.IsMemDB`), the refusal of writes under @@tidb_snapshot
(`pkg/executor/adapter.go` `handleNoDelayExecutor`), the guard on `mysql` (`pkg/executor/ddl.go`
`executeDropDatabase`), then existence (`pkg/ddl/executor.go` `DropSchema`: IF EXISTS on a missing database
is OK without a warning, else ErrDatabaseDropExists).
"""

from __future__ import annotations

from ..data.mvcc import Change, ClusterData
from ..data.schema import parse_key
from . import errors
from .catalog import TEST_SCHEMA, Catalog
from .readts import ReadTimes

MEMORY_SCHEMAS = ("information_schema", "performance_schema", "metrics_schema")  # util.IsMemDB
# TiDB v8 bootstraps a `sys` schema (views over the memory schemas) that the sandbox does not list.
UNMODELLED_SCHEMAS = ("sys",)


def check_drop_database(name: str, user: str, snapshot_ts: int) -> None:
    """What TiDB refuses before it looks the database up."""
    lower = name.lower()
    if lower in MEMORY_SCHEMAS:
        raise errors.db_access_denied(user, name)
    if snapshot_ts:
        raise errors.write_in_snapshot()
    if lower == "mysql":
        raise errors.drop_mysql_forbidden()
    if lower in UNMODELLED_SCHEMAS:
        raise errors.not_supported(f"DROP DATABASE {name} (the sandbox does not model the {lower} schema)")


def drop_tables(data: ClusterData, times: ReadTimes, names: list[tuple[str, str]], if_exists: bool,
                user: str, snapshot_ts: int) -> int | None:
    """DROP TABLE: every key of the named tables (definitions and rows) deleted at one new commit TSO, their
    databases and every other table left as they are. As TiDB (`pkg/executor/ddl.go` `dropTableObject`): writes
    under @@tidb_snapshot refused first; a memory or system schema refused (the sandbox models no table of them);
    missing tables without IF EXISTS fail with ErrBadTable naming every missing one (1051 "Unknown table
    'db.t1,db.t2'") and drop none (inferred: TiDB checks them all first); with IF EXISTS the present ones go. Each
    dropped table's job takes a global ID. Returns the commit TSO, None when nothing was dropped."""
    if snapshot_ts:
        raise errors.write_in_snapshot()
    for database, _ in names:
        if database.lower() in MEMORY_SCHEMAS:
            raise errors.db_access_denied(user, database)
        if database.lower() in ("mysql", *UNMODELLED_SCHEMAS):
            raise errors.not_supported(f"DROP TABLE in {database} (the sandbox models no table of it)")
    catalog = Catalog(data, times.now())
    found = [catalog.find_table(database, table) for database, table in names]
    missing = [f"{database}.{table}" for (database, table), info in zip(names, found, strict=True) if info is None]
    if missing and not if_exists:
        raise errors.drop_missing_tables(missing)
    present = {(info.database, info.name) for info in found if info is not None}
    if not present:
        return None
    keys = [key for key in data.live_keys()
            if (parts := parse_key(key)) is not None and (parts.database, parts.table) in present]
    ts = times.now()
    data.apply(Change(ts, key, None) for key in sorted(keys))
    data.advance_global_ids(len(present))
    return ts


def drop_database(data: ClusterData, times: ReadTimes, name: str, if_exists: bool) -> int | None:
    """Delete every key of the database at one new commit TSO: its definition record, its tables'
    definitions and all their rows (TiDB's drop-schema job makes the schema and its tables invisible at
    once; older snapshots still see them until the GC safe point passes). Returns the commit TSO, or None
    when IF EXISTS found nothing.

    Call it on the event loop: the workload writes there too, so nothing commits between the look-up and
    the deletions.
    """
    found = Catalog(data, times.now()).find_database(name)
    if found is None:
        if if_exists:
            return None
        raise errors.drop_missing_database(name)
    keys = [key for key in data.live_keys()
            if (parts := parse_key(key)) is not None and parts.database.lower() == found.lower()]
    if found.lower() == TEST_SCHEMA and TEST_SCHEMA not in keys:
        keys.append(TEST_SCHEMA)  # the bootstrap's `test` is no record; its deletion hides it (catalog.py)
    ts = times.now()
    changes = [Change(ts, key, None) for key in sorted(keys)]
    data.apply(changes)
    # The drop-schema job takes its job ID from the global ID counter (pkg/ddl job submission:
    # `GenGlobalIDs(len(tasks))`, `job.ID = ids[i]`); the dropped tables' IDs are never given back.
    data.advance_global_ids(1)
    return ts
