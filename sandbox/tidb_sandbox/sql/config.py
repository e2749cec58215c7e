"""The SQL endpoints' simulation settings, set like the operator's (`up --set`, PATCH /sandbox/v1/config)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any, Protocol


class Settings(Protocol):
    def update(self, changes: dict[str, Any]) -> None: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class SqlConfig:
    # Seconds of MVCC history kept readable: the GC safe point is now minus this. TiDB's default
    # tidb_gc_life_time is 10m0s (and its minimum too); the sandbox takes any value >= 0, so tests can
    # age a snapshot quickly.
    gc_life_time: float = 600.0
    # Seconds between the GC worker's runs, each of which moves the safe point to the run's time minus
    # gc_life_time (TiDB's tidb_gc_run_interval / tikv_gc_run_interval, default 10m0s, also its minimum;
    # runs come on the worker's minute ticks, see readts.ReadTimes.gc_run). 0, the sandbox's default, runs
    # it continuously: the safe point is now minus gc_life_time at every read, the strictest a real cluster
    # can be; 600 imitates TiDB's default, where it lags now minus gc_life_time by up to 11 minutes.
    gc_run_interval: float = 0.0
    # Bytes per second a full-table read scans (ADMIN CHECKSUM TABLE, SELECT COUNT(*)): the read takes the
    # table's bytes (rows plus indexes, INFORMATION_SCHEMA.TABLES DATA_LENGTH + INDEX_LENGTH) over this rate,
    # and the GC safe point is checked against its read TSO as it goes (see sql/scan.py). Real TiKV scans on
    # the order of 100 MB/s per store (inferred); sandbox tables are KBs where real ones are GBs, so the
    # default, 100 KB/s, makes a sandbox table of a few hours' workload take about a second, as a large table
    # takes minutes on a real cluster. 0 makes reads instant (kinder than TiDB: only for tests that need it).
    scan_rate: float = 100_000.0

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown setting {name!r}; known settings: {', '.join(sorted(known))}")
            number = float(value)
            if number < 0:
                raise ValueError(f"setting {name!r} must be >= 0, got {value!r}")
            setattr(self, name, number)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def update_settings(sim: Settings, sql: Settings, changes: dict[str, Any]) -> None:
    """Route each setting to the config that has it; any unknown name fails first, naming all settings."""
    sim_names, sql_names = set(sim.to_dict()), set(sql.to_dict())
    for name in changes:
        if name not in sim_names | sql_names:
            known = ", ".join(sorted(sim_names | sql_names))
            raise ValueError(f"unknown setting {name!r}; known settings: {known}")
    for config, names in ((sim, sim_names), (sql, sql_names)):  # a bad value changes nothing
        copy.copy(config).update({k: v for k, v in changes.items() if k in names})
    sim.update({k: v for k, v in changes.items() if k in sim_names})
    sql.update({k: v for k, v in changes.items() if k in sql_names})


def all_settings(sim: Settings, sql: Settings) -> dict[str, Any]:
    return {**sim.to_dict(), **sql.to_dict()}
