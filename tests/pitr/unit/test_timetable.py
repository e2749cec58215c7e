"""EveryNDaysTimetable: fixed phase from the epoch, local anchor across DST, Airflow's restriction rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pendulum
import pytest
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr import timetables
from tidb_pitr.timetables import EveryNDaysTimetable

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe", "America/Santiago",
         "Asia/Kolkata", "Pacific/Chatham", "America/Havana", "Europe/London"]


def utc(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


def local(dt: datetime, zone: str) -> datetime:
    return dt.astimezone(ZoneInfo(zone))


def runs(tt: EveryNDaysTimetable, earliest: datetime, count: int) -> list[DagRunInfo]:
    """`count` scheduled runs with catchup, fed back as the scheduler does."""
    restriction = TimeRestriction(earliest=pendulum.instance(earliest), latest=None, catchup=True)
    out: list[DagRunInfo] = []
    last = None
    for _ in range(count):
        info = tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        out.append(info)
        last = info.data_interval
    return out


# --- phase -------------------------------------------------------------------------------------------------

def test_month_end_does_not_double_fire() -> None:
    tt = EveryNDaysTimetable(days=2)
    # 2026-01-31 is a slot (an even number of days after 1970-01-01): the next one is Feb 2, not Feb 1.
    assert tt.align_to_prev(utc(2026, 1, 31)) == utc(2026, 1, 31)
    assert tt.next_after(utc(2026, 1, 31)) == utc(2026, 2, 2)
    assert tt.next_after(utc(2026, 1, 30, 23, 59)) == utc(2026, 1, 31)


@pytest.mark.parametrize(("year", "expected"), [(2028, date(2028, 3, 1)), (2026, date(2026, 3, 2))])
def test_february_leap_and_not(year: int, expected: date) -> None:
    tt = EveryNDaysTimetable(days=2)
    feb28 = utc(year, 2, 28)
    assert tt.align_to_prev(feb28) == feb28
    assert tt.next_after(feb28).date() == expected


def test_phase_is_counted_from_the_epoch_not_the_start_date() -> None:
    tt = EveryNDaysTimetable(days=2)
    a = runs(tt, utc(2026, 1, 1), 3)
    b = runs(tt, utc(2026, 1, 2), 3)
    assert [r.run_after for r in a][1:] == [r.run_after for r in b][:2]
    assert all((r.run_after.date() - date(1970, 1, 1)).days % 2 == 0 for r in a + b)


def test_a_year_in_berlin_keeps_local_midnight_across_dst() -> None:
    tt = EveryNDaysTimetable(days=2, anchor="00:00", timezone="Europe/Berlin")
    infos = runs(tt, utc(2025, 12, 31), 183)
    slots = [i.run_after for i in infos]
    assert all(local(s, "Europe/Berlin").time() == time(0, 0) for s in slots)
    days = [local(s, "Europe/Berlin").date() for s in slots]
    assert all((b - a).days == 2 for a, b in zip(days, days[1:], strict=False))
    gaps = {timedelta(seconds=(b - a).total_seconds()) for a, b in zip(slots, slots[1:], strict=False)}
    assert gaps == {timedelta(hours=47), timedelta(hours=48), timedelta(hours=49)}
    assert days[-1].year == 2026 and days[0] <= date(2026, 1, 2)
    # Each data interval is [previous slot, this slot] and the runs chain without gaps.
    assert all(i.data_interval.end == i.run_after for i in infos)
    assert all(a.data_interval.end == b.data_interval.start for a, b in zip(infos, infos[1:], strict=False))


def test_anchor_in_the_spring_forward_gap_moves_forward() -> None:
    tt = EveryNDaysTimetable(days=2, anchor="02:30", timezone="Europe/Berlin")
    # 2030-03-31 is a slot day and Berlin skips 02:00-03:00 that night: the run is at 03:30 CEST.
    slot = tt.next_after(utc(2030, 3, 30))
    assert slot == utc(2030, 3, 31, 1, 30)
    assert local(slot, "Europe/Berlin").replace(tzinfo=None) == datetime(2030, 3, 31, 3, 30)
    # The phase is untouched: the next one is back at 02:30 local two days later.
    assert local(tt.next_after(slot), "Europe/Berlin").replace(tzinfo=None) == datetime(2030, 4, 2, 2, 30)
    assert tt.align_to_prev(slot) == slot and tt.align_to_prev(slot - timedelta(seconds=1)) < slot


def test_ambiguous_anchor_takes_the_first_occurrence() -> None:
    tt = EveryNDaysTimetable(days=1, anchor="02:30", timezone="Europe/Berlin")
    # 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    assert tt.next_after(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
    assert tt.next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)


# --- restrictions ------------------------------------------------------------------------------------------

def test_catchup_starts_at_the_first_slot_on_or_after_start_date() -> None:
    tt = EveryNDaysTimetable(days=2)
    restriction = TimeRestriction(earliest=utc(2026, 2, 1, 12), latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    # 2026-02-02 is a slot (Jan 31 is one); its data interval starts at the slot before.
    assert info == DagRunInfo.interval(start=utc(2026, 1, 31), end=utc(2026, 2, 2))
    exact = TimeRestriction(earliest=utc(2026, 2, 2), latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=exact)
    assert info is not None and info.run_after == utc(2026, 2, 2)


def test_no_catchup_starts_at_the_latest_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timetables, "_now", lambda: utc(2026, 6, 10, 15))
    tt = EveryNDaysTimetable(days=2)
    restriction = TimeRestriction(earliest=utc(2020, 1, 1), latest=None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None and info.run_after == utc(2026, 6, 10)
    # A last run long ago does not bring back the missed ones either.
    old = DataInterval(utc(2025, 1, 1), utc(2025, 1, 3))
    info = tt.next_dagrun_info(last_automated_data_interval=old, restriction=restriction)
    assert info is not None and info.run_after == utc(2026, 6, 10)
    # Once that one ran, the next is the following slot, in the future.
    info = tt.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
    assert info is not None and info.run_after == utc(2026, 6, 12)
    # A start date in the future wins.
    later = TimeRestriction(earliest=utc(2026, 7, 1, 1), latest=None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=later)
    assert info is not None and info.run_after == utc(2026, 7, 2)


def test_latest_stops_the_schedule() -> None:
    tt = EveryNDaysTimetable(days=2)
    restriction = TimeRestriction(earliest=utc(2026, 1, 1), latest=utc(2026, 1, 5), catchup=True)
    last, seen = None, []
    while (info := tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        seen.append(info.run_after)
        last = info.data_interval
    assert seen == [utc(2026, 1, 1), utc(2026, 1, 3), utc(2026, 1, 5)]  # latest is inclusive


def test_manual_run_interval() -> None:
    tt = EveryNDaysTimetable(days=2)
    at = utc(2026, 1, 3, 7)
    assert tt.infer_manual_data_interval(run_after=at) == DataInterval(utc(2026, 1, 3), at)
    assert tt.infer_manual_data_interval(run_after=utc(2026, 1, 3)) == DataInterval(utc(2026, 1, 1), utc(2026, 1, 3))


# --- serialization and validation ----------------------------------------------------------------------------

def test_serialize_round_trip() -> None:
    tt = EveryNDaysTimetable(days=3, anchor="02:30", timezone="Asia/Shanghai")
    again = EveryNDaysTimetable.deserialize(tt.serialize())
    assert again == tt and again.serialize() == {"days": 3, "anchor": "02:30", "timezone": "Asia/Shanghai"}
    assert tt.summary == "every 3 days at 02:30 Asia/Shanghai"
    assert "02:30" in tt.description


def test_airflow_serialization_round_trip() -> None:
    # Goes through the plugin registry: a custom timetable only deserializes when a plugin registers it.
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    tt = EveryNDaysTimetable(days=2, anchor="00:00", timezone="Europe/Berlin")
    encoded = encode_timetable(tt)
    assert decode_timetable(encoded) == tt


def test_plugin_registers_the_timetable_and_macro() -> None:
    from tidb_pitr.plugin import TidbPitrPlugin, tso_to_iso

    assert TidbPitrPlugin.name == "tidb_pitr" and EveryNDaysTimetable in TidbPitrPlugin.timetables
    assert tso_to_iso("436568622965194754") == tso_to_iso(436568622965194754)
    assert tso_to_iso(0) == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"days": 0}, "days"), ({"days": True}, "days"), ({"anchor": "24:00"}, "anchor"), ({"anchor": "7:00"}, "anchor"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
])
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EveryNDaysTimetable(**kwargs)


# --- properties --------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    days=st.integers(min_value=1, max_value=7),
    hour=st.integers(min_value=0, max_value=23),
    minute=st.sampled_from([0, 15, 30, 59]),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)),
)
def test_slots_hold_phase_and_local_time(zone: str, days: int, hour: int, minute: int, start: datetime) -> None:
    tt = EveryNDaysTimetable(days=days, anchor=f"{hour:02d}:{minute:02d}", timezone=zone)
    tz = ZoneInfo(zone)
    when = start.replace(tzinfo=UTC)
    prev, nxt = tt.align_to_prev(when), tt.next_after(when)
    assert prev <= when < nxt
    assert tt.align_to_prev(nxt) == nxt and tt.prev_before(nxt) == prev
    for slot in (prev, nxt):
        day = slot.astimezone(tz).date()
        wanted = datetime.combine(day, time(hour, minute))
        first = wanted.replace(tzinfo=tz)  # fold=0: the first occurrence, or the pre-gap offset
        assert slot == first.astimezone(UTC)
        exists = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wanted
        if exists:
            assert slot.astimezone(tz).replace(tzinfo=None) == wanted
        else:  # in a spring-forward gap: moved forward, by less than the gap (at most 2 h anywhere)
            shifted = slot.astimezone(tz).replace(tzinfo=None)
            assert timedelta(0) < shifted - wanted <= timedelta(hours=2)
    prev_day, next_day = prev.astimezone(tz).date(), nxt.astimezone(tz).date()
    assert (next_day - prev_day).days == days
    assert (next_day - date(1970, 1, 1)).days % days == 0


@settings(max_examples=50, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(min_value=0, max_value=23),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)),
)
def test_scheduled_runs_chain(zone: str, hour: int, start: datetime) -> None:
    tt = EveryNDaysTimetable(days=2, anchor=f"{hour:02d}:00", timezone=zone)
    infos = runs(tt, start.replace(tzinfo=UTC), 20)
    assert infos[0].run_after >= start.replace(tzinfo=UTC)
    for a, b in zip(infos, infos[1:], strict=False):
        assert a.data_interval.end == b.data_interval.start == a.run_after < b.run_after
        assert timedelta(hours=46) <= b.run_after - a.run_after <= timedelta(hours=50)
