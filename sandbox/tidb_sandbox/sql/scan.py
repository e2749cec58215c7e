"""Full-table reads take time, and the GC can overtake them: the cost of a scan and the checks made on the way.

A real ADMIN CHECKSUM TABLE reads every row and every public index of the table at its read TSO
(pingcap/tidb `pkg/executor/checksum.go` `appendRequest`: the record range plus one range per index, per
partition), and so does SELECT COUNT(*) without an index to use. Each coprocessor task checks its start TSO
against the safe point first: `pkg/store/copr/store.go` `kvStore.CheckVisibility` -> tikv/client-go
`tikv/kv.go` `KVStore.CheckVisibility` ("if startTime < cachedSafePoint ... ErrGCTooEarly"), which
`pkg/store/driver/error/error.go` `ToTiDBErr` turns into TiDB's 9006 "GC life time is shorter than
transaction duration". So a scan that runs longer than the room between its TSO and the safe point fails
part-way. The sandbox scans `scan_rate` bytes per second (sql/config.py), sleeping on the sandbox's clock so
the manual clock drives it, and checks the safe point at the start of each table and after every
`CHECK_EVERY` seconds of scanning (one batch of coprocessor tasks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .. import clock

CHECK_EVERY = 1.0  # seconds of scanning between two safe-point checks


class Visibility(Protocol):
    def check_read(self, ts: int) -> None: ...


def scan_seconds(size: int, rate: float) -> float:
    """How long a scan of `size` bytes takes at `rate` bytes/s (0: instant)."""
    return size / rate if rate > 0 and size > 0 else 0.0


async def scan_tables(times: Visibility, read_ts: int, sizes: Iterable[int], rate: float) -> None:
    """Spend the time a scan of tables of these sizes takes at `read_ts`; raises TiDB's 9006 as soon as a
    check finds the GC safe point past `read_ts` (nothing is answered then, as in TiDB)."""
    for size in sizes:
        times.check_read(read_ts)
        left = scan_seconds(size, rate)
        while left > 0:
            step = min(left, CHECK_EVERY)
            await clock.sleep(step)
            left -= step
            times.check_read(read_ts)
