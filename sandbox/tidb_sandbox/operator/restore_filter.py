"""A filtered point-in-time restore (`spec.tableFilter` on a `pitr` Restore, BR's `restore point --filter`): which
filters BR refuses, which rows it restores, and the check that the target holds none of those tables.

Upstream (pingcap/tidb):
- `br/pkg/task/stream.go` `restoreStream`: with an explicit filter, a filter whose `MatchSchema` takes `mysql` or
  `sys` fails with "PiTR doesn't support custom filter to include system db, consider to exclude system db"
  (ErrInvalidArgument); system tables are never restored under a filter.
- `pkg/util/table-filter/filter.go` `MatchSchema`: the first rule (last written) whose schema pattern matches and
  that is positive or covers every table decides; so `*.orders` takes `mysql`, `!mysql.*` after it does not.
- `br/pkg/restore/snap_client/client.go` `NeedCheckFreshCluster(ExplicitFilter, firstRun)`: no fresh-cluster
  check under a filter: the target may hold other data.
- `br/pkg/task/restore.go` `checkOptionalClusterRequirements` -> `checkTableExistence` (the snapshot's tables
  and, for PITR, the log's `PiTRTableTracker` tables that the filter takes): any that exists in the target fails
  with `ErrTablesAlreadyExisted` "table already exists: db.t db.u " before anything is written.
- Filtered PITR came with v8.5.5 (pingcap/docs "v8.5.5 br: support pitr filter and concurrent restore"); an older
  BR is refused here (inferred: the older code was not read; refusing is never kinder than an older BR that
  would replay every table's log into a non-empty target).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Any

from ..data.schema import database_definition, database_key, parse_key
from .snapshot import filter_rows

FILTER_FROM = (8, 5, 5)  # the first BR with filtered PITR
SYSTEM_DBS = ("mysql", "sys")  # mysql.SystemDB, mysql.SysDB: what `restoreStream` checks the filter against
SYSTEM_DB_REFUSED = ("PiTR doesn't support custom filter to include system db, consider to exclude system db: "
                     "[BR:Common:ErrInvalidArgument]invalid argument")
TABLES_EXIST = "[BR:Restore:ErrTablesAlreadyExisted]table already exists: "


def release_version(release: str) -> tuple[int, int, int]:
    """"v8.5.5" -> (8, 5, 5); a missing patch counts 0; anything unreadable (0, 0, 0)."""
    found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", release)
    if found is None:
        return (0, 0, 0)
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def match_schema(rules: Sequence[str], schema: str) -> bool:
    """TiDB's `filter.MatchSchema` over case-insensitive rules: whether the filter may take anything of `schema`."""
    for rule in reversed(rules):
        positive = not rule.startswith("!")
        db_pattern, _, table_pattern = (rule if positive else rule[1:]).partition(".")
        if fnmatch.fnmatchcase(schema.lower(), db_pattern.lower()) and (positive or table_pattern == "*"):
            return positive
    return False


def filter_refusal(release: str, rules: Sequence[str]) -> str | None:
    """BR's error for a filtered PITR it will not run, before it reads anything; None when it goes on."""
    if release_version(release) < FILTER_FROM:
        return (f"BR {release} does not support a table filter on a point-in-time restore (restore point "
                f"--filter needs v{'.'.join(map(str, FILTER_FROM))} or later)")
    if any(match_schema(rules, db) for db in SYSTEM_DBS):
        return SYSTEM_DB_REFUSED
    return None


def filtered_rows(rows: dict[str, Any], rules: Sequence[str]) -> dict[str, Any]:
    """The rows a filtered restore writes: the tables the filter takes (definitions and rows), and a definition
    for each of their databases (BR creates a database it needs when the target lacks it)."""
    kept = {k: v for k, v in filter_rows(rows, list(rules)).items()
            if (p := parse_key(k)) is not None and p.table is not None}
    for database in {parts.database for k in kept if (parts := parse_key(k)) is not None}:
        kept[database_key(database)] = rows.get(database_key(database)) or database_definition()
    return kept


def tables_of(rows: dict[str, Any]) -> list[str]:
    """"db.table" of every table definition among `rows`, sorted."""
    return sorted(f"{p.database}.{p.table}" for k in rows
                  if (p := parse_key(k)) is not None and p.table is not None and not p.is_row)


def existing_tables(live: dict[str, Any], rows: dict[str, Any]) -> str | None:
    """BR's `checkTableExistence`: the error when the target already holds a table the restore would create."""
    held = {name.lower() for name in tables_of(live)}
    clash = [name for name in tables_of(rows) if name.lower() in held]
    if not clash:
        return None
    return TABLES_EXIST + "".join(f"{name} " for name in clash)


def missing_databases(live: dict[str, Any], rows: dict[str, Any]) -> dict[str, Any]:
    """`rows` without the database definitions the target already has: those databases stay as they are."""
    return {k: v for k, v in rows.items() if not (parse_key(k) is not None and "/" not in k and k in live)}
