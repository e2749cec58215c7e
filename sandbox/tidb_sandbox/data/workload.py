"""A small OLTP workload (inserts, updates, deletes on one table) writing into ClusterData."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from .mvcc import Change, ClusterData, Row
from .tso import TsoAllocator

CUSTOMERS = 500
INITIAL_ROWS = 200


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a rounded normal for large ones."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class Workload:
    """Writes a Poisson mix of row operations at TSOs from the allocator (a PD stand-in)."""

    def __init__(
        self,
        data: ClusterData,
        alloc: TsoAllocator,
        rng: random.Random,
        *,
        inserts_per_s: float,
        updates_per_s: float,
        deletes_per_s: float,
        table: str = "orders",
    ) -> None:
        self.data = data
        self.alloc = alloc
        self.rng = rng
        self.rates = {"insert": inserts_per_s, "update": updates_per_s, "delete": deletes_per_s}
        self.table = table
        self._prefix = f"{table}/"
        # Ids of live rows in a list (O(1) random pick) plus their positions (O(1) removal), and the
        # rows as this workload last wrote them, so op() works before its changes are applied.
        self._live: list[int] = []
        self._pos: dict[int, int] = {}
        self._rows: dict[int, Row] = {}
        for key, row in data.rows_now().items():
            if key.startswith(self._prefix):
                self._add_live(int(key[len(self._prefix) :]), row)
        ever = [int(k[len(self._prefix) :]) for k in data.keys() if k.startswith(self._prefix)]
        self._next_id = max(ever, default=0) + 1

    def key(self, row_id: int) -> str:
        # Zero-padded so keys sort like TiDB's integer handles do.
        return f"{self._prefix}{row_id:010d}"

    @property
    def live_count(self) -> int:
        return len(self._live)

    def tick(self, elapsed_s: float) -> list[Change]:
        """Changes for `elapsed_s` seconds of traffic, stamped now and applied to the data."""
        counts = {kind: poisson(self.rng, rate * elapsed_s) for kind, rate in self.rates.items()}
        kinds = [kind for kind, count in counts.items() for _ in range(count)]
        self.rng.shuffle(kinds)
        changes = [change for kind in kinds if (change := self.op(kind, self.alloc.next())) is not None]
        self.data.apply(changes)
        return changes

    def op(self, kind: str, ts: int) -> Change | None:
        """One operation at `ts` (not yet applied); updates/deletes on an empty table do nothing."""
        if kind == "insert":
            row_id = self._next_id
            self._next_id += 1
            row = self._new_row(row_id)
            self._add_live(row_id, row)
            return Change(ts, self.key(row_id), row)
        if not self._live:
            return None
        row_id = self._live[self.rng.randrange(len(self._live))]
        key = self.key(row_id)
        if kind == "delete":
            self._remove_live(row_id)
            return Change(ts, key, None)
        if kind == "update":
            current = self._rows[row_id]
            row = {**current, "amount": self._amount(), "version": int(current.get("version", 0)) + 1}
            self._rows[row_id] = row
            return Change(ts, key, row)
        raise ValueError(f"unknown operation {kind!r}")

    def _new_row(self, row_id: int) -> Row:
        return {
            "id": row_id,
            "customer": f"c{self.rng.randrange(CUSTOMERS):04d}",
            "amount": self._amount(),
            "version": 1,
        }

    def _amount(self) -> float:
        return round(self.rng.uniform(1, 500), 2)

    def _add_live(self, row_id: int, row: Row) -> None:
        self._pos[row_id] = len(self._live)
        self._live.append(row_id)
        self._rows[row_id] = row

    def _remove_live(self, row_id: int) -> None:
        del self._rows[row_id]
        at = self._pos.pop(row_id)
        last = self._live.pop()
        if last != row_id:
            self._live[at] = last
            self._pos[last] = at


def seed_history(
    data: ClusterData,
    alloc: TsoAllocator,
    start: datetime,
    end: datetime,
    *,
    ops_per_hour: float,
    rng: random.Random,
    initial_rows: int = INITIAL_ROWS,
    table: str = "orders",
) -> int:
    """Write past traffic from `start` to `end`: a batch of rows at `start`, then operations spaced by
    exponential gaps (mix 50% insert / 40% update / 10% delete). Returns the number of changes written.
    """
    if end <= start:
        raise ValueError("seed_history needs start < end")
    workload = Workload(data, alloc, rng, inserts_per_s=0, updates_per_s=0, deletes_per_s=0, table=table)
    changes = [c for c in (workload.op("insert", alloc.at(start)) for _ in range(initial_rows)) if c]
    rate_per_s = ops_per_hour / 3600.0
    at = start
    kinds, weights = ("insert", "update", "delete"), (0.5, 0.4, 0.1)
    while rate_per_s > 0:
        at += timedelta(seconds=rng.expovariate(rate_per_s))
        if at >= end:
            break
        change = workload.op(rng.choices(kinds, weights)[0], alloc.at(at))
        if change is not None:
            changes.append(change)
    data.apply(changes)
    return len(changes)
