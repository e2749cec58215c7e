"""Restore drills, the pure part: when to restore to, which tables to compare, and how the comparison reads.

A drill restores the source as of a time T into an empty scratch cluster and compares each table there with
the source read as of T (`@@tidb_snapshot`): a row fingerprint in SQL that has no table ID in it, and
`ADMIN CHECKSUM TABLE` where BR kept the table's ID. That read is
exact only while T is after the source's GC safe point, so T is chosen with that in mind (`recent`), or the
tables are reported as not verified when it is not (`random` at an old T). No I/O here.
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..tso import LOGICAL_BITS, tso_iso
from ..units import format_duration
from .restore import PlanError
from .window import Window

MODES = ("recent", "random")
# TiDB's system schemas: never user data, never compared (`IsMemOrSysDB`).
SYSTEM_SCHEMAS = frozenset({"mysql", "sys", "information_schema", "performance_schema", "metrics_schema"})
_MS = 1 << LOGICAL_BITS


@dataclass(frozen=True)
class GcState:
    """What the source's GC keeps readable: reads at or after `safe_point_ts` are exact."""

    life_time: timedelta
    safe_point_ts: int


def _ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


def restorable_ranges(window: Window) -> list[tuple[int, int]]:
    """The window as closed ranges of TSOs, its gaps (open intervals) left out."""
    if window.earliest_ts is None or window.latest_ts is None:
        return []
    ranges, start = [], window.earliest_ts
    for a, b in sorted(window.gaps):
        ranges.append((start, a))
        start = b
    ranges.append((start, window.latest_ts))
    return [(a, b) for a, b in ranges if a <= b]


def pick_random(window: Window, rng: random.Random) -> int:
    """A time uniform over the restorable part of the window (millisecond steps, gaps excluded)."""
    ranges = restorable_ranges(window)
    if not ranges:
        raise PlanError(f"no recoverable window to drill in: {window.brief()}")
    weights = [_ms(b) - _ms(a) + 1 for a, b in ranges]
    a, b = rng.choices(ranges, weights=weights)[0]
    ts = rng.randint(_ms(a), _ms(b)) * _MS
    return min(max(ts, a), b)  # a range shorter than a millisecond keeps its own ends


def verifiable(ts: int, gc: GcState, headroom: timedelta) -> bool:
    """Whether the source can be read at `ts` for at least `headroom` more (the safe point moves on)."""
    return timedelta(milliseconds=_ms(ts) - _ms(gc.safe_point_ts)) >= headroom


def pick_recent(window: Window, checkpoint_ts: int, gc: GcState, *, margin: timedelta,
                headroom: timedelta, check_gc: bool = True) -> int:
    """`margin` before the log checkpoint, inside the window, and readable on the source for `headroom`.

    Raises PlanError with the reason when no such time exists (the log too far behind for the GC life time,
    or no window yet). `check_gc=False` leaves the GC to the caller (the drill sizes it from the source's
    tables: planning/drill_gc.py)."""
    if window.latest_ts is None or window.earliest_ts is None:
        raise PlanError(f"no recoverable window to drill in: {window.brief()}")
    ts = max(checkpoint_ts - int(margin.total_seconds() * 1000) * _MS, 0)
    ts = min(ts, window.latest_ts)
    if not window.contains(ts):
        raise PlanError(f"{tso_iso(ts)}, {format_duration(margin)} before the log checkpoint "
                        f"{tso_iso(checkpoint_ts)}, is not in the recoverable window {window.brief()}")
    if check_gc and not verifiable(ts, gc, headroom):
        behind = timedelta(milliseconds=_ms(gc.safe_point_ts) - _ms(ts))
        raise PlanError(
            f"the source cannot be read at {tso_iso(ts)} for the comparison: its GC safe point "
            f"{tso_iso(gc.safe_point_ts)} (tidb_gc_life_time {format_duration(gc.life_time)}) is "
            f"{'past it' if behind > timedelta(0) else 'less than ' + format_duration(headroom) + ' before it'}; "
            f"the log checkpoint {tso_iso(checkpoint_ts)} is too far behind. Fix the log backup's lag, or raise "
            f"tidb_gc_life_time above the lag plus {format_duration(headroom)}")
    return ts


# --- which tables ----------------------------------------------------------------------------------------

def check_filter(rules: Sequence[str]) -> list[str]:
    """Problems with table-filter rules (`db.table`, wildcards `* ? [...]`, `!` to exclude), one per rule."""
    problems = []
    for rule in rules:
        body = rule[1:] if rule.startswith("!") else rule
        db, dot, table = body.partition(".")
        if not dot or not db or not table or "." in table:
            problems.append(f"{rule!r} must be 'db.table' (wildcards * ? [..] allowed, '!' in front excludes)")
    return problems


def selected(db: str, table: str, rules: Sequence[str]) -> bool:
    """BR's table-filter semantics: the last rule that matches decides; no rule matching means excluded.
    Names match case-insensitively, as TiDB's (lower_case_table_names = 2). System schemas never match."""
    if db.lower() in SYSTEM_SCHEMAS:
        return False
    decision = False
    for rule in rules:
        negate = rule.startswith("!")
        db_rule, _, table_rule = (rule[1:] if negate else rule).partition(".")
        if fnmatch.fnmatchcase(db.lower(), db_rule.lower()) and fnmatch.fnmatchcase(table.lower(),
                                                                                  table_rule.lower()):
            decision = not negate
    return decision


def select_tables(names: Iterable[str], rules: Sequence[str]) -> list[str]:
    """The `db.table` names the rules select, sorted."""
    return sorted(n for n in names if selected(*n.split(".", 1), rules))


# --- the comparison --------------------------------------------------------------------------------------

def fingerprint_sql(database: str, table: str, columns: Sequence[str]) -> str:
    """The row fingerprint of one table, independent of its table ID: the row count and the XOR of MySQL's
    CRC32 over each row's columns joined by CONCAT_WS. CONCAT_WS skips NULLs, so an ISNULL flag per column
    keeps NULL apart from '' and from a shifted neighbour. Order-free (XOR), so no ORDER BY and no sort on
    either side; every column is in it, so one changed value changes the row's CRC32. Read the source at T
    with `@@tidb_snapshot` set to the TSO (AS OF TIMESTAMP takes a datetime, which drops the logical part)."""
    if not columns:
        raise ValueError(f"{database}.{table}: no columns to fingerprint")
    quoted = [_quote(c) for c in columns]
    text = ", ".join([*quoted, *(f"ISNULL({c})" for c in quoted)])
    return f"SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS(',', {text}))) FROM {_quote(database)}.{_quote(table)}"


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class TableSum:
    """One table as read for the comparison: its row of ADMIN CHECKSUM TABLE, its table ID, and its row
    fingerprint (`fingerprint_sql`: row count and BIT_XOR of CRC32), None when it was not taken."""

    crc64_xor: int
    total_kvs: int
    total_bytes: int
    table_id: int | None = None
    rows: int | None = None
    rows_crc32_xor: int | None = None
    fingerprint_problem: str | None = None  # why there is no fingerprint (a timeout, an error)

    @property
    def fingerprinted(self) -> bool:
        return self.rows is not None and self.rows_crc32_xor is not None

    def to_dict(self) -> dict[str, Any]:
        # As strings: a crc64 does not fit in a JavaScript number.
        return {"crc64_xor": str(self.crc64_xor), "total_kvs": self.total_kvs, "total_bytes": self.total_bytes,
                "table_id": self.table_id, "rows": self.rows, "rows_crc32_xor": self.rows_crc32_xor,
                "fingerprint_problem": self.fingerprint_problem}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSum:
        def optional(key: str) -> int | None:
            return None if data.get(key) is None else int(data[key])

        return cls(int(data["crc64_xor"]), int(data["total_kvs"]), int(data["total_bytes"]), optional("table_id"),
                   optional("rows"), optional("rows_crc32_xor"), data.get("fingerprint_problem"))


@dataclass(frozen=True)
class Comparison:
    """Source at T against the restored target, table by table. A table counts as verified only when a
    method that one changed value breaks compared it: the row fingerprint, or ADMIN CHECKSUM's crc64 under
    the same table ID. `passed` needs every table verified and none different."""

    matched: tuple[str, ...] = ()
    mismatched: tuple[tuple[str, str], ...] = ()  # (table, what differs)
    missing: tuple[str, ...] = ()  # at the source at T, not in the restore
    unexpected: tuple[str, ...] = ()  # in the restore, not at the source at T
    unverified: tuple[tuple[str, str], ...] = field(default=())  # equal as far as compared, not enough: (table, why)
    methods: tuple[tuple[str, str], ...] = field(default=())  # (table, how it was compared)

    @property
    def failed(self) -> bool:
        return bool(self.mismatched or self.missing or self.unexpected)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.unverified

    @property
    def compared(self) -> int:
        return len(self.matched) + len(self.mismatched)

    def how(self) -> str:
        """How the tables were compared, in one phrase (for the summary and the note)."""
        counts: dict[str, int] = {}
        for _, method in self.methods:
            counts[method] = counts.get(method, 0) + 1
        return "; ".join(f"{n} by {m}" for m, n in sorted(counts.items())) or "no table compared"

    def differences(self) -> list[str]:
        """Every difference, one short phrase each, in table order."""
        found = [f"{t}: {what}" for t, what in self.mismatched]
        found += [f"{t}: missing from the restore" for t in self.missing]
        found += [f"{t}: in the restore but not in the source at T" for t in self.unexpected]
        return sorted(found)

    def first_differences(self, limit: int = 3) -> str:
        found = self.differences()
        more = f" and {len(found) - limit} more" if len(found) > limit else ""
        return "; ".join(found[:limit]) + more

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "compared": self.compared, "first_differences": self.first_differences(),
                "how": self.how(), "matched": list(self.matched),
                "mismatched": [{"table": t, "what": w} for t, w in self.mismatched],
                "missing": list(self.missing), "unexpected": list(self.unexpected),
                "unverified": [{"table": t, "why": w} for t, w in self.unverified],
                "methods": [{"table": t, "method": m} for t, m in self.methods]}


FINGERPRINT = "row fingerprint"
CHECKSUM = "ADMIN CHECKSUM (same table ID)"


def _what_differs(source: TableSum, target: TableSum, *, crc: bool, rows: bool) -> str | None:
    parts = []
    if rows and (source.rows, source.rows_crc32_xor) != (target.rows, target.rows_crc32_xor):
        parts.append(f"row fingerprint {source.rows} rows, BIT_XOR(CRC32) {source.rows_crc32_xor} at the source, "
                     f"{target.rows} rows, {target.rows_crc32_xor} restored")
    if crc and source.crc64_xor != target.crc64_xor:
        parts.append(f"Checksum_crc64_xor {source.crc64_xor} at the source, {target.crc64_xor} restored")
    if source.total_kvs != target.total_kvs:
        parts.append(f"Total_kvs {source.total_kvs} vs {target.total_kvs}")
    if source.total_bytes != target.total_bytes:
        parts.append(f"Total_bytes {source.total_bytes} vs {target.total_bytes}")
    return ", ".join(parts) or None


def compare(source: Mapping[str, TableSum], target: Mapping[str, TableSum]) -> Comparison:
    """Compare both sides table by table; the table lists must match too.

    `ADMIN CHECKSUM TABLE` folds each key, and keys carry the table ID. BR keeps a table's ID only when it is
    above the target's global ID (`prealloc_table_id` in br/pkg/restore): the first restore into a fresh
    cluster keeps them, every later one into the same scratch cluster gives new ones, and then crc64 cannot
    be compared (Total_kvs and Total_bytes still can, but a same-width change keeps both). So each table is
    compared by its row fingerprint, which has no ID in it, and by crc64 as well where the IDs match; a table
    that neither method compared is unverified, never passed."""
    matched, mismatched, unverified, methods = [], [], [], []
    for table in sorted(set(source) & set(target)):
        s, t = source[table], target[table]
        ids_known = s.table_id is not None and t.table_id is not None
        crc = not ids_known or s.table_id == t.table_id  # unknown IDs: a crc64 that matches proves them equal
        rows = s.fingerprinted and t.fingerprinted
        what = _what_differs(s, t, crc=crc, rows=rows)
        used = [m for m, on in ((FINGERPRINT, rows), (CHECKSUM, crc)) if on]
        methods.append((table, " and ".join(used) or "Total_kvs and Total_bytes only"))
        if what:
            mismatched.append((table, what))
        elif used:
            matched.append(table)
        else:
            ids = (f"table ID {s.table_id} at the source, {t.table_id} restored" if ids_known
                   else "table IDs unknown")
            problem = s.fingerprint_problem or t.fingerprint_problem or "no row fingerprint"
            unverified.append((table, f"{ids}: crc64 not comparable and {problem}; Total_kvs and Total_bytes "
                                      "equal, which a same-width change keeps"))
    return Comparison(matched=tuple(matched), mismatched=tuple(mismatched),
                      missing=tuple(sorted(set(source) - set(target))),
                      unexpected=tuple(sorted(set(target) - set(source))), unverified=tuple(unverified),
                      methods=tuple(methods))


def drill_schedule(configured: str | None, snapshot_anchor: str) -> str:
    """The drill's cron: as configured, or weekly on Sundays 4 hours after the snapshot anchor (`HH:MM`), when
    the newest snapshot has had time to finish."""
    if configured:
        return configured
    hour, minute = (int(p) for p in snapshot_anchor.split(":"))
    return f"{minute} {(hour + 4) % 24} * * 0"
