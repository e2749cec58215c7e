from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tidb_sandbox.data.tso import TsoAllocator, dt_to_tso, logical, physical_ms, tso_to_dt


def test_seed_vector_from_the_docs() -> None:
    # `Commit Ts: 436568622965194754` next to "Last Transition Time: 2022-10-10T04:45:31Z" in the seeds.
    ts = 436568622965194754
    assert tso_to_dt(ts) == datetime(2022, 10, 10, 4, 45, 32, 283000, tzinfo=UTC)
    assert logical(ts) == 2
    assert dt_to_tso(tso_to_dt(ts), logical=2) == ts
    assert dt_to_tso(tso_to_dt(ts)) == ts - 2


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_round_trip_at_millisecond_precision(dt: datetime) -> None:
    ts = dt_to_tso(dt)
    assert logical(ts) == 0
    assert tso_to_dt(ts) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def test_zone_aware_inputs_only() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        dt_to_tso(datetime(2024, 1, 1))
    east = datetime(2022, 10, 10, 12, 45, 32, tzinfo=UTC) + timedelta(hours=0)
    assert dt_to_tso(east.astimezone()) == dt_to_tso(east)


def test_allocator_is_monotonic_across_threads() -> None:
    alloc = TsoAllocator()
    seen: list[list[int]] = [[] for _ in range(4)]

    def work(out: list[int]) -> None:
        out.extend(alloc.next() for _ in range(2000))

    threads = [threading.Thread(target=work, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [ts for out in seen for ts in out]
    assert len(set(every)) == len(every)
    assert all(out == sorted(out) for out in seen)


def test_allocator_survives_a_clock_going_backwards() -> None:
    now = [datetime(2024, 5, 1, tzinfo=UTC)]
    alloc = TsoAllocator(clock=lambda: now[0])
    first = alloc.next()
    now[0] -= timedelta(seconds=5)
    assert alloc.next() > first


def test_history_tsos_are_unique_and_stay_below_later_next() -> None:
    alloc = TsoAllocator(clock=lambda: datetime(2024, 5, 1, tzinfo=UTC))
    instant = datetime(2024, 4, 1, 12, tzinfo=UTC)
    a, b = alloc.at(instant), alloc.at(instant)
    assert (a, b) == (dt_to_tso(instant), dt_to_tso(instant) + 1)
    assert physical_ms(b) == physical_ms(a)
    future = alloc.at(datetime(2024, 6, 1, tzinfo=UTC))  # history written ahead of the clock
    assert alloc.next() > future
