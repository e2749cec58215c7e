"""A TiDB Operator v1 BackupSchedule seen from here (pure): its Backups, what its GC deletes next, its hazards.

The rules are upstream's (release-1.6 `pkg/backup/backupschedule/backup_schedule_manager.go`): GC by
`maxReservedTime` (preferred when both are set) or by `maxBackups`, over every Backup carrying the schedule's
labels. Three of them surprise users, and the guard says so when a schedule's spec or Backups have them:
tidb-operator#6320 (`maxBackups` counts, and deletes, the log backup CR), #6068 (the log is truncated by
`maxReservedTime` alone, whatever window is wanted), and the base kept whatever its state (a Failed newest expired
snapshot makes the GC delete the last Complete base before it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..cr.model import BackupView, State
from ..tso import dt_to_tso, tso_to_dt

LABEL_SCHEDULE = "tidb.pingcap.com/backup-schedule"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
SCHEDULE_MANAGER = "backup-schedule-operator"
ISSUE_MAX_BACKUPS = "https://github.com/pingcap/tidb-operator/issues/6320"
ISSUE_TRUNCATE = "https://github.com/pingcap/tidb-operator/issues/6068"
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def go_duration(text: str) -> timedelta | None:
    """Go's `time.ParseDuration` as the operator reads `maxReservedTime` (`3h`, `72h`, `1h30m`); None if invalid."""
    body = (text or "").strip()
    if body == "0":
        return timedelta(0)
    parts = _GO_DURATION.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        return None
    return timedelta(seconds=sum(float(n) * _GO_UNITS[u] for n, u in parts))


def made_by_schedule(view: BackupView, schedule: str) -> bool:
    """Carries the labels the schedule puts on what it creates (`label.NewBackupSchedule`), which its GC
    selects by."""
    return view.label(LABEL_SCHEDULE) == schedule and view.label(LABEL_MANAGED_BY) == SCHEDULE_MANAGER


@dataclass(frozen=True)
class ScheduleGc:
    """What the schedule's GC would do if it ran now."""

    rule: str  # "maxReservedTime", "maxBackups" or "none"
    delete: list[BackupView]
    truncate_until: int | None
    expired_before: int | None  # maxReservedTime with a log: snapshots at or before this TSO expire
    # maxReservedTime with a log: the newest expired snapshot, which the GC keeps as the base whatever its state
    kept: BackupView | None = None

    def to_dict(self) -> dict[str, Any]:
        from ..tso import tso_iso, tso_str

        return {"rule": self.rule, "delete": [{"name": v.name, "commit_ts": tso_str(v.commit_ts),
                                               "commit_time": tso_iso(v.commit_ts) if v.commit_ts else None}
                                              for v in self.delete],
                "truncate_until": ({"ts": tso_str(self.truncate_until), "time": tso_iso(self.truncate_until)}
                                   if self.truncate_until else None),
                "expired_before": ({"ts": tso_str(self.expired_before), "time": tso_iso(self.expired_before)}
                                   if self.expired_before else None)}


def _finished(views: Iterable[BackupView]) -> list[BackupView]:
    done = [v for v in views if v.mode != "log" and v.state in (State.COMPLETE, State.FAILED, State.INVALID)]
    return sorted(done, key=lambda v: (v.created or _EPOCH, v.name))


def next_gc(spec: Mapping[str, Any], backups: list[BackupView], now: datetime) -> ScheduleGc:
    """`backupGC` as a dry run over the schedule's Backups (`backups`: those carrying its labels)."""
    reserved = go_duration(str(spec["maxReservedTime"])) if spec.get("maxReservedTime") is not None else None
    if reserved is not None:
        logs = [v for v in backups if v.mode == "log"]
        log = logs[-1] if logs else None
        snapshots = _finished(backups)
        if not snapshots:
            return ScheduleGc("maxReservedTime", [], None, None)
        if log is None:
            cut = dt_to_tso(now - reserved)
            expired = []
            for view in snapshots:
                if (view.commit_ts or 0) >= cut:
                    break
                expired.append(view)
            return ScheduleGc("maxReservedTime", expired, None, cut)
        latest = max([log.checkpoint_ts or 0] + [v.commit_ts or 0 for v in snapshots])
        whole = datetime.fromtimestamp((latest >> 18) // 1000, UTC)  # `TSOToTS`: whole seconds
        expired_tso = dt_to_tso(whole - reserved)
        kept_base, count = 0, 0
        for view in snapshots:
            if (view.commit_ts or 0) > expired_tso:
                break
            kept_base, count = view.commit_ts or 0, count + 1
        expired = snapshots[:count - 1] if count else []
        kept = snapshots[count - 1] if count else None
        if not expired:
            return ScheduleGc("maxReservedTime", [], None, expired_tso, kept)
        inside = (log.commit_ts or 0) < kept_base <= (log.checkpoint_ts or 0)
        return ScheduleGc("maxReservedTime", expired, kept_base if inside else None, expired_tso, kept)
    keep = int(spec.get("maxBackups") or 0)
    if keep > 0:
        newest_first = sorted(backups, key=lambda v: (v.created or _EPOCH, v.name), reverse=True)
        return ScheduleGc("maxBackups", newest_first[keep:], None, None)
    return ScheduleGc("none", [], None, None)


def hazards(spec: Mapping[str, Any], *, retention: timedelta) -> list[str]:
    """What in this schedule's spec will cost restore points, in the words a DBA can act on."""
    out = []
    has_log = bool(spec.get("logBackupTemplate"))
    reserved = go_duration(str(spec["maxReservedTime"])) if spec.get("maxReservedTime") is not None else None
    if spec.get("maxReservedTime") is not None and reserved is None:
        out.append(f"maxReservedTime {spec['maxReservedTime']!r} is not a Go duration (e.g. 72h): the operator "
                   "then deletes nothing and never truncates the log")
    if spec.get("maxBackups") and int(spec["maxBackups"]) > 0 and has_log:
        if spec.get("maxReservedTime") is None:
            out.append(f"maxBackups ({spec['maxBackups']}) with a logBackupTemplate: TiDB Operator counts the log "
                       "backup CR among the backups and deletes it once there are more (tidb-operator#6320, "
                       f"{ISSUE_MAX_BACKUPS}); the log task is stopped, the schedule stops making backups. Use "
                       "maxReservedTime instead")
        else:
            out.append("maxBackups is ignored: maxReservedTime is set and wins (and maxBackups would delete the "
                       f"log backup CR, tidb-operator#6320, {ISSUE_MAX_BACKUPS})")
    if has_log and reserved is not None and reserved < retention:
        out.append(f"maxReservedTime {spec['maxReservedTime']} is shorter than the retention asked for here "
                   f"({_days(retention)}): the schedule truncates the log by maxReservedTime alone "
                   f"(tidb-operator#6068, {ISSUE_TRUNCATE}), so only about {spec['maxReservedTime']} before the "
                   "checkpoint stays restorable")
    if has_log and spec.get("maxReservedTime") is None:
        out.append("no maxReservedTime: the schedule never truncates its log (tidb-operator#6068: truncation "
                   f"follows maxReservedTime only, {ISSUE_TRUNCATE}); log data grows without bound")
    if not has_log:
        out.append("no logBackupTemplate: the schedule runs no log backup, so there is no point-in-time recovery")
    return out


def gc_hazards(gc: ScheduleGc) -> list[str]:
    """What the next GC itself will cost: upstream keeps the newest expired snapshot as the base whatever its
    state (`calExpiredBackupsWithLogBackupOn` keeps `list[i-1]`), so when that one is Failed the GC deletes the
    last Complete base before it, and the restore points from the cut to the next Complete snapshot lose theirs."""
    kept = gc.kept
    if kept is None or kept.state == State.COMPLETE:
        return []
    complete = [v for v in gc.delete if v.state == State.COMPLETE]
    if not complete:
        return []
    lost = complete[-1]
    cut = tso_to_dt(gc.expired_before).isoformat() if gc.expired_before else "the maxReservedTime cut"
    return [f"the schedule's next GC deletes {lost.name}, the last Complete snapshot before {cut}, because the "
            f"newest expired snapshot, {kept.name}, is {kept.phase or 'not Complete'} and TiDB Operator keeps that "
            "one as the base whatever its state: times from the cut to the next Complete snapshot lose their "
            f"base. Delete {kept.name} (or take a new snapshot) before the GC runs"]


def _days(value: timedelta) -> str:
    days = value.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{value.total_seconds() / 3600:g} hours"


def gc_summary(gc: ScheduleGc) -> str:
    names = ", ".join(v.name for v in gc.delete) or "nothing"
    cut = f"; log truncated to {tso_to_dt(gc.truncate_until).isoformat()}" if gc.truncate_until else ""
    return f"by {gc.rule}: deletes {names}{cut}"
