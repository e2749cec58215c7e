"""mysql.tidb: the bootstrap flags and the GC worker's state, the rows tools read the GC safe point from.

TiDB's bootstrap writes `bootstrapped`, `system_tz` and `new_collation_enabled` (`pkg/session/bootstrap.go`
`doDMLWorks`, `writeSystemTZ`); the GC leader writes the `tikv_gc_*` rows with the comments of
`gcVariableComments` (`pkg/store/gcworker/gc_worker.go`): times in `tikvutil.GCTimeFormat`
("20060102-15:04:05.000 -0700", the TiDB server's zone, UTC here), durations as Go prints them ("10m0s").
Rows TiDB keeps that the sandbox does not model (`tidb_server_version`, `ddl_table_version`, ...) are absent.
"""

from __future__ import annotations

from typing import Any

from mysql_mimic import ColumnType

from ..data.tso import LOGICAL_BITS, physical_ms, tso_to_dt
from ..operator.common import go_duration
from .errors import go_time
from .readts import GC_TICK_MS, ReadTimes

_S = ColumnType.VAR_STRING
# CREATE TABLE mysql.tidb (VARIABLE_NAME varchar(64) PRIMARY KEY, VARIABLE_VALUE varchar(1024), COMMENT varchar(1024))
TIDB_COLUMNS = [("VARIABLE_NAME", _S), ("VARIABLE_VALUE", _S), ("COMMENT", _S)]
GC_LEASE_MS = 120_000  # gcWorkerLease: each tick of the leader renews it to tick + 2m

Row = dict[str, Any]


def gc_time(ms: int) -> str:
    """Unix milliseconds as tikvutil.GCTimeFormat prints them, in UTC: 20261201-16:20:00.123 +0000."""
    dt = tso_to_dt(ms << LOGICAL_BITS)
    return f"{dt:%Y%m%d-%H:%M:%S}.{dt.microsecond // 1000:03d} +0000"


def tidb_rows(times: ReadTimes, now: int, host: str) -> list[Row]:
    """The table as a read at `now` sees it, in the order TiDB wrote the rows."""
    config = times.config
    run = times.gc_run(now)
    started_ms, now_ms = physical_ms(times.started_ts), physical_ms(now)
    last_tick_ms = started_ms + (now_ms - started_ms) // GC_TICK_MS * GC_TICK_MS
    values: list[tuple[str, str, str]] = [
        ("bootstrapped", "True", "Bootstrap flag. Do not delete."),
        ("system_tz", "UTC", "TiDB Global System Timezone."),
        ("new_collation_enabled", "True", "If the new collations are enabled. Do not edit it."),
        # GCWorker.uuid is the hex of a TSO taken at start; desc is "host:%s, pid:%d, start at %s" with Go's
        # time.Now(); the pod is <cluster>-tidb-0 and TiDB runs as its pid 1.
        ("tikv_gc_leader_uuid", format(times.started_ts, "x"), "Current GC worker leader UUID. (DO NOT EDIT)"),
        ("tikv_gc_leader_desc", f"host:{host}, pid:1, start at {go_time(times.started_ts)}",
         "Host name and pid of current GC leader. (DO NOT EDIT)"),
        ("tikv_gc_leader_lease", gc_time(last_tick_ms + GC_LEASE_MS),
         "Current GC worker leader lease. (DO NOT EDIT)"),
        ("tikv_gc_auto_concurrency", "true",
         "Let TiDB pick the concurrency automatically. If set false, tikv_gc_concurrency will be used"),
        ("tikv_gc_enable", "true", "Current GC enable status"),
        ("tikv_gc_run_interval", go_duration(config.gc_run_interval),
         "GC run interval, at least 10m, in Go format."),
        ("tikv_gc_life_time", go_duration(config.gc_life_time),
         "All versions within life time will not be collected by GC, at least 10m, in Go format."),
        ("tikv_gc_last_run_time", gc_time(run.run_ms), "The time when last GC starts. (DO NOT EDIT)"),
        ("tikv_gc_safe_point", gc_time(physical_ms(run.safe_point)),
         "All versions after safe point can be accessed. (DO NOT EDIT)"),
    ]
    return [{"VARIABLE_NAME": name, "VARIABLE_VALUE": value, "COMMENT": comment} for name, value, comment in values]
