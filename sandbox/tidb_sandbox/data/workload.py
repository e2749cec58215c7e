"""A small OLTP workload (inserts, updates, deletes over two databases of two tables each) writing into
ClusterData. It creates the databases and tables (their definition records) before the first row."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .mvcc import Change, ClusterData, Row
from .schema import Column, TableDef, database_definition, database_key, parse_key, row_key
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


def _money(rng: random.Random, high: float) -> float:
    return round(rng.uniform(1, high), 2)


@dataclass(frozen=True)
class WorkloadTable:
    """A table the workload writes: its definition, its share of the traffic, and how rows look."""

    table: TableDef
    weight: float
    new_row: Callable[[random.Random, int], Row]
    changed: Callable[[random.Random, Row], Row]  # the columns an update sets


def _bigint(name: str) -> Column:
    return Column(name, "bigint(20)")


def _varchar(name: str, size: int) -> Column:
    return Column(name, f"varchar({size})")


TABLES: tuple[WorkloadTable, ...] = (
    WorkloadTable(
        TableDef("shop", "orders", 110, (_bigint("id"), _bigint("customer_id"), Column("amount", "decimal(10,2)"),
                                         _varchar("status", 16), Column("version", "int(11)"))),
        4.0,
        lambda rng, i: {"id": i, "customer_id": rng.randrange(CUSTOMERS), "amount": _money(rng, 500),
                        "status": "new", "version": 1},
        lambda rng, row: {"amount": _money(rng, 500), "status": rng.choice(("paid", "shipped", "returned"))},
    ),
    WorkloadTable(
        TableDef("shop", "customers", 112, (_bigint("id"), _varchar("name", 64), _varchar("email", 128),
                                            _varchar("city", 32), Column("version", "int(11)"))),
        2.0,
        lambda rng, i: {"id": i, "name": f"customer {i}", "email": f"c{i}@example.com",
                        "city": rng.choice(("Berlin", "Lima", "Osaka", "Porto")), "version": 1},
        lambda rng, row: {"city": rng.choice(("Berlin", "Lima", "Osaka", "Porto", "Quito"))},
    ),
    WorkloadTable(
        TableDef("crm", "accounts", 120, (_bigint("id"), _bigint("customer_id"), _varchar("plan", 16),
                                          Column("balance", "decimal(12,2)"), Column("version", "int(11)"))),
        1.0,
        lambda rng, i: {"id": i, "customer_id": rng.randrange(CUSTOMERS), "plan": rng.choice(("free", "pro")),
                        "balance": _money(rng, 2000), "version": 1},
        lambda rng, row: {"balance": _money(rng, 2000)},
    ),
    WorkloadTable(
        TableDef("crm", "events", 122, (_bigint("id"), _bigint("account_id"), _varchar("kind", 32),
                                        Column("version", "int(11)"))),
        3.0,
        lambda rng, i: {"id": i, "account_id": rng.randrange(CUSTOMERS),
                        "kind": rng.choice(("login", "call", "email")), "version": 1},
        lambda rng, row: {"kind": rng.choice(("login", "call", "email", "visit"))},
    ),
)


@dataclass
class _Live:
    """One table's live handles in a list (O(1) random pick) plus their positions (O(1) removal), and the
    rows as the workload last wrote them, so op() works before its changes are applied."""

    ids: list[int] = field(default_factory=list)
    pos: dict[int, int] = field(default_factory=dict)
    rows: dict[int, Row] = field(default_factory=dict)
    next_id: int = 1

    def add(self, row_id: int, row: Row) -> None:
        if row_id not in self.pos:
            self.pos[row_id] = len(self.ids)
            self.ids.append(row_id)
        self.rows[row_id] = row

    def remove(self, row_id: int) -> None:
        del self.rows[row_id]
        at = self.pos.pop(row_id)
        last = self.ids.pop()
        if last != row_id:
            self.ids[at] = last
            self.pos[last] = at


class Workload:
    """Writes a Poisson mix of row operations at TSOs from the allocator (a PD stand-in), spread over the
    tables by their weights; `rates` are for all tables together."""

    def __init__(
        self,
        data: ClusterData,
        alloc: TsoAllocator,
        rng: random.Random,
        *,
        inserts_per_s: float,
        updates_per_s: float,
        deletes_per_s: float,
        tables: Sequence[WorkloadTable] = TABLES,
    ) -> None:
        self.data = data
        self.alloc = alloc
        self.rng = rng
        self.rates = {"insert": inserts_per_s, "update": updates_per_s, "delete": deletes_per_s}
        self.tables = list(tables)
        by_name = {(t.table.database, t.table.name): t for t in self.tables}
        self._live = {key: _Live() for key in by_name}
        for key, row in data.rows_now().items():
            parts = parse_key(key)
            if parts is not None and parts.handle is not None and (parts.database, parts.table) in by_name:
                self._live[(parts.database, parts.table)].add(parts.handle, row)
        for key in data.keys():
            parts = parse_key(key)
            if parts is not None and parts.handle is not None and (parts.database, parts.table) in by_name:
                live = self._live[(parts.database, parts.table)]
                live.next_id = max(live.next_id, parts.handle + 1)
        # Definitions the data lacks: written with the first changes (schema_changes or tick).
        databases = dict.fromkeys(t.table.database for t in self.tables)
        self._missing: list[tuple[str, Row]] = [
            (database_key(db), database_definition()) for db in databases if data.get(database_key(db)) is None
        ] + [(t.table.key, t.table.definition()) for t in self.tables if data.get(t.table.key) is None]

    @property
    def live_count(self) -> int:
        return sum(len(live.ids) for live in self._live.values())

    def schema_changes(self, ts: int) -> list[Change]:
        """CREATE DATABASE / CREATE TABLE for what the data lacks, at `ts` (not yet applied); once."""
        changes = [Change(ts, key, value) for key, value in self._missing]
        self._missing = []
        return changes

    def tick(self, elapsed_s: float) -> list[Change]:
        """Changes for `elapsed_s` seconds of traffic, stamped now and applied to the data."""
        if not self._missing:
            self._forget_dropped()
        changes = self.schema_changes(self.alloc.next()) if self._missing else []
        if not self.tables:  # everything it wrote to was dropped
            return []
        counts = {kind: poisson(self.rng, rate * elapsed_s) for kind, rate in self.rates.items()}
        kinds = [kind for kind, count in counts.items() for _ in range(count)]
        self.rng.shuffle(kinds)
        changes += [change for kind in kinds if (change := self.op(kind, self.alloc.next())) is not None]
        self.data.apply(changes)
        return changes

    def _forget_dropped(self) -> None:
        """Stop writing to tables whose definition is gone (DROP DATABASE): in TiDB the application's writes
        to them fail from then on, and nothing of theirs comes back."""
        gone = [t for t in self.tables if self.data.get(t.table.key) is None]
        for table in gone:
            self.tables.remove(table)
            del self._live[(table.table.database, table.table.name)]

    def op(self, kind: str, ts: int) -> Change | None:
        """One operation at `ts` (not yet applied); updates/deletes when no table has rows do nothing."""
        if kind not in self.rates:
            raise ValueError(f"unknown operation {kind!r}")
        if kind == "insert":
            table = self._pick(self.tables)
            live = self._live[(table.table.database, table.table.name)]
            row_id = live.next_id
            live.next_id += 1
            row = table.new_row(self.rng, row_id)
            live.add(row_id, row)
            return Change(ts, row_key(table.table.database, table.table.name, row_id), row)
        candidates = [t for t in self.tables if self._live[(t.table.database, t.table.name)].ids]
        if not candidates:
            return None
        table = self._pick(candidates)
        live = self._live[(table.table.database, table.table.name)]
        row_id = live.ids[self.rng.randrange(len(live.ids))]
        key = row_key(table.table.database, table.table.name, row_id)
        if kind == "delete":
            live.remove(row_id)
            return Change(ts, key, None)
        current = live.rows[row_id]
        row = {**current, **table.changed(self.rng, current), "version": int(current.get("version", 0)) + 1}
        live.rows[row_id] = row
        return Change(ts, key, row)

    def _pick(self, tables: Sequence[WorkloadTable]) -> WorkloadTable:
        return self.rng.choices(tables, [t.weight for t in tables])[0]


def seed_history(
    data: ClusterData,
    alloc: TsoAllocator,
    start: datetime,
    end: datetime,
    *,
    ops_per_hour: float,
    rng: random.Random,
    initial_rows: int = INITIAL_ROWS,
    tables: Sequence[WorkloadTable] = TABLES,
) -> int:
    """Write past traffic from `start` to `end`: the databases and tables, a batch of rows at `start`, then
    operations spaced by exponential gaps (mix 50% insert / 40% update / 10% delete). Returns the number
    of changes written.
    """
    if end <= start:
        raise ValueError("seed_history needs start < end")
    workload = Workload(data, alloc, rng, inserts_per_s=0, updates_per_s=0, deletes_per_s=0, tables=tables)
    changes = workload.schema_changes(alloc.at(start))
    changes += [c for c in (workload.op("insert", alloc.at(start)) for _ in range(initial_rows)) if c]
    data.apply(changes)
    return len(changes) + extend_history(data, alloc, start, end, ops_per_hour=ops_per_hour, rng=rng, tables=tables)


def extend_history(
    data: ClusterData,
    alloc: TsoAllocator,
    start: datetime,
    end: datetime,
    *,
    ops_per_hour: float,
    rng: random.Random,
    tables: Sequence[WorkloadTable] = TABLES,
) -> int:
    """Past traffic from `start` to `end` on top of the history `data` already holds (the same mix and rate as
    seed_history, continuing its rows and ids). Returns the number of changes written."""
    workload = Workload(data, alloc, rng, inserts_per_s=0, updates_per_s=0, deletes_per_s=0, tables=tables)
    rate_per_s = ops_per_hour / 3600.0
    changes: list[Change] = []
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
