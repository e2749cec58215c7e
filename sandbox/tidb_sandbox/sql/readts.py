"""Read timestamps: @@tidb_snapshot values, AS OF TIMESTAMP expressions, and the GC safe point.

Datetimes are read in the session time zone (UTC unless the client sets `time_zone`) and become TSOs of
millisecond precision, as in TiDB (`oracle.GoTimeToTS`). The GC safe point follows TiDB's GC worker
(`pkg/store/gcworker/gc_worker.go`): a run sets it to the run's time minus gc_life_time, runs come every
gc_run_interval (0, the default: continuously, i.e. at every read), and it never moves back. Each cluster's
safe point is also held at its service safe points (`ClusterTimes`): a log backup's holds it at the task's
checkpoint, so a lagging log backup keeps old versions readable, as on a real cluster. The sandbox keeps no
running transactions that would hold it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlglot import expressions as exp

from ..data.tso import LOGICAL_BITS, TsoAllocator, dt_to_tso, physical_ms, tso_to_dt
from . import errors
from .config import SqlConfig

_DATETIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?)?$")
GC_TICK_MS = 60_000  # gcWorkerTickInterval
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


@dataclass(frozen=True)
class GcRun:
    """What the GC worker's last run left in mysql.tidb: its time and the safe point it set."""

    run_ms: int  # tikv_gc_last_run_time, Unix milliseconds
    safe_point: int  # tikv_gc_safe_point, a TSO (millisecond precision, as TiDB stores it)


class ReadTimes:
    """Now, the GC safe point, and the checks TiDB makes on a read TSO."""

    def __init__(self, alloc: TsoAllocator, config: SqlConfig) -> None:
        self.alloc = alloc
        self.config = config
        self.started_ts = alloc.next()  # the GC worker starts with TiDB and runs at once
        self._lock = threading.Lock()
        self._last: GcRun | None = None

    def now(self) -> int:
        return self.alloc.next()

    def gc_run(self, now: int) -> GcRun:
        """The GC worker's last run as of `now`, brought up to date lazily.

        As `GCWorker.checkPrepare` does on each tick of the leader (every minute, `gcWorkerTickInterval`,
        the first at start): a run is due gc_run_interval after the last one (`checkGCInterval`), sets
        safe point = its time - gc_life_time (`calcNewTxnSafePoint`), and is skipped, without recording its
        time, when that would move the safe point back (a raised life time: "last safe point is later than
        current one"), so a later tick tries again. A run interval under a minute ticks at that interval
        (TiDB's minimum is 10m); 0 runs at every read.
        """
        life_ms = round(self.config.gc_life_time * 1000)
        every_ms = round(self.config.gc_run_interval * 1000)
        start_ms, now_ms = physical_ms(self.started_ts), physical_ms(now)
        with self._lock:
            last = self._last or self._run(start_ms, life_ms, None)
            if every_ms <= 0:
                last = self._run(now_ms, life_ms, last)
            else:
                tick_ms = min(GC_TICK_MS, every_ms)
                period_ms = -(-every_ms // tick_ms) * tick_ms  # the first tick at or after each due time

                def tick_at_or_after(ms: int) -> int:
                    return start_ms + -(-(ms - start_ms) // tick_ms) * tick_ms

                # The first run that moves the safe point forward, then one per period up to now.
                first = tick_at_or_after(max(last.run_ms + every_ms, physical_ms(last.safe_point) + life_ms + 1))
                if first <= now_ms:
                    last = self._run(first + (now_ms - first) // period_ms * period_ms, life_ms, last)
            self._last = last
            return last

    @staticmethod
    def _run(run_ms: int, life_ms: int, last: GcRun | None) -> GcRun:
        safe_point = max(0, run_ms - life_ms) << LOGICAL_BITS
        if last is not None and safe_point <= last.safe_point:
            return last  # TiDB never decreases the safe point
        return GcRun(run_ms, safe_point)

    def safe_point(self, now: int) -> int:
        return self.gc_run(now).safe_point

    def settle(self) -> None:
        """Bring the GC state up to now under the current settings: call before they change, so that runs
        made under the old settings stay made (e.g. a safe point that a short life time advanced)."""
        self.gc_run(self.now())

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


class ClusterTimes(ReadTimes):
    """One cluster's view of the GC: the worker's safe point, held back at the cluster's service safe points.

    TiDB's GC worker asks PD for the minimum service safe point before it saves its own and uses it when it
    is lower (pingcap/tidb `pkg/store/gcworker/gc_worker.go` `setGCWorkerServiceSafePoint`: "there's another
    service in the cluster requires an earlier safe point. gc will continue with the earlier one"; on master
    the log backup's GC barrier blocks `advanceTxnSafePoint` the same way), and writes the result to mysql.tidb
    `tikv_gc_safe_point`. A log backup's advancer keeps the service safe point `log-backup-coordinator` (TTL
    24 h) just below the task's checkpoint (pingcap/tidb `br/pkg/streamhelper/advancer_env.go`
    `PDRegionScanner.BlockGCUntil`). Like the worker's own, the held safe point never moves back.
    """

    def __init__(self, base: ReadTimes, hold: Callable[[], int | None]) -> None:
        self.base = base
        self.hold = hold  # the lowest service safe point of the cluster, None when nothing holds it
        self.alloc, self.config, self.started_ts = base.alloc, base.config, base.started_ts
        self._lock = threading.Lock()
        self._floor = 0

    def gc_run(self, now: int) -> GcRun:
        run = self.base.gc_run(now)
        held = self.hold()
        safe = run.safe_point if held is None else min(run.safe_point, held)
        with self._lock:
            self._floor = max(self._floor, safe)
            return GcRun(run.run_ms, self._floor)

    def settle(self) -> None:
        self.base.settle()
