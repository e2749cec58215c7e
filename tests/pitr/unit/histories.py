"""Hypothesis strategies for backup histories, and an oracle for "is T restorable" that shares no code with
the planner: T is restorable when a log L and a Complete snapshot S have log_min(L) <= commit(S) <= T <= ckpt(L).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from tidb_pitr.cr.model import BackupView
from tidb_pitr.planning.retention import Protection
from tidb_pitr.tso import dt_to_tso

from .crs import S3, log, snapshot

SNAPSHOT_KINDS = ["Complete"] * 6 + ["Failed", "Running", "Invalid", "Deleting"]
LOG_KINDS = ["Running"] * 4 + ["Paused", "ErrorPaused", "Stopped", "Failed"]


@dataclass
class History:
    now: datetime
    snapshots: list[BackupView]
    logs: list[BackupView]
    compact_progress_ts: int | None


def _log(name: str, kind: str, start: int, checkpoint: int, truncated: int | None) -> BackupView:
    if kind == "ErrorPaused":
        return log(name, start, checkpoint, truncated=truncated, phase="RetryFailed", reason="LogBackupErrorPaused",
                   message="Log backup paused due to error: Paused by error(store 1): disk full")
    return log(name, start, checkpoint, truncated=truncated, phase=kind)


@st.composite
def histories(draw: st.DrawFn) -> History:
    now = datetime(2026, 11, 21, 5, 30, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 60 * 24 * 60)))
    first = now - timedelta(days=draw(st.integers(3, 70)), hours=draw(st.integers(0, 47)))
    snapshots = []
    moment, index = first, 0
    # Sometimes the snapshots stopped a while ago (a broken snapshot DAG): retention must still keep two.
    last = now - timedelta(days=draw(st.sampled_from([0, 0, 0, 10, 35, 60])), hours=1)
    while moment < last:
        kind = draw(st.sampled_from(SNAPSHOT_KINDS))
        commit = dt_to_tso(moment) + draw(st.integers(0, 1 << 20))
        if kind == "Deleting":
            view = snapshot(f"snapshot-{index:03d}", commit, created=moment, deleting=True)
        else:
            view = snapshot(f"snapshot-{index:03d}", commit, kind, created=moment)
        snapshots.append(view)
        moment += timedelta(hours=48 + draw(st.integers(-8, 8)))
        index += 1

    lag = draw(st.sampled_from([timedelta(0), timedelta(minutes=3), timedelta(minutes=30), timedelta(days=2),
                                timedelta(days=40)]))
    checkpoint = dt_to_tso(now - lag)
    start = min(dt_to_tso(first + timedelta(hours=draw(st.integers(-96, 24 * 25)))), checkpoint - (3600000 << 18))
    truncated = None
    if draw(st.booleans()):
        truncated = start + int((checkpoint - start) * draw(st.floats(0, 0.7)))
    logs = [_log("log-new", draw(st.sampled_from(LOG_KINDS)), start, checkpoint, truncated)]
    if draw(st.integers(0, 3)) == 0:  # an older, stopped log backup before this one
        old_end = start - (draw(st.integers(1, 200)) * 3600000 << 18)
        old_start = old_end - (draw(st.integers(1, 30)) * 86400000 << 18)
        logs.insert(0, _log("log-old", "Stopped", old_start, old_end, None))
    compact = None
    if draw(st.integers(0, 3)) == 0:
        compact = start + int((checkpoint - start) * draw(st.floats(0, 1)))
    return History(now, snapshots, logs, compact)


def restorable(ts: int, snapshots: Sequence[BackupView], logs: Sequence[BackupView]) -> bool:
    return any(base_candidates(ts, snapshots, logs))


def base_candidates(ts: int, snapshots: Sequence[BackupView], logs: Sequence[BackupView]) -> list[BackupView]:
    found = []
    for lg in logs:
        if lg.deleting or lg.commit_ts is None or lg.checkpoint_ts is None:
            continue
        low = max(lg.commit_ts, lg.truncated_until or 0)
        if not low <= ts <= lg.checkpoint_ts:
            continue
        found += [s for s in snapshots if s.phase == "Complete" and not s.deleting and s.commit_ts is not None
                  and low <= s.commit_ts <= ts and _whole_cluster(s)]
    return found


def _whole_cluster(view: BackupView) -> bool:
    spec = view.raw.get("spec") or {}
    return spec.get("backupType", "full") in ("", "full") and not spec.get("tableFilter") and not (
        spec.get("br") or {}).get("db")


def probes(snapshots: Sequence[BackupView], logs: Sequence[BackupView], low: int, high: int,
           extra: Sequence[int] = (), steps: int = 40) -> list[int]:
    """Every point where restorability can change (and its neighbours), plus a grid over [low, high]."""
    points = set(extra)
    for view in [*snapshots, *logs]:
        for ts in (view.commit_ts, view.checkpoint_ts, view.truncated_until):
            if ts is not None:
                points.update((ts - 1, ts, ts + 1))
    if high > low:
        points.update(low + (high - low) * i // steps for i in range(steps + 1))
    return sorted(p for p in points if low <= p <= high)


# -- ownership: snapshots this project made for cluster "basic" at backups/snapshot-<14 digits>, and others ------
OURS = {"app.kubernetes.io/managed-by": "tidb-pitr-airflow", "tidb-pitr-airflow/cluster": "basic"}
STORAGE = {"s3": {k: v for k, v in S3.items()}}
ROOT = "backups"
FOREIGN_KINDS = ["ours"] * 5 + ["no-labels", "other-cluster", "other-bucket", "other-prefix", "filtered"]


def owned_snapshot(index: int, commit: int | None, phase: str, moment: datetime, kind: str) -> BackupView:
    stamp = moment.strftime("%Y%m%d%H%M%S")
    labels, bucket, prefix, spec = dict(OURS), "my-bucket", f"{ROOT}/snapshot-{stamp}", None
    if kind == "no-labels":
        labels = {}
    elif kind == "other-cluster":
        labels = {**OURS, "tidb-pitr-airflow/cluster": "other"}
    elif kind == "other-bucket":
        bucket = "dba-bucket"
    elif kind == "other-prefix":
        prefix = "backups"  # the review's case: a DBA's Retain backup whose prefix holds everything
    elif kind == "filtered":
        spec = {"tableFilter": ["shop.*"]}
    return snapshot(f"basic-snapshot-{stamp}-{index}", commit, phase, created=moment, labels=labels, bucket=bucket,
                    prefix=prefix, spec=spec)


@st.composite
def owned_histories(draw: st.DrawFn) -> tuple[History, list[Protection]]:
    """A history whose snapshots are a mix of ours, foreign ones and filtered ones, plus restores in progress."""
    history = draw(histories())
    mixed = []
    for index, view in enumerate(history.snapshots):
        moment = view.created or history.now
        kind = draw(st.sampled_from(FOREIGN_KINDS))
        phase = view.phase if not view.deleting else "Complete"
        mixed.append(owned_snapshot(index, view.commit_ts, phase, moment, kind))
    protections = []
    complete = [v for v in mixed if v.phase == "Complete" and v.commit_ts]
    for view in draw(st.lists(st.sampled_from(complete), max_size=2, unique_by=lambda v: v.name)) if complete else []:
        protections.append(Protection(view.name, view.commit_ts or 0, f"restore from {view.name}"))
    return dataclasses.replace(history, snapshots=mixed), protections
