"""Which Dumpling (logical) backups to delete: pure, no I/O.

Only backups this project made for the cluster are candidates (`owned` is decided by the caller with the
ownership rules); others are neither counted nor touched. Of the owned Complete ones, a backup stays when it
is among the newest `count`, or younger than `age` (either rule keeps it, like BackupSchedule's maxBackups /
maxReservedTime); the newest Complete one always stays. An owned Failed one goes once a Complete one newer
than it exists (it restores nothing); anything still running or pending stays.

Dumpling names its archive after the second its Job started (`backup-<RFC3339>.tgz`), so two backups into one
prefix within a second share one archive (the later upload replaces the earlier). A deleted backup's archive is
therefore deleted only when no backup that stays (kept, foreign, still running) names the same one: otherwise
only its CR goes (`cr_only`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

COMPLETE, FAILED, OTHER = "complete", "failed", "other"


@dataclass(frozen=True)
class LogicalBackup:
    name: str
    created: datetime
    state: str  # COMPLETE, FAILED or OTHER (pending, running, deleting)
    owned: bool
    archive: str | None = None  # the storage key of its dump, when known



@dataclass(frozen=True)
class LogicalRetentionPlan:
    delete: tuple[str, ...]
    keep: tuple[str, ...]
    reasons: dict[str, str] = field(default_factory=dict)  # name -> why it goes or stays
    cr_only: tuple[str, ...] = ()  # of `delete`: its archive is also a staying backup's, so it stays


def plan_logical_retention(backups: Iterable[LogicalBackup], *, count: int | None, age: timedelta | None,
                           now: datetime) -> LogicalRetentionPlan:
    if count is None and age is None:
        raise ValueError("keep needs count and/or age")
    if count is not None and count < 1:
        raise ValueError(f"keep.count must be at least 1; got {count}")
    items = sorted(backups, key=lambda b: (b.created, b.name), reverse=True)  # newest first
    complete = [b for b in items if b.owned and b.state == COMPLETE]
    newest_complete = complete[0] if complete else None
    delete: list[str] = []
    keep: list[str] = []
    reasons: dict[str, str] = {}
    for rank, backup in enumerate(complete):
        young = age is not None and backup.created > now - age
        in_count = count is not None and rank < count
        if backup is newest_complete or young or in_count:
            keep.append(backup.name)
            reasons[backup.name] = ("the newest Complete one" if backup is newest_complete and not
                                    (young or in_count) else
                                    f"newest {rank + 1} of count {count}" if in_count else f"younger than {age}")
        else:
            delete.append(backup.name)
            reasons[backup.name] = f"Complete, number {rank + 1} by age" + (
                f", past count {count}" if count is not None else "") + (
                f", older than {age}" if age is not None else "")
    for backup in items:
        if not backup.owned or backup.state == COMPLETE:
            continue
        if backup.state == FAILED and newest_complete is not None and backup.created < newest_complete.created:
            delete.append(backup.name)
            reasons[backup.name] = f"Failed, and {newest_complete.name} is newer and Complete"
        else:
            keep.append(backup.name)
            reasons[backup.name] = "Failed, no newer Complete one" if backup.state == FAILED else "not finished"
    gone = set(delete)
    staying = {b.archive: b.name for b in items if b.name not in gone and b.archive}
    cr_only = []
    for name in delete:
        archive = next(b.archive for b in items if b.name == name)
        if archive and archive in staying:
            cr_only.append(name)
            reasons[name] += f"; its archive is also {staying[archive]}'s, so only the CR goes"
    return LogicalRetentionPlan(delete=tuple(delete), keep=tuple(keep), reasons=reasons, cr_only=tuple(cr_only))
