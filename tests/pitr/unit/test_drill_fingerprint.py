"""The drill's comparison end to end at the SQL level, in process: the product's fingerprint SQL and ADMIN
CHECKSUM run by the sandbox's SQL engine over random tables, with and without a table-ID rewrite. One changed
cell is always reported (no false pass); equal tables never are (no false alarm)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tidb_pitr.planning.drill import TableSum, compare, fingerprint_sql
from tidb_sandbox.data.mvcc import Change, ClusterData
from tidb_sandbox.data.schema import Column, TableDef
from tidb_sandbox.sql import rowsql, tables
from tidb_sandbox.sql.catalog import Catalog
from tidb_sandbox.sql.parsing import parse_statement, select_item_texts

COLUMNS = (Column("id", "bigint(20)"), Column("qty", "bigint(20)"), Column("price", "decimal(10,2)"),
           Column("note", "varchar(16)"))
VALUES: dict[str, Any] = {
    "qty": st.one_of(st.none(), st.integers(-10**6, 10**6)),
    "price": st.one_of(st.none(), st.decimals(-9999, 9999, places=2, allow_nan=False, allow_infinity=False)),
    "note": st.one_of(st.none(), st.text("ab,c\\ 'é", max_size=6)),
}


@st.composite
def table_rows(draw: st.DrawFn) -> dict[int, dict[str, Any]]:
    ids = draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=12, unique=True))
    return {i: {"id": i, **{name: draw(strategy) for name, strategy in VALUES.items()}} for i in ids}


def _stored(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value  # the sandbox stores decimals as numbers


def _cluster(rows: dict[int, dict[str, Any]], table_id: int) -> tuple[Catalog, Any]:
    data = ClusterData(1)
    definition = TableDef("db", "t", table_id, COLUMNS)
    data.apply([Change(1, definition.key, definition.definition())])
    data.apply(Change(2, f"db/t/{i:010d}", {k: _stored(v) for k, v in row.items()}) for i, row in sorted(rows.items()))
    catalog = Catalog(data, 3)
    return catalog, catalog.find_table("db", "t")


def _read(rows: dict[int, dict[str, Any]], table_id: int) -> TableSum:
    """What the product's hook reads: ADMIN CHECKSUM TABLE, the table ID, and its fingerprint query."""
    catalog, table = _cluster(rows, table_id)
    crc, kvs, size = tables.admin_checksum(catalog, [table]).rows[0][2:]
    sql = fingerprint_sql("db", "t", [c.name for c in COLUMNS])
    count, xor = rowsql.select_rows(parse_statement(sql), catalog, table, select_item_texts(sql)).rows[0]
    return TableSum(crc, kvs, size, table_id, count, xor)


@settings(max_examples=60, deadline=None)
@given(rows=table_rows(), rewrite=st.booleans(), data=st.data())
def test_one_changed_cell_is_always_reported_and_equal_tables_never(rows, rewrite, data):
    source_id, target_id = 110, (131 if rewrite else 110)
    source = _read(rows, source_id)
    equal = compare({"db.t": source}, {"db.t": _read(rows, target_id)})
    assert equal.passed, equal.to_dict()

    assume(rows)
    row_id = data.draw(st.sampled_from(sorted(rows)))
    column = data.draw(st.sampled_from(sorted(VALUES)))
    value = data.draw(VALUES[column])
    assume(_stored(value) != _stored(rows[row_id][column]))
    changed = {**rows, row_id: {**rows[row_id], column: value}}
    result = compare({"db.t": source}, {"db.t": _read(changed, target_id)})
    assert result.failed and result.first_differences().startswith("db.t: "), result.to_dict()
