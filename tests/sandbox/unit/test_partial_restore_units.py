"""The part of a restore that fault `fail_restore_after` leaves in the target, for any tables and fraction: whole
tables, the first ones in key order, with their databases' definitions, never a row of a table it did not take."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from tidb_sandbox.data.schema import database_definition, row_key, table_key
from tidb_sandbox.operator.restore_targets import first_tables, written_tables
from tidb_sandbox.operator.volumes import quantity_bytes

names = st.sampled_from(["a", "b", "crm", "shop", "z"])


@given(tables=st.dictionaries(st.tuples(names, names), st.integers(min_value=0, max_value=4), max_size=8),
       fraction=st.floats(min_value=0, max_value=1))
def test_a_partial_restore_writes_whole_tables_in_key_order(tables: dict[tuple[str, str], int], fraction: float):
    rows: dict[str, object] = {}
    for (db, table), count in tables.items():
        rows[db] = database_definition()
        rows[table_key(db, table)] = {"id": 1, "columns": []}
        rows.update({row_key(db, table, handle): {"id": handle} for handle in range(1, count + 1)})
    kept = first_tables(rows, fraction)
    chosen = sorted(tables)[:math.floor(len(tables) * fraction)]
    assert written_tables(kept) == len(chosen)
    expected = {k: v for k, v in rows.items() if k.count("/") and tuple(k.split("/")[:2]) in chosen}
    expected.update({db: rows[db] for db, _ in chosen})
    assert kept == expected


def test_pvc_sizes_read_as_kubernetes_quantities():
    assert quantity_bytes("10Gi") == 10 * 2**30 and quantity_bytes("1.5G") == 1_500_000_000
    assert quantity_bytes("512") == 512 and quantity_bytes("10GB") is None
