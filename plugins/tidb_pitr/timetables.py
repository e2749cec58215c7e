"""`EveryNDaysTimetable`: a run at a fixed local time every N calendar days, with a phase that never drifts.

`*/2` in the day-of-month field restarts every month (it fires on the 31st and again on the 1st), and a
48 h timedelta drifts by an hour in local time at each DST change. Here the slots are the local days whose
number since 1970-01-01 (local) is a multiple of N, each at the anchor's local time: across DST the local time
stays put, so the gap is 47 or 49 hours.

Airflow needs this class registered in a plugin (`tidb_pitr.plugin`) to (de)serialize DAGs that use it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import DateTime

_ANCHOR = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_EPOCH = date(1970, 1, 1).toordinal()


def _now() -> DateTime:
    return pendulum.now("UTC")


class EveryNDaysTimetable(Timetable):
    """Runs at `anchor` (local "HH:MM" in `timezone`) every `days` calendar days, counted from 1970-01-01.

    A run fires at its slot (`run_after` = the slot); its data interval is [previous slot, this slot].
    A local time that does not exist (spring-forward gap) moves forward by the gap (02:30 -> 03:30); one that
    exists twice (fall-back) is taken at its first occurrence.
    """

    def __init__(self, days: int = 2, anchor: str = "00:00", timezone: str = "UTC") -> None:
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be a positive integer; got {days!r}")
        match = _ANCHOR.fullmatch(anchor) if isinstance(anchor, str) else None
        if match is None:
            raise ValueError(f"anchor must be a local time 'HH:MM' from '00:00' to '23:59'; got {anchor!r}")
        self.days = days
        self.anchor = anchor
        self.timezone = timezone
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            msg = f"timezone must be an IANA time zone name such as 'Europe/Berlin'; got {timezone!r}"
            raise ValueError(msg) from None
        self._time = time(int(match[1]), int(match[2]))
        day = "day" if days == 1 else f"{days} days"
        self.description = f"At {anchor} ({timezone}) every {day}, counted from 1970-01-01; local time holds across DST"

    # --- slot arithmetic ------------------------------------------------------------------------------
    # Slots are identified by their local day; the instant is derived from it, never the other way round, so a
    # slot moved by a DST gap (or a skipped day) cannot shift the phase of the ones after it.

    def _slot_on(self, day: date) -> DateTime:
        """The UTC instant of the anchor on local `day` (fold=0: gap -> forward, ambiguous -> first)."""
        local = datetime.combine(day, self._time, tzinfo=self._zone)
        return pendulum.instance(local.astimezone(UTC))

    def _slot_day(self, when: datetime) -> date:
        """The local day of the latest slot at or before `when`."""
        local_day = when.astimezone(self._zone).date()
        day = date.fromordinal(local_day.toordinal() - (local_day.toordinal() - _EPOCH) % self.days)
        if self._slot_on(day) > when:  # before today's anchor: the slot one period earlier
            day -= timedelta(days=self.days)
        return day

    def align_to_prev(self, when: datetime) -> DateTime:
        """The latest slot at or before `when`."""
        return self._slot_on(self._slot_day(when))

    def align_to_next(self, when: datetime) -> DateTime:
        """The earliest slot at or after `when`."""
        prev = self.align_to_prev(when)
        return prev if prev == when else self.next_after(when)

    def next_after(self, when: datetime) -> DateTime:
        """The earliest slot strictly after `when`."""
        return self._slot_on(self._slot_day(when) + timedelta(days=self.days))

    def prev_before(self, when: datetime) -> DateTime:
        """The latest slot strictly before `when`."""
        return self.align_to_prev(when - timedelta(microseconds=1))

    # --- Timetable protocol -------------------------------------------------------------------------------

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        # Same shape as Airflow's CronTriggerTimetable: a run fires at its slot, not one period later.
        if restriction.catchup:
            if last_automated_data_interval is not None:
                slot = self.next_after(last_automated_data_interval.end)
            elif restriction.earliest is not None:
                slot = self.align_to_next(restriction.earliest)
            else:
                slot = self.align_to_next(_now())
        else:
            # No backfill: never earlier than the latest slot that has already passed.
            candidates = [self.align_to_prev(_now())]
            if last_automated_data_interval is not None:
                candidates.append(self.next_after(last_automated_data_interval.end))
            if restriction.earliest is not None:
                candidates.append(self.align_to_next(restriction.earliest))
            slot = max(candidates)
        if restriction.latest is not None and slot > restriction.latest:
            return None
        return DagRunInfo.interval(start=self.prev_before(slot), end=slot)

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        # A manual run covers what happened since the last slot strictly before it.
        return DataInterval(start=self.prev_before(run_after), end=pendulum.instance(run_after))

    def serialize(self) -> dict[str, Any]:
        return {"days": self.days, "anchor": self.anchor, "timezone": self.timezone}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(days=int(data["days"]), anchor=str(data["anchor"]), timezone=str(data["timezone"]))

    @property
    def summary(self) -> str:
        return f"every {self.days} days at {self.anchor} {self.timezone}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EveryNDaysTimetable):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((self.days, self.anchor, self.timezone))

    def __repr__(self) -> str:
        return f"EveryNDaysTimetable(days={self.days}, anchor={self.anchor!r}, timezone={self.timezone!r})"
