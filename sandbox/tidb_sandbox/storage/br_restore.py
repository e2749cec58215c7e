"""`br restore point` semantics: which ranges can be restored, replaying logs onto a snapshot, and the
table IDs the restored tables get in the target."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..data.mvcc import Change, Row
from ..data.schema import definition_ids
from .base import Location
from .br_common import BRError, ts_text
from .br_log import LogRange, log_metadata, read_log
from .br_snapshot import SnapshotMeta, read_snapshot


def check_same_cluster(full_cluster_id: int, log_cluster_id: int) -> None:
    if full_cluster_id != log_cluster_id:
        raise BRError(
            f"the full snapshot(from cluster ID:{full_cluster_id}) and log(from cluster ID:{log_cluster_id}) "
            "come from different cluster."
        )


def check_restore_range(log_range: LogRange, start_ts: int, restored_ts: int) -> int:
    """BR's checks before a point-in-time restore; returns the effective restored ts (0 = log-max-ts)."""
    restored = restored_ts or log_range.max_ts
    if start_ts < log_range.min_ts:
        raise BRError(
            f"it has gap between full backup ts:{start_ts}({ts_text(start_ts)}) and "
            f"log backup ts:{log_range.min_ts}({ts_text(log_range.min_ts)}). "
        )
    if not log_range.min_ts <= start_ts <= restored <= log_range.max_ts:
        raise BRError(
            f"restore log from {start_ts}({ts_text(start_ts)}) to {restored}({ts_text(restored)}), "
            f"but the current existed log from {log_range.min_ts}({ts_text(log_range.min_ts)}) "
            f"to {log_range.max_ts}({ts_text(log_range.max_ts)})"
        )
    return restored


def apply_changes(rows: dict[str, Row], changes: Iterable[Change]) -> dict[str, Row]:
    """Replay changes (sorted by ts) onto a copy of `rows`."""
    result = dict(rows)
    for change in changes:
        if change.value is None:
            result.pop(change.key, None)
        else:
            result[change.key] = change.value
    return result


@dataclass(frozen=True)
class TableIds:
    """What `prealloc_table_ids` gives: the rows with rewritten definitions, and the target's new global ID."""

    rows: dict[str, Row]
    global_id: int
    rewritten: dict[int, int]  # original ID -> new ID, only the IDs that changed


def prealloc_table_ids(rows: dict[str, Row], current_global_id: int) -> TableIds:
    """The IDs BR gives restored tables and partitions in a target whose global ID is `current_global_id`.

    As tidb `br/pkg/restore/internal/prealloc_table_id/alloc.go`: `New` takes the largest original ID and
    counts tables plus partitions; `Alloc` starts at `GetGlobalID() + 1`, moves the reusable border up to at
    least that start, and advances the global ID past border + count; `allocID` keeps an original ID only
    when it lies in [start, border), i.e. above the target's current global ID, and otherwise takes the next
    ID from the border on. So into a fresh cluster the IDs survive, and into a cluster that has allocated
    past them (a scratch cluster emptied by DROP DATABASE) every table gets a new one.
    """
    tables = sorted((key for key, value in rows.items() if definition_ids(key, value)),
                    key=lambda k: int(rows[k].get("id") or 0))
    ids = [i for key in tables for i in definition_ids(key, rows[key])]
    if not ids:
        return TableIds(dict(rows), current_global_id, {})
    start = current_global_id + 1
    border = max(max(ids) + 1, start)
    next_id = border
    rewritten: dict[int, int] = {}

    def alloc(original: int) -> int:
        nonlocal next_id
        if start <= original < border:
            return original
        rewritten[original] = next_id
        next_id += 1
        return next_id - 1

    result = dict(rows)
    for key in tables:
        value = dict(rows[key])
        value["id"] = alloc(int(value.get("id") or 0))
        if value.get("partitions"):
            value["partitions"] = [{**p, "id": alloc(int(p["id"]))} for p in value["partitions"]]
        result[key] = value
    return TableIds(result, border + len(ids) - 1, rewritten)


@dataclass(frozen=True)
class PointRestore:
    rows: dict[str, Row]
    snapshot: SnapshotMeta
    log_range: LogRange
    restored_ts: int
    replayed: int  # log changes applied on top of the snapshot


def restore_point(full: Location, log: Location, restored_ts: int = 0) -> PointRestore:
    """What `br restore point --full-backup-storage` yields: the snapshot plus logs up to restored_ts."""
    log_range = log_metadata(log)
    snapshot, rows = read_snapshot(full)
    check_same_cluster(snapshot.cluster_id, log_range.cluster_id)
    restored = check_restore_range(log_range, snapshot.commit_ts, restored_ts)
    changes = read_log(log, snapshot.commit_ts, restored)
    return PointRestore(apply_changes(rows, changes), snapshot, log_range, restored, len(changes))
