"""The sandbox's manual clock: time moves only forward and only on advance(), sleepers wake in time order (a
chain of sleeps inside one advanced span all run), settle() waits for thread work, TSOs stay distinct and ordered."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest
from tidb_sandbox import clock
from tidb_sandbox.data.tso import TsoAllocator, tso_to_dt

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


def run(coro_fn):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        with clock.use(clock.ManualClock(start=START)) as manual:
            return await coro_fn(manual)

    return asyncio.run(main())


def test_time_stands_still_until_advanced_and_starts_at_the_given_wall_time() -> None:
    async def body(manual: clock.ManualClock) -> tuple[float, float, float, float]:
        before = (clock.time(), clock.monotonic())
        await asyncio.sleep(0.05)  # real time passes; virtual time does not
        after = (clock.time(), clock.monotonic())
        return (*before, *after)

    t0, m0, t1, m1 = run(body)
    assert t0 == t1 == START and m0 == m1
    assert clock.now().tzinfo is not None  # outside the block: the real clock again
    assert abs(clock.time() - time.time()) < 1


def test_sleepers_wake_in_time_order_each_at_its_own_time() -> None:
    async def body(manual: clock.ManualClock) -> list[tuple[str, float]]:
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append((name, manual.elapsed))

        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3.0), ("a", 1.0), ("b", 2.0), ("d", 9.0))]
        await manual.advance(5)
        assert manual.elapsed == 5 and manual.sleepers == 1
        await manual.advance(4)
        await asyncio.gather(*tasks)
        return woke

    assert run(body) == [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 9.0)]


def test_a_chain_of_sleeps_inside_the_advanced_span_all_run() -> None:
    async def body(manual: clock.ManualClock) -> tuple[list[float], float | None]:
        ticks: list[float] = []

        async def loop() -> None:
            while True:
                await clock.sleep(0.2)
                ticks.append(round(manual.elapsed, 6))

        task = asyncio.create_task(loop())
        await manual.advance(0.7)
        task.cancel()
        return ticks, manual.next_wake()

    ticks, next_wake = run(body)
    assert ticks == [0.2, 0.4, 0.6]
    assert next_wake is None  # the cancelled sleeper is gone


def test_time_never_goes_back() -> None:
    async def body(manual: clock.ManualClock) -> list[float]:
        seen = [clock.time()]
        for seconds in (0.0, 0.001, 2.5, 0.0):
            await manual.advance(seconds)
            seen.append(clock.time())
        with pytest.raises(ValueError, match="only moves forward"):
            await manual.advance(-1)
        seen.append(clock.time())
        return seen

    seen = run(body)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(START + 2.501)


def test_tsos_stay_distinct_and_ordered_and_follow_the_virtual_time() -> None:
    async def body(manual: clock.ManualClock) -> list[int]:
        alloc = TsoAllocator()
        tsos = [alloc.next() for _ in range(5)]  # time stands still: the logical part rises
        await manual.advance(1.5)
        tsos += [alloc.next() for _ in range(5)]
        return tsos

    tsos = run(body)
    assert tsos == sorted(set(tsos))
    assert tso_to_dt(tsos[0]).timestamp() == START
    assert tso_to_dt(tsos[-1]).timestamp() == START + 1.5


def test_settle_waits_for_thread_work_and_what_it_wakes() -> None:
    async def body(manual: clock.ManualClock) -> list[str]:
        done: list[str] = []
        release = threading.Event()

        async def worker() -> None:
            await clock.to_thread(release.wait, 5)
            done.append("thread")
            await clock.sleep(0)  # runs on without time passing
            done.append("after")

        task = asyncio.create_task(worker())
        await asyncio.sleep(0)
        threading.Timer(0.1, release.set).start()
        await manual.settle()
        await task
        return done

    assert run(body) == ["thread", "after"]


def test_wait_for_times_out_on_virtual_time_only() -> None:
    async def body(manual: clock.ManualClock) -> tuple[bool, str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        waiter = asyncio.create_task(clock.wait_for(queue.get(), 10))
        await manual.advance(9)
        pending = not waiter.done()
        await manual.advance(1)
        with pytest.raises(TimeoutError):
            await waiter
        queue.put_nowait("x")
        got = await clock.wait_for(queue.get(), 10)
        return pending, got

    assert run(body) == (True, "x")


def test_the_real_clock_refuses_nothing_and_advances_nothing() -> None:
    real = clock.RealClock()
    assert abs(real.time() - time.time()) < 1
    assert asyncio.run(real.wait_for(asyncio.sleep(0, "ok"), 1)) == "ok"
    assert not hasattr(real, "advance")
    with pytest.raises(ValueError, match="clock must be one of"):
        clock.make("virtual")
