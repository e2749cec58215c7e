"""The sandbox's one clock: every sleep, wall time, monotonic time and TSO of the sandbox reads it.

`RealClock` (the default: the demo, the stacks, the benchmarks) is the machine's time. `ManualClock`
(`python -m tidb_sandbox up --clock manual`) stands still until a test advances it: `advance(seconds)` wakes
the sleepers due within the span in time order, moving "now" to each one's wake time and letting the
sandbox settle before the next, so a chain of sleeps inside the span all run; `settle()` returns once no
coroutine of the sandbox can run, no sleeper is due and no storage work is in flight in a thread. Virtual
time starts at the machine's time when the clock is made and only moves forward, so TSOs and
creationTimestamps stay distinct and ordered. (client-go's controllers take time from an injected clock,
`k8s.io/utils/clock`, so tests can manipulate it; this is the same idea for one process.)

The clock in use is process-wide (`current()`, `use()`): the sandbox is one process with one time. Code reads
it through the module's functions (`clock.now()`, `await clock.sleep(s)`, `await clock.to_thread(fn)`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

MODES = ("real", "manual")
# settle(): how many loop iterations in a row must find nothing runnable before the sandbox counts as idle.
IDLE_ROUNDS = 3
# settle(): how long one call may wait for the sandbox to go idle before it says it did not.
SETTLE_TIMEOUT = 60.0


class NotIdle(RuntimeError):
    """settle() gave up: the sandbox kept working (a coroutine that never waits on the clock)."""


class Clock(Protocol):
    mode: str

    def now(self) -> datetime: ...
    def time(self) -> float: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...
    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T: ...
    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...
    async def settle(self) -> None: ...


class _Base:
    """What both clocks share: thread work counted, and settle()'s wait for an idle event loop."""

    mode = "base"

    def __init__(self) -> None:
        self._threads = 0  # to_thread calls not yet returned to their caller

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def time(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """asyncio.to_thread, counted: settle() waits for thread work (storage I/O) in flight."""
        self._threads += 1
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self._threads -= 1

    @property
    def busy_threads(self) -> int:
        return self._threads

    def _wake_due(self) -> int:
        """Wake the sleepers whose time has come; how many (a real clock's sleepers wake themselves)."""
        return 0

    async def _quiesce(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Yield to the loop until, IDLE_ROUNDS times in a row, nothing else is ready to run, no thread work is in
        flight and no sleeper is due. The loop's ready queue is asyncio's own (`BaseEventLoop._ready`); a loop
        without one gets the rounds without the check."""
        loop = asyncio.get_running_loop()
        deadline = _time.monotonic() + timeout
        quiet = 0
        while quiet < IDLE_ROUNDS:
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", ())
            if not self._wake_due() and len(ready) == 0 and self._threads == 0:
                quiet += 1
                continue
            quiet = 0
            if self._threads and not len(ready):
                await asyncio.sleep(0.001)  # a thread is working: do not spin against it
            if _time.monotonic() > deadline:
                raise NotIdle(f"the sandbox did not go idle within {timeout:.0f} s "
                              f"({len(ready)} callbacks ready, {self._threads} thread calls in flight)")


class RealClock(_Base):
    """The machine's time. settle() waits only for the work that can run now (nothing is advanced)."""

    mode = "real"

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)

    async def settle(self) -> None:
        await self._quiesce()


class ManualClock(_Base):
    """Virtual time that moves only on advance(); starts at the machine's time (so TSOs look real)."""

    mode = "manual"

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        self._wall0 = _time.time() if start is None else start
        self._mono0 = _time.monotonic()
        self._elapsed = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []  # (wake at, order, future)
        self._lock: asyncio.Lock | None = None

    def time(self) -> float:
        return self._wall0 + self._elapsed

    def monotonic(self) -> float:
        return self._mono0 + self._elapsed

    @property
    def elapsed(self) -> float:
        return self._elapsed

    @property
    def sleepers(self) -> int:
        return sum(1 for *_, fut in self._sleepers if not fut.done())

    def next_wake(self) -> float | None:
        """Seconds from now to the earliest sleeper's wake time, None when nobody sleeps."""
        self._drop_done()
        return self._sleepers[0][0] - self._elapsed if self._sleepers else None

    def _drop_done(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._seq), fut))
        await fut

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        """asyncio.wait_for on virtual time: TimeoutError once `timeout` virtual seconds have passed."""
        if timeout is None:
            return await aw
        task = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.sleep(timeout))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        raise TimeoutError

    def _wake_due(self) -> int:
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            *_, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
                woken += 1
        return woken

    async def settle(self) -> None:
        async with self._guard():
            await self._settle()

    async def _settle(self) -> None:
        self._wake_due()
        await self._quiesce()

    async def advance(self, seconds: float) -> float:
        """Move time forward by `seconds`, waking every sleeper due on the way at its own wake time and settling
        after each; returns the seconds elapsed since the clock started."""
        if seconds < 0:
            raise ValueError(f"time only moves forward: cannot advance by {seconds} s")
        async with self._guard():
            target = self._elapsed + seconds
            await self._settle()
            while True:
                self._drop_done()
                if not self._sleepers or self._sleepers[0][0] > target:
                    break
                self._elapsed = max(self._elapsed, self._sleepers[0][0])
                await self._settle()
            self._elapsed = max(self._elapsed, target)
            await self._settle()
            return self._elapsed

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock


_current: Clock = RealClock()


def current() -> Clock:
    return _current


def make(mode: str) -> Clock:
    if mode == "real":
        return RealClock()
    if mode == "manual":
        return ManualClock()
    raise ValueError(f"clock must be one of {', '.join(MODES)}, got {mode!r}")


def install(clock: Clock) -> Clock:
    """Make `clock` the process's clock (at start, before anything reads the time); returns the previous one."""
    global _current
    previous, _current = _current, clock
    return previous


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """`clock` as the process's clock for a block (tests)."""
    previous = install(clock)
    try:
        yield clock
    finally:
        install(previous)


# -- what the sandbox calls ------------------------------------------------------------------------------------
def now() -> datetime:
    """Wall time, UTC."""
    return _current.now()


def time() -> float:
    """Wall time, Unix seconds."""
    return _current.time()


def monotonic() -> float:
    return _current.monotonic()


async def sleep(seconds: float) -> None:
    await _current.sleep(seconds)


async def wait_for(aw: Awaitable[T], timeout: float | None) -> T:
    return await _current.wait_for(aw, timeout)


async def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return await _current.to_thread(fn, *args, **kwargs)


def describe() -> dict[str, Any]:
    """What GET /sandbox/v1/clock answers."""
    clock = _current
    body: dict[str, Any] = {"mode": clock.mode, "now": clock.now().isoformat().replace("+00:00", "Z"),
                            "time": clock.time(), "monotonic": clock.monotonic(),
                            "threadsBusy": getattr(clock, "busy_threads", 0)}
    if isinstance(clock, ManualClock):
        body.update(elapsed=clock.elapsed, sleepers=clock.sleepers, nextWake=clock.next_wake())
    return body
