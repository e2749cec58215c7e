"""A cluster's accounts other than root: rows of `mysql.user`, kept as MVCC records beside the user data.

Root's password lives in the cluster's Secret (`sql/credentials.py`); every other account is a record
`mysql//user/<user>@%` holding its `authentication_string` (mysql_native_password's double SHA-1). The empty path
segment keeps these keys outside the user-data layout (`schema.parse_key` answers None), so catalogs, checksums and
BR's fresh-cluster check never see them, while BR snapshots and logs carry them like any key, as they carry the
`mysql` schema. What a full restore does with them is `restore_accounts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha1
from typing import Any

from .mvcc import SYSTEM_PREFIX, Change, ClusterData

PREFIX = f"{SYSTEM_PREFIX}user/"
HOST = "%"


def account_key(user: str) -> str:
    return f"{PREFIX}{user}@{HOST}"


def is_account_key(key: str) -> bool:
    return key.startswith(PREFIX)


def auth_string(password: str) -> str:
    """mysql_native_password's stored form: hex of SHA1(SHA1(password)), as TiDB keeps it without the '*'."""
    return sha1(sha1(password.encode("utf-8")).digest()).hexdigest()


def account_row(user: str, password: str) -> dict[str, Any]:
    return {"User": user, "Host": HOST, "authentication_string": auth_string(password),
            "plugin": "mysql_native_password"}


def account_auth(data: ClusterData, user: str) -> str | None:
    """The stored authentication string of `user`@'%', None when there is no such account."""
    row = data.get(account_key(user))
    return str(row["authentication_string"]) if row else None


def restore_accounts(target: ClusterData, restored: Iterable[str], ts: int) -> list[Change]:
    """What a full-cluster restore does to the target's privilege tables (tidb `br/pkg/restore/snap_client/
    systable_restore.go`: `sysPrivilegeTableMap` tables are restored when `fullClusterRestore`, `--with-sys-table`
    defaulting to true in `br/pkg/task/restore.go`; the users of `--reset-sys-users`, default `cloud_admin, root`,
    keep the target's rows): every other account of the target is replaced by the backup's rows, so an account
    the backup does not hold is gone. Returns the deletions at `ts`; the backup's accounts come with its rows."""
    keep = set(restored)
    return [Change(ts, key, None) for key in target.live_keys() if is_account_key(key) and key not in keep]
