"""RPO levels and when to announce them: pure, shared by the guard's check and the alert trigger.

The lag is `now - checkpoint`: it grows by itself while the checkpoint stands still, so a level can change with
no change to any CR. `announce` says which level changes are worth telling a person about, once each. A log backup
paused for maintenance (planning/pause.py) is not a breach while the pause lasts: `held_level` makes its lag a
notice, and a breach again once the pause has outlived its end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..cr.model import BackupView
from ..tso import tso_to_dt

OK, STARTING, WARN, CRITICAL = "ok", "starting", "warn", "critical"
RECOVERED = "recovered"
# A lag that would be a breach, while the log backup is paused for maintenance within its bound: one notice.
MAINTENANCE = "maintenance"
# How bad a level is; `starting` (a log just started, no checkpoint yet) is not a breach.
SEVERITY = {OK: 0, STARTING: 0, WARN: 1, CRITICAL: 2}


def rpo_level(lag: float | None, warn: float, critical: float, *, starting: bool = False) -> str:
    """The level of a checkpoint lag (seconds) against the thresholds. No lag (no checkpoint) is critical,
    unless the log backup has only just started."""
    if lag is None:
        return STARTING if starting else CRITICAL
    if lag <= warn:
        return OK
    if lag <= critical:
        return WARN
    return CRITICAL


def held_level(level: str, paused_until: datetime | None, now: datetime) -> str:
    """`level` for a log backup paused for maintenance until `paused_until` (None: not paused so): a breach (warn or
    critical) is MAINTENANCE until then, the breach itself from then on (the guard should have resumed it; the
    pause's end is already bounded below BR's pause GC TTL by planning.pause.maintenance_pause)."""
    if paused_until is not None and now < paused_until and SEVERITY.get(level, 0) > 0:
        return MAINTENANCE
    return level


def announce(announced: str, level: str) -> tuple[str, str | None]:
    """(the level now announced, what to announce or None), after seeing `level`.

    Getting worse is announced (warn, critical); getting back to ok after an announced breach is announced as
    `recovered`. Getting better without recovering (critical to warn) is not: the breach goes on, and a lag
    that then worsens again must not announce critical twice for one breach. A maintenance pause is announced
    once, as a notice, whatever was announced before it (it says why the lag grows); after it, a lag still over
    warn is a breach again (announced), and one back under warn is `recovered`.
    """
    if level == MAINTENANCE:
        return MAINTENANCE, (None if announced == MAINTENANCE else MAINTENANCE)
    if announced == MAINTENANCE:
        return (level, level) if SEVERITY[level] > 0 else (OK, RECOVERED)
    if SEVERITY[level] > SEVERITY[announced]:
        return level, level
    if SEVERITY[level] == 0 and SEVERITY[announced] > 0:
        return OK, RECOVERED
    return announced, None


def seconds_to_next_level(lag: float | None, warn: float, critical: float) -> float | None:
    """How long until the lag crosses the next threshold above it if the checkpoint does not move (None: no
    threshold is left above it, or there is no lag to grow)."""
    if lag is None:
        return None
    for threshold in (warn, critical):
        if lag <= threshold:
            # Just past it: the levels are inclusive (`lag <= warn` is ok).
            return threshold - lag + 0.001
    return None


def lag_seconds(checkpoint_ts: int | None, now: datetime | None = None) -> float | None:
    """Seconds from the checkpoint to `now` (default: the clock); None without a checkpoint."""
    if not checkpoint_ts:
        return None
    return ((now or datetime.now(UTC)) - tso_to_dt(checkpoint_ts)).total_seconds()


def started_at(view: BackupView) -> datetime | None:
    """When the log task started: log-start's completion, else the CR's timeStarted, else its start TS."""
    start = view.sub_statuses.get("log-start")
    candidates = [t for t in (start.time_completed if start else None, view.time_started) if t is not None]
    if view.commit_ts:
        candidates.append(tso_to_dt(view.commit_ts))
    return max(candidates) if candidates else None


def starting(view: BackupView, grace: timedelta, now: datetime | None = None) -> bool:
    """Started, and no checkpoint yet: the operator's tracker has not polled PD (every minute upstream). That is
    a log backup starting, not an RPO breach, for `grace` (the tracker interval plus a grace period)."""
    began = started_at(view)
    if view.checkpoint_ts or began is None:
        return False
    return (now or datetime.now(UTC)) - began <= grace
