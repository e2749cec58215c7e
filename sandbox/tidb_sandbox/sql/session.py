"""One client connection: a mysql-mimic Session that answers like TiDB.

mysql-mimic keeps the protocol, session variables, SET NAMES / autocommit / time_zone, USE and
BEGIN/COMMIT; everything else goes through `_tidb_middleware` (ADMIN CHECKSUM TABLE and DROP DATABASE
before it), and what it does not know is refused with TiDB's 1105 rather than answered with a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timezone
from typing import Any, TypeVar

from mysql_mimic import ColumnType, ResultSet, Session
from mysql_mimic.errors import MysqlError
from mysql_mimic.results import AllowedResult
from mysql_mimic.session import Query
from mysql_mimic.variables import SYSTEM_VARIABLES, GlobalVariables, SessionVariables, VariableSchema, parse_timezone
from sqlglot import expressions as exp

from .. import clock
from ..data.mvcc import ClusterData
from ..operator.common import go_duration
from . import ddl, errors, grants, infoschema, rowsql, systables, tables
from .catalog import INFORMATION_SCHEMA, Catalog
from .config import SqlConfig
from .parsing import (
    AsOf,
    admin_checksum_tables,
    drop_database,
    drop_tables,
    parse_statement,
    select_item_texts,
    split_as_of,
    statement_text,
)
from .readts import ReadTimes, as_of_ts, format_datetime, snapshot_value_ts
from .scan import scan_tables
from .static import static_select
from .tidb import VERSION_COMMENT, tidb_version, version

CLIENT_HOST = "127.0.0.1"  # the endpoints listen on loopback only, so every client comes from here
TIDB_SQL_MODE = ("ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
                 "NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION")
T = TypeVar("T")


@dataclass
class Backend:
    """What the sessions of one cluster read: its data, the clock and settings, its TiDB release."""

    data: ClusterData
    times: ReadTimes
    config: SqlConfig
    release: Callable[[], str]
    host: str = "tidb-0"  # the TiDB pod's host name, as the GC leader names itself in mysql.tidb


def tidb_variables(release: str) -> dict[str, VariableSchema]:
    return {
        **SYSTEM_VARIABLES,
        "version": (str, version(release), False),
        "version_comment": (str, VERSION_COMMENT, False),
        "license": (str, "Apache License 2.0", False),
        "time_zone": (str, "SYSTEM", True),
        "transaction_isolation": (str, "REPEATABLE-READ", True),
        "sql_mode": (str, TIDB_SQL_MODE, True),
        "default_storage_engine": (str, "InnoDB", True),
        "default_tmp_storage_engine": (str, "InnoDB", True),
        "lower_case_table_names": (int, 2, False),
        "tidb_snapshot": (str, "", True),
        "tidb_gc_life_time": (str, "10m0s", False),  # answered from SqlConfig, see _Variables
        "tidb_gc_run_interval": (str, "10m0s", False),
    }


class _Variables(SessionVariables):
    def __init__(self, release: str, config: SqlConfig) -> None:
        super().__init__(GlobalVariables(tidb_variables(release)))
        self.config = config

    def get_variable(self, name: str) -> Any:
        # TiDB reads both from mysql.tidb (sysvar.go: GetGlobal of TiDBGCLifetime / TiDBGCRunInterval).
        if name.lower() == "tidb_gc_life_time":
            return go_duration(self.config.gc_life_time)
        if name.lower() == "tidb_gc_run_interval":
            return go_duration(self.config.gc_run_interval)
        return super().get_variable(name)


def _is_dual(source: exp.Expression) -> bool:
    return isinstance(source, exp.Table) and not source.text("db") and source.name.upper() == "DUAL"


class TidbSession(Session):
    def __init__(self, backend: Backend) -> None:
        self.release = backend.release()
        super().__init__(_Variables(self.release, backend.config))
        self.backend = backend
        self.snapshot_ts = 0  # @@tidb_snapshot as a TSO, 0 when not set
        self._as_of: AsOf | None = None
        self._text = ""
        self.middlewares = [self._tidb_middleware, self._set_middleware, self._use_middleware,
                            self._begin_middleware, self._commit_middleware, self._rollback_middleware]

    # -- entry points -------------------------------------------------------------------------------
    async def handle_query(self, sql: str, attrs: dict[str, str]) -> AllowedResult:
        self._require_login()
        self.timestamp = clock.now().astimezone(self.timezone())
        text = statement_text(sql)
        if not text:
            raise errors.empty_query()
        checksum_of = admin_checksum_tables(text)
        if checksum_of is not None:
            self._as_of = None
            return await self._admin_checksum(checksum_of)
        dropping_tables = drop_tables(text)
        if dropping_tables is not None:
            self._as_of = None
            return self._drop_tables(*dropping_tables)
        dropping = drop_database(text)
        if dropping is not None:
            self._as_of = None
            return self._drop_database(*dropping)
        text, self._as_of = split_as_of(text)
        self._text = text
        expression = parse_statement(text)
        query = Query(expression=expression, sql=text, attrs=attrs, _middlewares=self.middlewares,
                      _query=self.query)
        return await query.start()

    async def query(self, expression: exp.Expression, sql: str, attrs: dict[str, str]) -> AllowedResult:
        raise errors.not_supported(f"the {expression.key.upper()} statement")

    async def use(self, database: str) -> None:
        self._require_login()
        catalog = await self._catalog(self._read_ts(None))
        found = catalog.find_database(database)
        if found is None:
            raise errors.bad_database(database)
        self.database = found

    def timezone(self) -> timezone:
        tz = str(self.variables.get("time_zone"))
        return UTC if tz.upper() in ("SYSTEM", "UTC") else parse_timezone(tz)

    def _require_login(self) -> None:
        # mysql-mimic goes on reading commands after a refused login; nothing is answered then.
        if self.username is None:
            raise MysqlError(errors.access_denied("", CLIENT_HOST, False), errors.ACCESS_DENIED)  # type: ignore[arg-type]

    # -- dispatch ------------------------------------------------------------------------------------
    async def _tidb_middleware(self, q: Query) -> AllowedResult:
        expression = q.expression
        if self._as_of is not None and not isinstance(expression, exp.Select):
            raise errors.not_supported("AS OF TIMESTAMP outside SELECT")
        if isinstance(expression, exp.Select):
            return await self._select(expression)
        if isinstance(expression, exp.Show):
            return await self._show(expression)
        if isinstance(expression, exp.Set | exp.Use | exp.Transaction | exp.Commit | exp.Rollback):
            return await q.next()
        raise errors.not_supported(f"the {expression.key.upper()} statement")

    async def _show(self, show: exp.Show) -> AllowedResult:
        kind = show.name.upper()
        if kind == "DATABASES":
            catalog = await self._catalog(self._read_ts(None))
            return tables.show_databases(catalog, show)
        if kind == "TABLES":
            ts, current = self._read_ts(None), self.database
            return await self._in_thread(lambda: tables.show_tables(Catalog(self.backend.data, ts), show, current))
        if kind == "VARIABLES":
            return self._show_variables(show)
        if kind == "GRANTS":
            return grants.show_grants(str(self.username), show)
        raise errors.not_supported(f"SHOW {kind}")

    async def _select(self, select: exp.Select) -> AllowedResult:
        source = select.args.get("from_")
        if source is not None and _is_dual(source.this):
            select, source = select.copy(), None  # FROM DUAL: no table at all
            select.set("from_", None)
        if source is None:
            if self._as_of is not None:
                raise errors.not_supported("AS OF TIMESTAMP without a table")
            return static_select(select, select_item_texts(self._text), self)
        table = source.this
        if not isinstance(table, exp.Table) or select.args.get("joins"):
            raise errors.not_supported("SELECT from more than one table or from a subquery")
        database = table.text("db") or self.database
        if database and database.lower() == "mysql" and table.name.lower() == "tidb":
            return self._mysql_tidb(select)
        ts, tz, current = self._read_ts(self._as_of), self.timezone(), self.database
        if database and database.upper() == INFORMATION_SCHEMA:
            return await self._in_thread(
                lambda: infoschema.query(select, table.name, Catalog(self.backend.data, ts), tz))
        name = self._count_name(select)
        texts = select_item_texts(self._text)

        def read() -> tuple[ResultSet, int]:
            catalog = Catalog(self.backend.data, ts)
            found = tables.resolve_table(catalog, table.text("db") or None, table.name, current)
            if name is None:  # anything but a bare COUNT(*): row-level SQL (rowsql.py)
                result = rowsql.select_rows(select, catalog, found, texts)
            else:
                result = tables.count_rows(catalog, found, name)
            return result, tables.table_bytes(catalog, found)

        result, size = await self._in_thread(read)
        await self._scan(ts, [size])  # a full-table read: it takes time, and the GC may overtake it
        return result

    def _count_name(self, select: exp.Select) -> str | None:
        """The column name when the query is SELECT COUNT(*) (or COUNT(1)) FROM one table, else None."""
        if any(select.args.get(a) for a in ("where", "group", "having", "order", "distinct", "joins")):
            return None
        if len(select.expressions) != 1:
            return None
        item = select.expressions[0]
        node = item.this if isinstance(item, exp.Alias) else item
        if not isinstance(node, exp.Count) or not (
                isinstance(node.this, exp.Star) or (isinstance(node.this, exp.Literal) and node.this.name == "1")):
            return None
        if isinstance(item, exp.Alias):
            return item.alias
        texts = select_item_texts(self._text)
        return texts[0] if len(texts) == 1 else "COUNT(*)"

    def _mysql_tidb(self, select: exp.Select) -> AllowedResult:
        if self._as_of is not None or self.snapshot_ts:
            raise errors.not_supported("reading mysql.tidb at a past TSO")
        now = self.backend.times.now()
        rows = systables.tidb_rows(self.backend.times, now, self.backend.host)
        return infoschema.evaluate(select, "mysql.tidb", systables.TIDB_COLUMNS, rows)

    def _drop_tables(self, names: list[tuple[str | None, str]], if_exists: bool) -> AllowedResult:
        """On the event loop, like DROP DATABASE; a name without its database is in the session's current one."""
        qualified = []
        for database, table in names:
            database = database or self.database
            if not database:
                raise errors.no_database()
            qualified.append((database, table))
        ddl.drop_tables(self.backend.data, self.backend.times, qualified, if_exists, str(self.username),
                        self.snapshot_ts)
        return None

    def _drop_database(self, name: str, if_exists: bool) -> AllowedResult:
        """On the event loop, like the workload's writes (see ddl.drop_database)."""
        ddl.check_drop_database(name, str(self.username), self.snapshot_ts)
        dropped = ddl.drop_database(self.backend.data, self.backend.times, name, if_exists)
        if dropped is not None and self.database and self.database.lower() == name.lower():
            self.database = None  # executeDropDatabase clears the session's current database
        return None

    async def _admin_checksum(self, names: list[tuple[str | None, str]]) -> AllowedResult:
        ts, current = self._read_ts(None), self.database

        def run() -> ResultSet:
            catalog = Catalog(self.backend.data, ts)
            found = [tables.resolve_table(catalog, database, table, current) for database, table in names]
            return tables.admin_checksum(catalog, found)

        result = await self._in_thread(run)
        await self._scan(ts, [int(row[4]) for row in result.rows])  # Total_bytes: every table read in full
        return result

    async def _scan(self, ts: int, sizes: list[int]) -> None:
        """The time full-table reads at `ts` take, table by table, with the GC checks on the way (sql/scan.py)."""
        await scan_tables(self.backend.times, ts, sizes, self.backend.config.scan_rate)

    # -- read timestamps -----------------------------------------------------------------------------
    def _read_ts(self, as_of: AsOf | None) -> int:
        """AS OF TIMESTAMP wins over @@tidb_snapshot (as in TiDB's stale read processor); else now."""
        times = self.backend.times
        if as_of is not None:
            ts = as_of_ts(as_of.expression, self.timezone(), self.timestamp)
        elif self.snapshot_ts:
            ts = self.snapshot_ts
        else:
            return times.now()
        times.check_read(ts)
        return ts

    async def _catalog(self, ts: int) -> Catalog:
        return await self._in_thread(lambda: Catalog(self.backend.data, ts))

    @staticmethod
    async def _in_thread(fn: Callable[[], T]) -> T:
        """Reads scan the cluster's rows; keep them off the loop the Kubernetes API also runs on."""
        return await clock.to_thread(fn)

    # -- SET -----------------------------------------------------------------------------------------
    def _set_variable(self, setitem: exp.SetItem) -> None:
        assignment = setitem.this
        left = assignment.left
        if isinstance(left, exp.Parameter):
            raise errors.not_supported("user variables")
        scope = (left.text("kind") if isinstance(left, exp.SessionParameter) else "") or setitem.text("kind")
        scope = (scope or "SESSION").upper()
        name = left.name.lower()
        if name not in self.variables.schema:
            raise errors.unknown_variable(name)
        if name == "tidb_gc_life_time":
            if scope in ("SESSION", "LOCAL"):
                raise errors.global_variable(name)
            raise errors.not_supported("SET GLOBAL tidb_gc_life_time (the sandbox setting gc_life_time sets it)")
        if scope not in ("SESSION", "LOCAL"):
            raise errors.not_supported(f"SET {scope} {name}")
        if name == "tidb_snapshot":
            self._set_snapshot(assignment.right)
            return
        super()._set_variable(setitem)

    def _set_snapshot(self, value: exp.Expression) -> None:
        if not isinstance(value, exp.Literal):
            raise errors.not_supported(f"SET @@tidb_snapshot = {value.sql(dialect='mysql')} (use a TSO or datetime)")
        text = value.name
        ts = snapshot_value_ts(text, self.timezone())
        if ts:
            self.backend.times.check_snapshot(ts)
        self.snapshot_ts = ts
        self.variables.set("tidb_snapshot", text)

    # -- static SELECT scope ---------------------------------------------------------------------------
    def variable(self, name: str, scope: str) -> Any:
        name = name.lower()
        if name not in self.variables.schema:
            raise errors.unknown_variable(name)
        return self.variables.get(name)

    def function(self, name: str, args: list[exp.Expression]) -> tuple[Any, ColumnType]:
        if name == "TIDB_PARSE_TSO":
            if len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].name.isdigit():
                raise errors.not_supported("TIDB_PARSE_TSO with anything but a TSO literal")
            return format_datetime(int(args[0].name), self.timezone()), ColumnType.DATETIME
        if args:
            raise errors.not_supported(f"{name}() with arguments")
        zero_arg: dict[str, Callable[[], tuple[Any, ColumnType]]] = {
            "VERSION": lambda: (self.variables.get("version"), ColumnType.VAR_STRING),
            "TIDB_VERSION": lambda: (tidb_version(self.release), ColumnType.VAR_STRING),
            "TIDB_CURRENT_TSO": lambda: (self.backend.times.now(), ColumnType.LONGLONG),
            "DATABASE": lambda: (self.database, ColumnType.VAR_STRING),
            "USER": lambda: (f"{self.username}@{CLIENT_HOST}", ColumnType.VAR_STRING),
            "CURRENT_USER": lambda: (f"{self.username}@%", ColumnType.VAR_STRING),
            "CONNECTION_ID": lambda: (self.connection.connection_id, ColumnType.LONGLONG),
            "NOW": lambda: (self.timestamp.strftime("%Y-%m-%d %H:%M:%S"), ColumnType.DATETIME),
        }
        if name not in zero_arg:
            raise errors.not_supported(f"the function {name}()")
        return zero_arg[name]()
