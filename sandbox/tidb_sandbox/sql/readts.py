"""Read timestamps: @@tidb_snapshot values, AS OF TIMESTAMP expressions, and the GC safe point.

Datetimes are read in the session time zone (UTC unless the client sets `time_zone`) and become TSOs of
millisecond precision, as in TiDB (`oracle.GoTimeToTS`). The safe point is computed on demand as now
minus gc_life_time (TiDB's GC worker advances it every few minutes; the sandbox keeps no service safe
points, e.g. a log backup's).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlglot import expressions as exp

from ..data.tso import LOGICAL_BITS, TsoAllocator, dt_to_tso, physical_ms, tso_to_dt
from . import errors
from .config import SqlConfig

_DATETIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?)?$")
_INTERVAL_UNITS = {"MICROSECOND": "microseconds", "SECOND": "seconds", "MINUTE": "minutes", "HOUR": "hours",
                   "DAY": "days"}


def parse_datetime(text: str, tz: timezone) -> datetime | None:
    match = _DATETIME.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None


def format_datetime(ts: int, tz: timezone) -> str:
    """A TSO as TIDB_PARSE_TSO prints it: DATETIME(6) in the session time zone."""
    return tso_to_dt(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S.%f")


def snapshot_value_ts(value: str, tz: timezone) -> int:
    """@@tidb_snapshot: '' clears it, a decimal is a TSO, anything else must be a datetime."""
    value = value.strip()
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    dt = parse_datetime(value, tz)
    if dt is None:
        raise errors.wrong_timestamp(value)
    return dt_to_tso(dt)


def as_of_ts(expr: exp.Expression, tz: timezone, now: datetime) -> int:
    """AS OF TIMESTAMP <expr>, where TiDB takes any datetime expression; the sandbox evaluates a string,
    TIDB_PARSE_TSO(n), NOW()/CURRENT_TIMESTAMP and those plus or minus an INTERVAL."""
    return dt_to_tso(_datetime_of(expr, tz, now))


def _datetime_of(expr: exp.Expression, tz: timezone, now: datetime) -> datetime:
    if isinstance(expr, exp.Paren):
        return _datetime_of(expr.this, tz, now)
    if isinstance(expr, exp.Literal) and expr.is_string:
        dt = parse_datetime(expr.name, tz)
        if dt is None:
            raise errors.wrong_timestamp(expr.name)
        return dt
    if isinstance(expr, exp.CurrentTimestamp) or (isinstance(expr, exp.Anonymous) and expr.name.upper() == "NOW"):
        return now
    if isinstance(expr, exp.Anonymous) and expr.name.upper() == "TIDB_PARSE_TSO" and len(expr.expressions) == 1:
        arg = expr.expressions[0]
        if isinstance(arg, exp.Literal) and arg.name.isdigit():
            return tso_to_dt(int(arg.name)).astimezone(tz)
    if isinstance(expr, (exp.Add, exp.Sub)) and isinstance(expr.expression, exp.Interval):
        interval = expr.expression
        unit = interval.text("unit").upper()
        amount = interval.this
        if unit in _INTERVAL_UNITS and isinstance(amount, exp.Literal):
            delta = timedelta(**{_INTERVAL_UNITS[unit]: float(amount.name)})
            base = _datetime_of(expr.this, tz, now)
            return base + delta if isinstance(expr, exp.Add) else base - delta
    raise errors.not_supported(f"AS OF TIMESTAMP {expr.sql(dialect='mysql')}")


class ReadTimes:
    """Now, the GC safe point, and the checks TiDB makes on a read TSO."""

    def __init__(self, alloc: TsoAllocator, config: SqlConfig) -> None:
        self.alloc = alloc
        self.config = config

    def now(self) -> int:
        return self.alloc.next()

    def safe_point(self, now: int) -> int:
        kept_ms = int(self.config.gc_life_time * 1000)
        return max(0, physical_ms(now) - kept_ms) << LOGICAL_BITS

    def check_snapshot(self, ts: int) -> None:
        """SET @@tidb_snapshot: not in the future, not below the safe point (TiDB's 8055)."""
        now = self.now()
        if ts > now:
            raise errors.future_read()
        safe = self.safe_point(now)
        if ts < safe:
            raise errors.snapshot_too_old(safe)

    def check_read(self, ts: int) -> None:
        """A read at `ts`: TiKV refuses versions the GC may have removed (TiDB's 9006)."""
        now = self.now()
        if ts > now:
            raise errors.future_read()
        safe = self.safe_point(now)
        if ts < safe:
            raise errors.gc_too_early(ts, safe)
