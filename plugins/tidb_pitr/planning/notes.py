"""The lines DAG run notes say, built from plain values: outcome or reason first, times as the page shows them.

Airflow shows a run's note in the run's header cut to its first line, so every note starts with a headline of at
most `HEADLINE` characters (the outcome, or a refusal's reason and the window's bounds); the details follow in a
paragraph of their own. Times are UTC, with the cluster's local time beside them where its timezone is not UTC.
Pure: the task bodies publish these through `runtime.notes.publish_note`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..tso import tso_to_dt
from ..units import format_bytes, format_duration

# Characters of a note's first line that Airflow 3.3's run header shows whole in a 1400 px wide window (measured on
# the browser tests' screenshots: about 125, then it cuts the line with "...").
HEADLINE = 120
_ELLIPSIS = "…"


def note_time(when: int | datetime, timezone: str = "UTC") -> str:
    """`2026-11-21 05:30:00Z`, or `2026-11-21 05:30:00Z (13:30:00 Asia/Shanghai)` in a cluster not on UTC (the
    local date too when it is another day). `when` is a TSO or an aware datetime."""
    moment = tso_to_dt(when) if isinstance(when, int) else when
    if moment.tzinfo is None:
        raise ValueError("note_time needs a timezone-aware datetime")
    moment = moment.astimezone(UTC)
    text = f"{moment:%Y-%m-%d %H:%M:%S}Z"
    if timezone in ("UTC", "Etc/UTC"):
        return text
    there = moment.astimezone(ZoneInfo(timezone))
    shown = f"{there:%H:%M:%S}" if there.date() == moment.date() else f"{there:%Y-%m-%d %H:%M:%S}"
    return f"{text} ({shown} {timezone})"


def short_time(ts: int) -> str:
    """`2026-11-21 05:30Z`: a window's bound in a headline, where room is short."""
    return f"{tso_to_dt(ts):%Y-%m-%d %H:%M}Z"


def _fit(text: str, room: int) -> str:
    """`text`, or as many of its first words as fit in `room` with an ellipsis (a word is cut only when alone)."""
    if len(text) <= room:
        return text
    cut = text[:max(0, room - 1)]
    words = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return words.rstrip(" ,;:") + _ELLIPSIS


def reason_of(message: str) -> str:
    """A refusal's reason: its first clause (up to `; `), without the window a message may already carry."""
    return message.split("; the recoverable window is", 1)[0].split("; ", 1)[0].strip()


def with_details(headline: str, details: str) -> str:
    """The headline, cut to `HEADLINE`, then the whole text as a paragraph of its own (when it says more)."""
    head = _fit(" ".join(headline.split()), HEADLINE)
    body = " ".join(details.split())
    return head if not body or body == head else f"{head}\n\n{body}"


def refusal_note(prefix: str, message: str, window: tuple[int, ...] | None) -> str:
    """`Refused: <reason> | window 2026-10-22 00:00Z to 2026-11-21 05:29Z`, then the whole message below.

    `window` is (earliest, latest) TSOs, `()` for no recoverable window, None when it was not read. The window's
    bounds always fit in the headline: the reason is cut to leave them room."""
    bounds = ("" if window is None else " | no recoverable window" if not window
              else f" | window {short_time(window[0])} to {short_time(window[1])}")
    reason = _fit(reason_of(message), HEADLINE - len(prefix) - len(bounds) - 1)
    return with_details(f"{prefix} {reason}{bounds}", message)


def dry_run_note(summary: str) -> str:
    return with_details(f"Dry run: {summary}", f"Dry run, nothing was created or changed: {summary}")


def size_text(size: float | None) -> str:
    return "unknown size" if size is None else format_bytes(size)


def snapshot_note(name: str, commit_ts: int, size: int | None, path: str, timezone: str,
                  slot: datetime | None = None) -> str:
    """Snapshot: when its data was taken (commitTs), its size, where it is, and the slot its name comes from."""
    named = (f"; its name is its slot, {note_time(slot, timezone)} (the run's scheduled time, not when the data was "
             "taken)" if slot is not None else "")
    return with_details(f"Snapshot {name} Complete: {size_text(size)}, data as of {note_time(commit_ts, timezone)}",
                        f"Snapshot {name} Complete, data as of {note_time(commit_ts, timezone)} (its commitTs "
                        f"{commit_ts}); {size_text(size)} at {path}{named}")


def retention_note(deleted: list[str], freed: int, truncated_to: int | None, window: str, timezone: str) -> str:
    """Retention: what went, the bytes freed, how far the log was truncated, the window left."""
    what = f"deleted {len(deleted)} snapshot{'' if len(deleted) == 1 else 's'} ({size_text(freed)} freed)"
    truncated = (f"log truncated to {note_time(truncated_to, timezone)}" if truncated_to
                 else "log not truncated")
    return with_details(f"Retention: {what}, {truncated}",
                        f"Retention: {what}: {', '.join(deleted) or 'none'}; {truncated}; window now {window}")


def guard_note(level: str, lag_seconds: float | None, window: tuple[int, int] | None, log_backup: str | None,
               timezone: str) -> str:
    """Guard: the RPO level and lag first, then the window."""
    lag = "no checkpoint yet" if lag_seconds is None else f"lag {format_duration(lag_seconds)}"
    span = (f"window {short_time(window[0])} to {short_time(window[1])}" if window else "no recoverable window")
    detail = (f"log backup {log_backup or 'none'}: {lag} ({level}); recoverable window "
              + (f"{note_time(window[0], timezone)} to {note_time(window[1], timezone)}" if window else "empty"))
    return with_details(f"RPO {level}, {lag} | {span}", detail)


def duration_text(seconds: float | None) -> str:
    return "an unknown time" if seconds is None else format_duration(seconds)


def log_control_note(action: str, log_backup: str, *, until: datetime | None = None, reason: str = "",
                     checkpoint: int | None = None, timezone: str = "UTC") -> str:
    """Log control: what was done to the log backup first (paused until when), then why and where it stopped."""
    why = f": {reason}" if reason else ""
    at = f"; checkpoint {note_time(checkpoint, timezone)}" if checkpoint else ""
    if action == "pause":
        assert until is not None
        head = f"Paused log backup {log_backup} until {note_time(until, 'UTC')}{why}"
        return with_details(head, f"Paused log backup {log_backup} for maintenance until {note_time(until, timezone)}"
                                  f"{why}{at}. The guard leaves it paused until then and resumes it after; until "
                                  "then the checkpoint does not move and nothing written is restorable")
    done = {"resume": "Resumed", "stop": "Stopped"}.get(action, action)
    tail = (". Stopped is final: start a new log backup with the guard's start_new_log_backup, then take a "
            "snapshot" if action == "stop" else "")
    return with_details(f"{done} log backup {log_backup}{why}", f"{done} log backup {log_backup}{why}{at}{tail}")
