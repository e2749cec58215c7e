"""SHOW GRANTS for the session's own account, as TiDB answers it.

pingcap/tidb `pkg/privilege/privileges/cache.go` `showGrants`: one column `Grants for <user>@<host>`; the global
privileges as one `GRANT ... ON *.* TO '<user>'@'<host>'` line (`ALL PRIVILEGES` when every one is held, `WITH
GRANT OPTION` with the grant privilege), or, with none, `GRANT USAGE ON *.* ...` ("a MySQL convention"). Root,
made by TiDB's bootstrap with every privilege (`pkg/session/bootstrap.go`), answers `GRANT ALL PRIVILEGES ON *.*
TO 'root'@'%' WITH GRANT OPTION`. The sandbox has no GRANT statement, so every other account holds what a
`CREATE USER` without a GRANT holds in TiDB: USAGE only. (It does not refuse what such an account then reads:
sandbox/FIDELITY.md says so.)
"""

from __future__ import annotations

from mysql_mimic import ColumnType, ResultColumn, ResultSet
from sqlglot import expressions as exp

from . import errors
from .credentials import ROOT_USER

HOST = "%"


def show_grants(user: str, show: exp.Show) -> ResultSet:
    """`SHOW GRANTS` (the current account's); `SHOW GRANTS FOR ...` is refused as not supported."""
    if show.args.get("for_user") or show.args.get("for_role") or show.args.get("target"):
        raise errors.not_supported("SHOW GRANTS FOR another account")
    if user == ROOT_USER:
        line = f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'{HOST}' WITH GRANT OPTION"
    else:
        line = f"GRANT USAGE ON *.* TO '{user}'@'{HOST}'"
    return ResultSet([[line]], [ResultColumn(f"Grants for {user}@{HOST}", ColumnType.VAR_STRING)])
