"""A TiDB cluster's data as MVCC versions: each key keeps every value it had, stamped with its commit TSO;
and the cluster's global ID counter (the one TiDB's meta layer keeps for table, partition and DDL job IDs)."""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .schema import definition_ids

# Global IDs a fresh cluster's bootstrap has used (system schemas and tables, its DDL jobs). Inferred, not
# read: low enough that the workload's first user table (110) is above it, so BR keeps source IDs on a
# fresh cluster, as every first restore does.
BOOTSTRAP_GLOBAL_ID = 100
Row = dict[str, Any]
SYSTEM_PREFIX = "mysql//"  # records of the mysql schema (accounts.py), outside the user-data key layout


@dataclass(frozen=True)
class Change:
    ts: int  # commit TSO
    key: str
    value: Row | None  # None = the row was deleted

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "k": self.key, "v": self.value}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Change:
        return cls(ts=int(obj["ts"]), key=str(obj["k"]), value=obj["v"])


class ClusterData:
    """Rows with history. Per key: parallel lists of TSOs and values (bisect for reads at a TSO);
    plus one change log sorted by TSO for range scans. Thread-safe.
    """

    def __init__(self, cluster_id: int | None = None) -> None:
        # TiDB cluster IDs are 64-bit numbers chosen by PD at bootstrap.
        self.cluster_id = cluster_id if cluster_id is not None else random.getrandbits(63) | (1 << 62)
        self._lock = threading.RLock()
        self._ts: dict[str, list[int]] = {}
        self._values: dict[str, list[Row | None]] = {}
        self._live: dict[str, Row] = {}
        self._log: list[Change] = []
        self._log_ts: list[int] = []
        self._global_id = BOOTSTRAP_GLOBAL_ID

    @property
    def global_id(self) -> int:
        """The largest global ID handed out so far (TiDB's `meta.GetGlobalID`)."""
        with self._lock:
            return self._global_id

    def advance_global_ids(self, n: int) -> int:
        """Take `n` IDs (TiDB's `meta.AdvanceGlobalIDs`); returns the new largest one. Nothing lowers it:
        dropping a database frees no ID."""
        with self._lock:
            self._global_id += max(0, n)
            return self._global_id

    def apply(self, changes: Iterable[Change]) -> None:
        """Record changes; a key's versions must have strictly rising TSOs (ValueError otherwise)."""
        with self._lock:
            for change in changes:
                stamps = self._ts.setdefault(change.key, [])
                if stamps and change.ts <= stamps[-1]:
                    raise ValueError(
                        f"change to {change.key!r} at ts {change.ts} is not after "
                        f"its last version {stamps[-1]}"
                    )
                value = dict(change.value) if change.value is not None else None
                # A table created with a given ID (the workload's, a restore's) has taken that ID.
                self._global_id = max(self._global_id, *definition_ids(change.key, value), 0)
                stamps.append(change.ts)
                self._values.setdefault(change.key, []).append(value)
                if value is None:
                    self._live.pop(change.key, None)
                else:
                    self._live[change.key] = value
                stored = Change(change.ts, change.key, value)
                if not self._log_ts or change.ts >= self._log_ts[-1]:
                    self._log.append(stored)
                    self._log_ts.append(change.ts)
                else:  # rare: another key's later change was applied first
                    at = bisect.bisect_right(self._log_ts, change.ts)
                    self._log.insert(at, stored)
                    self._log_ts.insert(at, change.ts)

    def load(self, rows: dict[str, Row], ts: int) -> None:
        """Fill an empty cluster with rows committed at `ts` (what a restore does to its target)."""
        with self._lock:
            if not self.is_empty():
                raise ValueError("the cluster is not empty; restores need a fresh cluster")
            self.apply(Change(ts, key, row) for key, row in sorted(rows.items()))

    def rows_at(self, ts: int, prefix: str = "") -> dict[str, Row]:
        """The rows a snapshot read at `ts` sees (versions with commit ts <= ts), of keys with `prefix`."""
        with self._lock:
            rows: dict[str, Row] = {}
            for key, stamps in self._ts.items():
                if not key.startswith(prefix):
                    continue
                at = bisect.bisect_right(stamps, ts) - 1
                if at >= 0:
                    value = self._values[key][at]
                    if value is not None:
                        rows[key] = dict(value)
            return rows

    def versions_at(self, ts: int, keep: Callable[[str], bool]) -> dict[str, tuple[int, Row]]:
        """For the keys `keep` accepts: the version a read at `ts` sees, with its commit ts."""
        with self._lock:
            found: dict[str, tuple[int, Row]] = {}
            for key, stamps in self._ts.items():
                if not keep(key):
                    continue
                at = bisect.bisect_right(stamps, ts) - 1
                if at >= 0:
                    value = self._values[key][at]
                    if value is not None:
                        found[key] = (stamps[at], dict(value))
            return found

    def deleted_at(self, key: str, ts: int) -> bool:
        """Whether a read at `ts` sees `key` deleted: it has a version at or before `ts`, and that is a
        deletion (a key that never had a version is not deleted, it is absent)."""
        with self._lock:
            stamps = self._ts.get(key) or []
            at = bisect.bisect_right(stamps, ts) - 1
            return at >= 0 and self._values[key][at] is None

    def rows_now(self) -> dict[str, Row]:
        with self._lock:
            return {key: dict(value) for key, value in self._live.items()}

    def get(self, key: str) -> Row | None:
        with self._lock:
            value = self._live.get(key)
            return dict(value) if value is not None else None

    def live_keys(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def keys(self) -> list[str]:
        """Every key that ever had a version, deleted ones included."""
        with self._lock:
            return list(self._ts)

    def changes_between(self, after_ts: int, until_ts: int) -> list[Change]:
        """Changes with after_ts < ts <= until_ts, sorted by ts (what a log backup holds for that range)."""
        with self._lock:
            lo = bisect.bisect_right(self._log_ts, after_ts)
            hi = bisect.bisect_right(self._log_ts, until_ts)
            return self._log[lo:hi]

    def is_empty(self) -> bool:
        """No user database, table or row now (what BR's fresh-cluster check looks at); accounts
        (`accounts.PREFIX`, the mysql schema) do not count, as `CheckTargetClusterFresh` ignores users."""
        with self._lock:
            return all(key.startswith(SYSTEM_PREFIX) for key in self._live)

    @property
    def version_count(self) -> int:
        return len(self._log_ts)

    @property
    def min_ts(self) -> int:
        """The oldest version's TSO, 0 when empty."""
        with self._lock:
            return self._log_ts[0] if self._log_ts else 0

    @property
    def max_ts(self) -> int:
        """The newest version's TSO, 0 when empty."""
        with self._lock:
            return self._log_ts[-1] if self._log_ts else 0
