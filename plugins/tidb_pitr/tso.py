"""TiDB TSOs and times: conversion both ways, and parsing of the times users and CRs write.

A TSO is `physical_ms << 18 | logical`. Every TSO this project writes into a CR is a decimal string
(`tso_str`): the operator and BR both accept it, and it makes the operator's string comparisons exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

LOGICAL_BITS = 18
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
MAX_TSO = (1 << 64) - 1
# 10^12 ms after the epoch (2001-09-09): anything smaller is a typo or a unix time, not a TiDB TSO.
MIN_PLAUSIBLE_TSO = (10**12) << LOGICAL_BITS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# Date, `T` or space, time, optional fraction, optional zone (`Z`, `±hh:mm`, `±hhmm`).
_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?"
)

_MINUTES = re.compile(r"(?P<head>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2})(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?")


def dt_to_tso(dt: datetime, logical: int = 0) -> int:
    """TSO of a timezone-aware datetime (millisecond precision, sub-millisecond part dropped)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"dt_to_tso needs a timezone-aware datetime; got naive {dt.isoformat()}")
    if not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"logical part must be in [0, {LOGICAL_MASK}]; got {logical}")
    physical = (dt - EPOCH) // _MS
    if physical < 0:
        raise ValueError(f"{dt.isoformat()} is before 1970 and has no TSO")
    return physical << LOGICAL_BITS | logical


def _check_tso(ts: int) -> int:
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise TypeError(f"a TSO is an int; got {type(ts).__name__} {ts!r}")
    if not 0 <= ts <= MAX_TSO:
        raise ValueError(f"a TSO is an unsigned 64-bit integer; got {ts}")
    return ts


def tso_to_dt(ts: int) -> datetime:
    """The UTC time of a TSO (its physical part; the logical counter is dropped)."""
    return EPOCH + timedelta(milliseconds=_check_tso(ts) >> LOGICAL_BITS)


def tso_str(ts: int) -> str:
    """The decimal string form every CR gets (`commitTs`, `logTruncateUntil`, `pitrRestoredTs`, ...)."""
    return str(_check_tso(ts))


def tso_iso(ts: int) -> str:
    """`2022-10-10T04:45:32.283Z`: a TSO as a readable UTC time, for messages and reports."""
    return tso_to_dt(ts).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tso_label(ts: int) -> str:
    """`2022-10-10T04:45:32.283Z (TSO 436562003524714497)`: what logs print wherever a TSO appears."""
    return f"{tso_iso(ts)} (TSO {ts})"


def lag(checkpoint_ts: int, now: datetime) -> timedelta:
    """How far a log backup checkpoint is behind `now` (negative if the checkpoint is ahead)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("lag needs a timezone-aware `now`")
    return now - tso_to_dt(checkpoint_ts)


def _zone_offset(zone: str) -> timedelta:
    if zone in ("Z", "z"):
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad UTC offset {zone}")
    return sign * timedelta(hours=hours, minutes=minutes)


def _parse_datetime(match: re.Match[str], zone: str) -> datetime:
    naive = datetime.fromisoformat(f"{match['date']}T{match['time']}")  # raises on 2026-02-30 etc.
    frac = match["frac"]
    if frac:
        # Truncate, never round: a TSO has millisecond precision and rounding up could step past the target.
        naive += timedelta(microseconds=int(frac[1:7].ljust(6, "0")))
    return naive.replace(tzinfo=UTC) - _zone_offset(zone)


def parse_user_time(text: str, *, field: str = "restore_time") -> int:
    """A user-supplied time as a TSO: RFC 3339 with a zone, `YYYY-MM-DD HH:MM:SS±hh:mm`, or a decimal TSO.

    A time without a zone is refused rather than guessed: BR refuses it too (reference section 1.3), and
    guessing the zone is how a restore lands hours away from the moment the user meant.
    """
    if not isinstance(text, str):
        raise ValueError(f"{field}: expected a string, got {type(text).__name__}")
    value = text.strip()
    if not value:
        raise ValueError(f"{field}: is empty; give a time with a timezone (2026-11-21T05:30:00Z) or a TSO")
    if value.isascii() and value.isdigit():
        ts = int(value)
        if ts < MIN_PLAUSIBLE_TSO:
            raise ValueError(
                f"{field}: {value} is not a TSO (a TiDB TSO is an 18-digit number such as "
                f"436568622965194754; a unix time is not accepted); give a time like 2026-11-21T05:30:00Z"
            )
        if ts > MAX_TSO:
            raise ValueError(f"{field}: {value} is larger than any TSO")
        return ts
    minutes = _MINUTES.fullmatch(value)
    if minutes is not None:  # to the minute, as people type a time: refused (RFC 3339 has seconds), saying so
        date, time = minutes["head"][:10], minutes["head"][11:] + ":00"
        lacks = "no seconds" if minutes["zone"] else "no timezone"  # the example adds the seconds too
        raise ValueError(f'{field}: "{value}" has {lacks}; write it as {date}T{time}Z or {date} {time}+08:00, '
                         "or give a TSO")
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{field}: cannot read {value!r}; write a time with a timezone such as 2026-11-21T05:30:00Z, "
            f"2026-11-21T05:30:00+08:00 or 2026-11-21 05:30:00+0800, or give a TSO"
        )
    if match["zone"] is None:
        date, time = match["date"], match["time"]
        raise ValueError(
            f'{field}: "{value}" has no timezone; write it as {date}T{time}Z or {date} {time}+08:00, or give a TSO'
        )
    try:
        return dt_to_tso(_parse_datetime(match, match["zone"]))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{field}: {value!r} is not a valid time: {exc}") from None


def parse_cr_ts(text: str | None) -> int | None:
    """A TS string as TiDB Operator reads it (`ParseTSString`): decimal TSO, `YYYY-MM-DD HH:MM:SS`, RFC 3339.

    For reading what is already in a CR (e.g. `logSuccessTruncateUntil` written by hand as a date).
    A zone-less date is taken as UTC, the operator container's usual zone. Empty -> None; unreadable -> ValueError.
    """
    if text is None:
        return None
    value = str(text).strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return _check_tso(int(value))
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise ValueError(f"cannot parse ts string {value!r}")
    try:
        return dt_to_tso(_parse_datetime(match, match["zone"] or "Z"))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"cannot parse ts string {value!r}: {exc}") from None
