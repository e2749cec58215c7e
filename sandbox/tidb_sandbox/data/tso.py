"""TiDB timestamps (TSO): `physical_ms << 18 | logical`, physical = Unix milliseconds in UTC."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .. import clock

LOGICAL_BITS = 18
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dt_to_tso(dt: datetime, logical: int = 0) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"datetime {dt.isoformat()} has no time zone; TSOs are defined in UTC")
    if not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"logical part {logical} out of range 0..{LOGICAL_MASK}")
    return ((dt - EPOCH) // timedelta(milliseconds=1)) << LOGICAL_BITS | logical


def tso_to_dt(ts: int) -> datetime:
    """The physical part as a UTC datetime (millisecond precision; the logical part is dropped)."""
    return EPOCH + timedelta(milliseconds=ts >> LOGICAL_BITS)


def physical_ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


def logical(ts: int) -> int:
    return ts & LOGICAL_MASK


def _utcnow() -> datetime:
    return clock.now()


class TsoAllocator:
    """A PD stand-in: every TSO it hands out is larger than all earlier ones, across threads.

    `clock` lets the demo run on a simulated clock; `at()` hands out TSOs for seeded history. `skew_seconds`
    puts PD's clock off the sandbox's (the workers'): PD takes its physical time from its own host's clock
    (pd `pkg/tso/tso.go` `UpdateTimestamp`, `time.Now()`), which NTP may leave off the Airflow workers'. A
    skew back in time never makes a TSO go backwards: PD keeps the last physical time and raises it only when
    the clock passes it.
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or _utcnow
        self.skew_seconds = 0.0
        self._lock = threading.Lock()
        self._last = 0
        self._last_at = 0

    @property
    def last(self) -> int:
        return self._last

    def next(self) -> int:
        """A fresh TSO from the clock; never repeats and never goes backwards, even if the clock does."""
        with self._lock:
            now = self._clock() + timedelta(seconds=self.skew_seconds)
            self._last = max(dt_to_tso(now), self._last + 1)
            return self._last

    def at(self, dt: datetime) -> int:
        """A TSO for a past instant; consecutive calls in one millisecond get rising logical parts.

        Later next() calls stay above every TSO handed out here.
        """
        base = dt_to_tso(dt)
        with self._lock:
            same_ms = physical_ms(self._last_at) == physical_ms(base)
            ts = self._last_at + 1 if same_ms and self._last_at >= base else base
            self._last_at = ts
            self._last = max(self._last, ts)
            return ts
