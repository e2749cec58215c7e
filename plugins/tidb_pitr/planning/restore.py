"""The restore plan: check a PITR target against the real window, pick the base snapshot, build the Restore CR.

Everything that can be refused is refused here, before any CR exists: restoring into the source cluster, a
target outside [earliest, latest] or inside a gap, a named base that cannot serve the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..cr.api import COMPONENT_RESTORE, LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY, ApiGroup
from ..cr.bodies import pitr_restore
from ..cr.model import BackupView, State
from ..tso import tso_iso, tso_str, tso_to_dt
from ..units import format_bytes, format_duration
from .window import Segment, Window, recoverable_window

# PITR restore speed per TiKV node from the TiDB docs (br-pitr-guide): snapshot 280 GB/h, log 30 GB/h.
SNAPSHOT_BYTES_PER_HOUR_PER_TIKV = 280e9
LOG_BYTES_PER_HOUR_PER_TIKV = 30e9


@dataclass(frozen=True)
class RestoreRates:
    """Restore throughput per TiKV store, in bytes per hour (the docs' figures unless measured otherwise)."""

    snapshot: float = SNAPSHOT_BYTES_PER_HOUR_PER_TIKV
    log: float = LOG_BYTES_PER_HOUR_PER_TIKV


@dataclass(frozen=True)
class Estimate:
    """How long the restore should take: the snapshot part, the log part, and what could not be known."""

    snapshot_bytes: int | None  # the base's backupSize; None when the CR has none
    log_bytes: int | None  # the log data files to replay, from storage; None when storage could not be read
    log_files: int
    seconds: float  # the parts that are known
    unknown: tuple[str, ...] = ()  # why a part is missing

    @property
    def complete(self) -> bool:
        return not self.unknown

    def describe(self) -> str:
        known = f"about {format_duration(self.seconds)}"
        parts = []
        if self.snapshot_bytes is not None:
            parts.append(f"snapshot {format_bytes(self.snapshot_bytes)}")
        if self.log_bytes is not None:
            parts.append(f"log {format_bytes(self.log_bytes)} in {self.log_files} files")
        text = f"{known} ({', '.join(parts)})" if parts else known
        if self.unknown:
            text = f"at least {text}; not counted: {'; '.join(self.unknown)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "complete": self.complete, "snapshot_bytes": self.snapshot_bytes,
                "log_bytes": self.log_bytes, "log_files": self.log_files, "unknown": list(self.unknown),
                "text": self.describe()}


class PlanError(ValueError):
    """A restore request that must not become a Restore CR; the message says why and what would work."""


@dataclass(frozen=True)
class RestorePlan:
    target_ts: int
    base: BackupView
    log: BackupView
    log_range: tuple[int, int]  # (log min, checkpoint) of the log used
    estimate: Estimate
    body: dict[str, Any]
    window: Window
    notes: list[str] = field(default_factory=list)

    @property
    def estimated(self) -> timedelta:
        return timedelta(seconds=self.estimate.seconds)

    def to_dict(self) -> dict[str, Any]:
        base_ts = self.base.commit_ts or 0
        return {
            "target": {"ts": tso_str(self.target_ts), "time": tso_iso(self.target_ts)},
            "base": {"name": self.base.name, "commit_ts": tso_str(base_ts), "commit_time": tso_iso(base_ts),
                     "backup_path": self.base.backup_path or self.base.storage_url,
                     "backup_size": self.base.backup_size},
            "log": {"name": self.log.name, "backup_path": self.log.backup_path or self.log.storage_url},
            "log_range": {"start": {"ts": tso_str(self.log_range[0]), "time": tso_iso(self.log_range[0])},
                          "end": {"ts": tso_str(self.log_range[1]), "time": tso_iso(self.log_range[1])}},
            "log_replay_seconds": (tso_to_dt(self.target_ts) - tso_to_dt(base_ts)).total_seconds(),
            "estimated_seconds": self.estimate.seconds,
            "estimate": self.estimate.to_dict(),
            "restore_name": self.body["metadata"]["name"],
            "window": self.window.to_dict(),
            "notes": list(self.notes),
        }


def _override(name: str, target_ts: int, snapshots: Sequence[BackupView],
              segments: Sequence[Segment]) -> tuple[BackupView, Segment]:
    view = next((s for s in snapshots if s.name == name and not s.is_log), None)
    if view is None:
        raise PlanError(f"base snapshot {name!r} not found among the source cluster's snapshot backups")
    if not view.is_full_cluster:
        raise PlanError(f"base snapshot {name!r} cannot be used: it is not a full-cluster backup (backupType "
                        f"{view.backup_type or 'full'}, tableFilter {list(view.table_filter)}); a point-in-time "
                        "restore starts from a backup of the whole cluster")
    if view.state != State.COMPLETE or view.commit_ts is None or view.deleting:
        raise PlanError(f"base snapshot {name!r} cannot be used: it is {view.phase or 'without status'}"
                        f"{' and being deleted' if view.deleting else ''}, not Complete")
    if view.commit_ts > target_ts:
        raise PlanError(f"base snapshot {name!r} (commitTs {tso_iso(view.commit_ts)}) is newer than the target "
                        f"{tso_iso(target_ts)}: a base must be at or before the target")
    for seg in segments:
        if any(b is view for b in seg.bases) and target_ts <= seg.end_ts:
            return view, seg
    ranges = ", ".join(f"{s.log.name} [{tso_iso(s.min_ts)}, {tso_iso(s.end_ts)}]" for s in segments) or "none"
    raise PlanError(f"base snapshot {name!r} (commitTs {tso_iso(view.commit_ts)}) is outside the range of every "
                    f"log backup that reaches the target (log ranges: {ranges})")


def _pick(target_ts: int, segments: Sequence[Segment]) -> tuple[BackupView, Segment]:
    # The newest base over all logs that reach the target: the shortest log replay.
    found = [(base, seg) for seg in segments if (base := seg.base_for(target_ts)) is not None]
    if not found:
        raise PlanError(f"no base snapshot for {tso_iso(target_ts)}")  # unreachable after the window check
    return max(found, key=lambda bs: (bs[0].commit_ts or 0, bs[1].end_ts))


def plan_restore(
    target_ts: int, snapshots: Sequence[BackupView], logs: Sequence[BackupView], *, target_cluster: str,
    target_namespace: str, source_cluster: str, source_namespace: str, group: ApiGroup, tikv_count: int = 3,
    name: str, base_override: str | None = None, namespace: str | None = None,
    labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
    br: Mapping[str, Any] | None = None, log_volume: tuple[int, int] | str | None = None,
    rates: RestoreRates = RestoreRates(), service_account: str | None = None, table_filter: Sequence[str] = (),
) -> RestorePlan:
    """Plan a PITR restore of `source` to `target_ts` into `target_cluster` (an empty cluster).

    `log_volume` is (bytes, files) of the log data to replay as read from storage, or why it could not be
    read (a string), or None when nobody looked.
    """
    if (target_namespace, target_cluster) == (source_namespace, source_cluster):
        raise PlanError(f"target_cluster {target_namespace}/{target_cluster} is the source cluster: PITR restores "
                        f"only into an empty cluster, never in place; choose another target_cluster")
    if tikv_count < 1:
        raise PlanError(f"tikv_count must be at least 1; got {tikv_count}")
    window = recoverable_window(snapshots, logs)
    target = f"{tso_iso(target_ts)} (ts {target_ts})"
    if window.earliest_ts is None or window.latest_ts is None:
        raise PlanError(f"cannot restore to {tso_iso(target_ts)}: no recoverable window: {window.brief()}")
    if not window.contains(target_ts):
        # Short, reason first: this line is what the run's note and the failed log show.
        gap = window.gap_at(target_ts)
        where = ("inside a gap between log backups" if gap
                 else "before the earliest restorable time" if target_ts < window.earliest_ts
                 else "after the latest restorable time")
        raise PlanError(f"{tso_iso(target_ts)} is {where}; the recoverable window is {window.brief()}")
    segments = [s for s in window.segments if s.bases]
    base, seg = _override(base_override, target_ts, snapshots, segments) if base_override else _pick(
        target_ts, segments)
    notes: list[str] = []
    estimate = estimate_restore(base, tikv_count, log_volume, rates)
    all_labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: COMPONENT_RESTORE, **(labels or {})}
    body = pitr_restore(
        group, name=name, namespace=namespace or target_namespace,
        target_cluster=target_cluster, target_namespace=target_namespace, log_storage=seg.log.storage,
        snapshot_storage=base.storage, restored_ts=target_ts, labels=all_labels, annotations=annotations, br=br,
        service_account=service_account, table_filter=table_filter,
    )
    what = f"tables {', '.join(table_filter)} of " if table_filter else ""
    notes.insert(0, f"restore {what}{source_namespace}/{source_cluster} to {target} into "
                    f"{target_namespace}/{target_cluster}: snapshot {base.name} "
                    f"({tso_iso(base.commit_ts or 0)}) then log {seg.log.name} up to the target")
    notes.append(f"estimated duration: {estimate.describe()}")
    return RestorePlan(target_ts, base, seg.log, (seg.min_ts, seg.end_ts), estimate, body, window, notes)


def estimate_restore(base: BackupView, tikv_count: int, log_volume: tuple[int, int] | str | None,
                     rates: RestoreRates = RestoreRates()) -> Estimate:
    """Snapshot bytes at the snapshot rate plus log bytes at the log rate, both spread over the TiKV stores."""
    unknown = []
    hours = 0.0
    if base.backup_size is None:
        unknown.append(f"snapshot {base.name} has no backupSize")
    else:
        hours += base.backup_size / (rates.snapshot * tikv_count)
    log_bytes, log_files = None, 0
    if isinstance(log_volume, tuple):
        log_bytes, log_files = log_volume
        hours += log_bytes / (rates.log * tikv_count)
    else:
        unknown.append(f"the log volume to replay ({log_volume or 'not read from storage'})")
    return Estimate(base.backup_size, log_bytes, log_files, hours * 3600.0, tuple(unknown))
