"""The drill's comparison rate on the sandbox: rows per second of the row fingerprint (the product's
`fingerprint_sql`, read over the MySQL protocol at a TSO as the drill reads the source at T), against
`ADMIN CHECKSUM TABLE` of the same tables at the same TSO as the baseline, in the same run.

The sandbox's rates are not TiDB's (its SQL is Python in one process); the ratio says what the fingerprint
costs next to the checksum the drill ran before. The last line is one JSON object with the figures.

    .venv/bin/python benchmarks/bench_compare.py [--rows 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from tidb_pitr.planning.drill import fingerprint_sql  # noqa: E402
from tidb_sandbox.client import running_sandbox, sql_params  # noqa: E402

NAMESPACE, CLUSTER = "bench", "big"


def _connect(url: str, tso: int) -> pymysql.Connection:
    db = pymysql.connect(connect_timeout=10, **sql_params(url))
    with db.cursor() as cursor:
        cursor.execute(f"SET @@tidb_snapshot = '{tso}'")
    return db


def _columns(db: pymysql.Connection) -> dict[str, list[str]]:
    with db.cursor() as cursor:
        cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
                       "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")
        found: dict[str, list[str]] = {}
        for schema, table, column in cursor.fetchall():
            found.setdefault(f"{schema}.{table}", []).append(column)
        return found


def _fingerprint(url: str, tso: int, name: str, columns: list[str]) -> int:
    with _connect(url, tso) as db, db.cursor() as cursor:
        cursor.execute(fingerprint_sql(*name.split(".", 1), columns))
        return int(cursor.fetchone()[0])


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="at least this many rows, read at one TSO")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_sandbox(
            Path(tmp), "--seed-days", "0", "--no-azurite", "--rng-seed", "5") as sandbox:
        # Inserts only, for about five seconds; the reads are at one TSO once the tables hold `rows` rows (the
        # workload goes on inserting, which the baseline and the fingerprint share).
        url = sandbox.create_cluster(NAMESPACE, CLUSTER, workload={
            "inserts_per_s": args.rows / 5, "updates_per_s": 0, "deletes_per_s": 0})["sql"]
        deadline = time.monotonic() + 120
        while (sandbox.call("GET", f"/clusters/{NAMESPACE}/{CLUSTER}/rows?rows=false")["count"] < args.rows
               and time.monotonic() < deadline):
            time.sleep(0.5)
        tso = sandbox.tso()
        with _connect(url, tso) as db:
            tables = _columns(db)
            names = ", ".join(tables)
            checksum, sequential, parallel = [], [], []
            rows = 0
            for _ in range(args.repeat):
                with db.cursor() as cursor:
                    seconds, _ = _timed(lambda c=cursor: c.execute(f"ADMIN CHECKSUM TABLE {names}"))
                    checksum.append(seconds)
                seconds, counts = _timed(lambda: [_fingerprint(url, tso, n, c) for n, c in tables.items()])
                sequential.append(seconds)
                rows = sum(counts)
                with ThreadPoolExecutor(max_workers=4) as pool:
                    seconds, _ = _timed(lambda p=pool: list(p.map(lambda i: _fingerprint(url, tso, *i),
                                                                  tables.items())))
                    parallel.append(seconds)
    result = {
        "tables": len(tables), "rows": rows, "repeat": args.repeat,
        "checksum_seconds": round(statistics.median(checksum), 3),
        "fingerprint_seconds": round(statistics.median(sequential), 3),
        "fingerprint_parallel4_seconds": round(statistics.median(parallel), 3),
        "checksum_rows_per_s": round(rows / statistics.median(checksum)),
        "fingerprint_rows_per_s": round(rows / statistics.median(sequential)),
        "fingerprint_parallel4_rows_per_s": round(rows / statistics.median(parallel)),
        "fingerprint_to_checksum_time": round(statistics.median(sequential) / statistics.median(checksum), 2),
    }
    print(f"{rows} rows in {len(tables)} tables: ADMIN CHECKSUM {result['checksum_rows_per_s']} rows/s, "
          f"row fingerprint {result['fingerprint_rows_per_s']} rows/s (4 in parallel: "
          f"{result['fingerprint_parallel4_rows_per_s']} rows/s), "
          f"{result['fingerprint_to_checksum_time']}x the checksum's time")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
