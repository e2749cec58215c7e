"""One mysql-mimic server per simulated cluster on 127.0.0.1, with logins checked against its Secret."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mysql_mimic import IdentityProvider, MysqlServer, NativePasswordAuthPlugin, User
from mysql_mimic.auth import AuthInfo, AuthState, Forbidden, Success
from mysql_mimic.control import LocalControl
from mysql_mimic.utils import nonce

from ..data.accounts import account_auth
from ..data.tso import TsoAllocator
from ..k8s.store import Store
from . import credentials, errors
from .config import SqlConfig
from .readts import ClusterTimes, ReadTimes
from .session import CLIENT_HOST, Backend, TidbSession
from .tidb import DEFAULT_RELEASE

if TYPE_CHECKING:
    from ..operator.clusters import SimCluster

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


class _NativePassword(NativePasswordAuthPlugin):
    """mysql_native_password, refusing with TiDB's "Access denied for user 'u'@'host' (using password: …)"."""

    async def auth(self, auth_info: AuthInfo | None = None) -> AuthState:
        if auth_info and auth_info.handshake_plugin_name == self.name and auth_info.handshake_auth_data:
            challenge = auth_info.handshake_auth_data.rstrip(b"\x00")  # the handshake's nonce is reused
        else:
            challenge = nonce(20)
            auth_info = yield challenge + b"\x00"
        assert auth_info is not None
        if self.password_matches(user=auth_info.user, scramble=auth_info.data, nonce=challenge):
            yield Success(auth_info.user.name)
        else:
            yield Forbidden(errors.access_denied(auth_info.username, CLIENT_HOST, bool(auth_info.data)))


class SecretIdentity(IdentityProvider):
    """User root with the password the cluster's Secret holds at login time; any other user as the cluster's
    `mysql.user` holds it now (`data/accounts.py`: a full restore replaces those); an unknown user matches nothing."""

    def __init__(self, password: Callable[[], str | None],
                 accounts: Callable[[str], str | None] = lambda user: None) -> None:
        self.password = password
        self.accounts = accounts
        self._plugin = _NativePassword()

    def get_plugins(self) -> list[_NativePassword]:  # type: ignore[override]
        return [self._plugin]

    async def get_user(self, username: str) -> User | None:
        stored = None if username == credentials.ROOT_USER else self.accounts(username)
        password = self.password() if username == credentials.ROOT_USER else None
        if stored is not None:
            auth = stored
        elif password is None:  # a hash no password has, so the refusal reads like a wrong password
            auth = hashlib.sha1(os.urandom(20)).hexdigest()
        else:
            auth = NativePasswordAuthPlugin.create_auth_string(password) if password else ""
        return User(name=username, auth_string=auth, auth_plugin=self._plugin.name)


class _Connections(LocalControl):
    """Remembers open connections so that stopping an endpoint ends them too."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[int] = set()

    async def add(self, connection: Any) -> int:
        connection_id = await super().add(connection)
        self.ids.add(connection_id)
        return connection_id

    async def remove(self, connection_id: int) -> None:
        self.ids.discard(connection_id)
        await super().remove(connection_id)

    async def kill_all(self) -> None:
        for connection_id in list(self.ids):
            await self.kill(connection_id)


class SqlEndpoint:
    """Listens from construction on (the socket is bound at once, so its port is known synchronously);
    serving starts on the running loop."""

    def __init__(self, namespace: str, name: str, backend: Backend, password: Callable[[], str | None],
                 accounts: Callable[[str], str | None] = lambda user: None) -> None:
        self.namespace, self.name = namespace, name
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port: int = sock.getsockname()[1]
        self._control = _Connections()
        self.server = MysqlServer(session_factory=lambda: TidbSession(backend), control=self._control,
                                  identity_provider=SecretIdentity(password, accounts))
        self._started = asyncio.get_running_loop().create_task(self.server.start_server(sock=sock, port=None))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._started
        self.server.close()
        await self._control.kill_all()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), timeout=5)


def cluster_release(store: Store, cluster: SimCluster) -> str:
    """The TiDB release the cluster's CR asks for (spec.version), which VERSION() reports."""
    plural, _, group = cluster.resource.partition(".")
    obj = store.find(store.type_for(group, plural), cluster.namespace, cluster.name) or {}
    return str((obj.get("spec") or {}).get("version") or DEFAULT_RELEASE)


class SqlEndpoints:
    """The endpoints of all clusters: opened when a cluster is registered, closed when it goes."""

    def __init__(self, store: Store, alloc: TsoAllocator, config: SqlConfig) -> None:
        self.store = store
        self.config = config
        self.times = ReadTimes(alloc, config)
        # The lowest service safe point of a cluster (namespace, name): its log backup's (kernel.LogKernel),
        # set by the app once the kernel exists.
        self.service_safe_point: Callable[[tuple[str, str]], int | None] = lambda key: None
        self._endpoints: dict[tuple[str, str], SqlEndpoint] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def open(self, cluster: SimCluster) -> SqlEndpoint:
        key = (cluster.namespace, cluster.name)
        self.close(*key)
        times = ClusterTimes(self.times, lambda: self.service_safe_point(key))
        backend = Backend(cluster.data, times, self.config, lambda: cluster_release(self.store, cluster),
                          host=f"{cluster.name}-tidb-0")  # TiDB Operator's pod of the <cluster>-tidb StatefulSet
        endpoint = SqlEndpoint(cluster.namespace, cluster.name, backend,
                               lambda: credentials.read_password(self.store, cluster.namespace, cluster.name),
                               lambda user: account_auth(cluster.data, user))
        self._endpoints[key] = endpoint
        log.info("SQL endpoint of %s/%s on %s:%d", cluster.namespace, cluster.name, HOST, endpoint.port)
        return endpoint

    def close(self, namespace: str, name: str) -> None:
        endpoint = self._endpoints.pop((namespace, name), None)
        if endpoint is not None:
            task = asyncio.get_running_loop().create_task(endpoint.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        for key in list(self._endpoints):
            self.close(*key)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def url(self, namespace: str, name: str) -> str | None:
        endpoint = self._endpoints.get((namespace, name))
        if endpoint is None:
            return None
        password = credentials.read_password(self.store, namespace, name) or ""
        return credentials.mysql_url(HOST, endpoint.port, password)

    def env(self) -> dict[str, str]:
        """TIDB_SANDBOX_SQL_<NS>_<NAME>=mysql://root:PASSWORD@127.0.0.1:PORT for every endpoint."""
        found = {}
        for namespace, name in sorted(self._endpoints):
            url = self.url(namespace, name)
            if url is not None:
                found[credentials.env_var(namespace, name)] = url
        return found

    def urls(self) -> dict[str, str]:
        """`namespace/name` -> URL, for the control API and the CLI."""
        return {f"{ns}/{name}": url for ns, name in sorted(self._endpoints) if (url := self.url(ns, name))}
