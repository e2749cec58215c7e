"""What a cluster's schema looks like at a read TSO: its databases and tables, from the definition
records in its MVCC data (see data/schema.py), plus the schemas every TiDB has."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.mvcc import ClusterData, Row
from ..data.schema import TableDef, is_definition_key, parse_key, table_prefix

INFORMATION_SCHEMA = "INFORMATION_SCHEMA"
SYSTEM_SCHEMAS = (INFORMATION_SCHEMA, "METRICS_SCHEMA", "PERFORMANCE_SCHEMA", "mysql")
# TiDB's bootstrap creates an empty `test`; it is not a record, so a fresh cluster stays empty for BR.
# DROP DATABASE test leaves a deletion of the key `test`, which hides it from then on.
TEST_SCHEMA = "test"


@dataclass(frozen=True)
class TableInfo:
    definition: TableDef
    created_ts: int  # commit TSO of the definition record a read at the catalog's TSO sees

    @property
    def database(self) -> str:
        return self.definition.database

    @property
    def name(self) -> str:
        return self.definition.name


class Catalog:
    """Names are matched case-insensitively, as TiDB does (lower_case_table_names = 2)."""

    def __init__(self, data: ClusterData, ts: int) -> None:
        self.data = data
        self.ts = ts
        self.user_databases: dict[str, Row] = {}
        self.tables: dict[tuple[str, str], TableInfo] = {}
        for key, (commit_ts, value) in sorted(data.versions_at(ts, is_definition_key).items()):
            parts = parse_key(key)
            assert parts is not None
            if parts.table is None:
                self.user_databases[parts.database] = value
            else:
                definition = TableDef.from_definition(parts.database, parts.table, value)
                self.tables[(parts.database.lower(), parts.table.lower())] = TableInfo(definition, commit_ts)
        # A table whose database record is missing still belongs to a database.
        for info in self.tables.values():
            self.user_databases.setdefault(info.database, {})
        self.test_dropped = TEST_SCHEMA not in self.user_databases and data.deleted_at(TEST_SCHEMA, ts)

    def schema_names(self) -> list[str]:
        """As SHOW DATABASES lists them: INFORMATION_SCHEMA first, then by name."""
        test = [] if self.test_dropped else [TEST_SCHEMA]
        rest = sorted({*SYSTEM_SCHEMAS[1:], *test, *self.user_databases})
        return [INFORMATION_SCHEMA, *rest]

    def find_database(self, name: str) -> str | None:
        """The database's own spelling, or None when it does not exist at this TSO."""
        for known in self.schema_names():
            if known.lower() == name.lower():
                return known
        return None

    @staticmethod
    def is_system(name: str) -> bool:
        return name.lower() in {s.lower() for s in SYSTEM_SCHEMAS}

    def user_tables(self, database: str | None = None) -> list[TableInfo]:
        found = [t for t in self.tables.values() if database is None or t.database.lower() == database.lower()]
        return sorted(found, key=lambda t: (t.database, t.name))

    def find_table(self, database: str, table: str) -> TableInfo | None:
        return self.tables.get((database.lower(), table.lower()))

    def rows(self, table: TableInfo) -> dict[str, Row]:
        return self.data.rows_at(self.ts, table_prefix(table.database, table.name))
