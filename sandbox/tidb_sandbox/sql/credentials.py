"""Each cluster's root password lives in a Kubernetes Secret, as TiDB Operator's docs keep it
(`backup-<cluster>-tidb-secret`, key `password`); logins read it at connect time."""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from ..k8s.store import Store

ROOT_USER = "root"
PASSWORD_KEY = "password"


def secret_name(cluster: str) -> str:
    return f"backup-{cluster}-tidb-secret"


def ensure_secret(store: Store, namespace: str, cluster: str) -> None:
    """Create the cluster's Secret with a random password, unless it exists (then its password counts)."""
    rt = store.type_for("", "secrets")
    if store.find(rt, namespace, secret_name(cluster)) is None:
        password = base64.b64encode(secrets.token_urlsafe(12).encode()).decode()
        store.create(rt, namespace, {"metadata": {"name": secret_name(cluster)}, "type": "Opaque",
                                     "data": {PASSWORD_KEY: password}})


def read_password(store: Store, namespace: str, cluster: str) -> str | None:
    """The password the Secret holds now, None without the Secret or its key."""
    secret = store.find(store.type_for("", "secrets"), namespace, secret_name(cluster))
    encoded = ((secret or {}).get("data") or {}).get(PASSWORD_KEY)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def env_var(namespace: str, cluster: str) -> str:
    """TIDB_SANDBOX_SQL_<NAMESPACE>_<CLUSTER>, upper case, '-' as '_'."""
    return f"TIDB_SANDBOX_SQL_{namespace}_{cluster}".upper().replace("-", "_").replace(".", "_")


def mysql_url(host: str, port: int, password: str, user: str = ROOT_USER) -> str:
    return f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}"
