"""DDL the endpoints carry out: DROP DATABASE.

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
