"""The errors the endpoints answer with, in TiDB's codes, SQLSTATEs and wording.

Codes and texts follow TiDB's sources (pkg/errno, pkg/parser/mysql/state.go): 8055 is
`variable.ErrSnapshotTooOld` as `gcutil.ValidateSnapshot` returns it for SET @@tidb_snapshot, 9006 is
client-go's `ErrGCTooEarly` for reads (AS OF) below the safe point, 1292 with the "Incorrect ... value"
text is `types.ErrWrongValue`, 1008 is `infoschema.ErrDatabaseDropExists`, 1044 is
`plannererrors.ErrDBaccessDenied`; TiDB's plain `errors.New` texts go out as 1105.
"""

from __future__ import annotations

from mysql_mimic.errors import SQLSTATES, MysqlError

from ..data.tso import tso_to_dt

DB_DROP_EXISTS = 1008
BAD_TABLE = 1051
DB_ACCESS_DENIED = 1044
ACCESS_DENIED = 1045
NO_DB = 1046
BAD_DB = 1049
BAD_FIELD = 1054
EMPTY_QUERY = 1065
NO_TABLES = 1096
PARSE = 1064
UNKNOWN = 1105
GLOBAL_VARIABLE = 1229
NO_SUCH_TABLE = 1146
UNKNOWN_SYSTEM_VARIABLE = 1193
WRONG_VALUE = 1292
SNAPSHOT_TOO_OLD = 8055
GC_TOO_EARLY = 9006

# mysql-mimic looks SQLSTATEs up in this table (HY000 when missing); it has no other way to extend it.
SQLSTATES.update({DB_ACCESS_DENIED: b"42000", BAD_DB: b"42000", BAD_FIELD: b"42S22", NO_SUCH_TABLE: b"42S02",
                  WRONG_VALUE: b"22007", UNKNOWN_SYSTEM_VARIABLE: b"HY000", DB_DROP_EXISTS: b"HY000"})


def _error(code: int, message: str) -> MysqlError:
    return MysqlError(message, code)  # type: ignore[arg-type]  # mysql-mimic sends any int code


def go_time(ts: int) -> str:
    """A TSO's physical time as Go's time.Time.String() prints it in UTC (TiDB's messages use it)."""
    dt = tso_to_dt(ts)
    fraction = f"{dt.microsecond // 1000:03d}".rstrip("0")
    return dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + " +0000 UTC"


def parse_error(near: str, column: int) -> MysqlError:
    return _error(PARSE, "You have an error in your SQL syntax; check the manual that corresponds to your TiDB "
                         f'version for the right syntax to use line 1 column {column} near "{near}" ')


def not_supported(what: str) -> MysqlError:
    return _error(UNKNOWN, f"{what} is not supported by the tidb-sandbox SQL endpoint")


def no_such_table(database: str, table: str) -> MysqlError:
    return _error(NO_SUCH_TABLE, f"Table '{database}.{table}' doesn't exist")


def bad_database(database: str) -> MysqlError:
    return _error(BAD_DB, f"Unknown database '{database}'")


def no_database() -> MysqlError:
    return _error(NO_DB, "No database selected")


def bad_field(column: str, where: str) -> MysqlError:
    return _error(BAD_FIELD, f"Unknown column '{column}' in '{where}'")


def no_tables_used() -> MysqlError:
    return _error(NO_TABLES, "No tables used")


def empty_query() -> MysqlError:
    return _error(EMPTY_QUERY, "Query was empty")


def unknown_variable(name: str) -> MysqlError:
    return _error(UNKNOWN_SYSTEM_VARIABLE, f"Unknown system variable '{name}'")


def global_variable(name: str) -> MysqlError:
    return _error(GLOBAL_VARIABLE, f"Variable '{name}' is a GLOBAL variable and should be set with SET GLOBAL")


def wrong_timestamp(value: str) -> MysqlError:
    return _error(WRONG_VALUE, f"Incorrect timestamp value: '{value}'")


def future_read() -> MysqlError:
    return _error(UNKNOWN, "cannot set read timestamp to a future time")


def snapshot_too_old(safe_point: int) -> MysqlError:
    return _error(SNAPSHOT_TOO_OLD, f"snapshot is older than GC safe point {go_time(safe_point)}")


def gc_too_early(read_ts: int, safe_point: int) -> MysqlError:
    return _error(GC_TOO_EARLY, "GC life time is shorter than transaction duration, transaction starts at "
                                f"{go_time(read_ts)}, GC safe point is {go_time(safe_point)}")


def drop_missing_database(database: str) -> MysqlError:
    return _error(DB_DROP_EXISTS, f"Can't drop database '{database}'; database doesn't exist")


def drop_missing_tables(names: list[str]) -> MysqlError:
    """TiDB's ErrBadTable from a DROP TABLE: every missing `db.table`, comma-separated."""
    return _error(BAD_TABLE, f"Unknown table '{','.join(names)}'")


def db_access_denied(user: str, database: str) -> MysqlError:
    """The planner's refusal, naming the user as its grant matched: root is root@'%' (its mysql.user row)."""
    return _error(DB_ACCESS_DENIED, f"Access denied for user '{user}'@'%' to database '{database}'")


def write_in_snapshot() -> MysqlError:
    return _error(UNKNOWN, "can not execute write statement when 'tidb_snapshot' is set")


def drop_mysql_forbidden() -> MysqlError:
    return _error(UNKNOWN, "Drop 'mysql' database is forbidden")


def access_denied(user: str, host: str, using_password: bool) -> str:
    """The message only: mysql-mimic sends it with code 1045 itself."""
    return f"Access denied for user '{user}'@'{host}' (using password: {'YES' if using_password else 'NO'})"

