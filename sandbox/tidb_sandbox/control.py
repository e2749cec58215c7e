"""The sandbox's own HTTP API under /sandbox/v1: cluster rows, faults, settings, watch history, audit, SQL.

Tests and the demo use it to ask what a real cluster would answer through SQL ("rows of cluster X as
of TSO T") and to break things on purpose.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .data.accounts import account_key, account_row
from .data.mvcc import Change
from .data.schema import row_key, table_key
from .data.workload import TABLES as WORKLOAD_TABLES
from .k8s.rbac import Rule
from .options import WorkloadRates
from .seed import STORAGE_KINDS, seed_history_for
from .sql.config import all_settings, update_settings
from .sql.credentials import ROOT_USER

if TYPE_CHECKING:  # typing only: `__main__` hands the Sandbox in
    from .app import Sandbox

PREFIX = "/sandbox/v1"


def rows_digest(rows: dict[str, Any]) -> str:
    """A content hash of a row set (every MVCC record: rows and the database and table definitions), so two
    clusters can be compared without shipping the rows."""
    canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _bad(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"invalid JSON: {exc}"}),
                                 content_type="application/json") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "the body must be a JSON object"}),
                                 content_type="application/json")
    return body


class ControlApi:
    """The /sandbox/v1 handlers over one Sandbox; `routes()` lists them for `app.add_routes`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/info", self.info),
            web.get(f"{PREFIX}/faults", self.get_faults),
            web.route("PATCH", f"{PREFIX}/faults", self.set_faults),
            web.put(f"{PREFIX}/faults", self.set_faults),
            web.get(f"{PREFIX}/config", self.get_config),
            web.route("PATCH", f"{PREFIX}/config", self.set_config),
            web.get(f"{PREFIX}/clusters", self.list_clusters),
            web.post(f"{PREFIX}/clusters", self.create_cluster),
            web.get(f"{PREFIX}/clusters/{{namespace}}/{{name}}", self.get_cluster),
            web.delete(f"{PREFIX}/clusters/{{namespace}}/{{name}}", self.delete_cluster),
            web.get(f"{PREFIX}/usage", self.usage),
            web.get(f"{PREFIX}/clusters/{{namespace}}/{{name}}/rows", self.get_rows),
            web.post(f"{PREFIX}/clusters/{{namespace}}/{{name}}/rows", self.write_row),
            web.post(f"{PREFIX}/clusters/{{namespace}}/{{name}}/accounts", self.write_account),
            web.delete(f"{PREFIX}/clusters/{{namespace}}/{{name}}/workload", self.stop_workload),
            web.get(f"{PREFIX}/sql", self.sql_endpoints),
            web.post(f"{PREFIX}/watch-history/compact", self.compact),
            web.get(f"{PREFIX}/audit", self.audit),
            web.delete(f"{PREFIX}/audit", self.clear_audit),
            web.get(f"{PREFIX}/requests", self.requests),
            web.get(f"{PREFIX}/tso", self.tso),
            web.put(f"{PREFIX}/tso/skew", self.set_tso_skew),
            web.get(f"{PREFIX}/rbac", self.get_rbac),
            web.put(f"{PREFIX}/rbac/{{token}}", self.bind_token),
            web.delete(f"{PREFIX}/rbac/{{token}}", self.unbind_token),
        ]

    def install(self, app: web.Application) -> None:
        app.add_routes(self.routes())

    async def info(self, request: web.Request) -> web.Response:
        sandbox = self.sandbox
        return _json({"url": sandbox.url, "kubeconfig": str(sandbox.kubeconfig_path),
                      "envFile": str(sandbox.env_path), "endpoints": sandbox.endpoints_env(),
                      "config": all_settings(sandbox.config, sandbox.sql_config), "faults": sandbox.faults.to_dict(),
                      "tso": sandbox.alloc.next(), "activeWatches": sandbox.store.active_watches,
                      "usage": sandbox.usage(), "seedTemplates": sandbox.seed_templates.describe()})

    async def usage(self, request: web.Request) -> web.Response:
        """The sandbox's own CPU seconds and what is alive (clusters, workloads, log tasks, tracked backups)."""
        return _json(self.sandbox.usage())

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.sandbox.faults.to_dict())

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            self.sandbox.faults.update(await _body(request))
        except ValueError as exc:
            return _bad(str(exc))
        return _json(self.sandbox.faults.to_dict())

    async def get_config(self, request: web.Request) -> web.Response:
        return _json(all_settings(self.sandbox.config, self.sandbox.sql_config))

    async def set_config(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.sandbox.sql.times.settle()  # GC runs made under the old settings stay made
        try:
            update_settings(self.sandbox.config, self.sandbox.sql_config, body)
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return _json(all_settings(self.sandbox.config, self.sandbox.sql_config))

    def cluster_summary(self, cluster: Any) -> dict[str, Any]:
        data = cluster.data
        return {"namespace": cluster.namespace, "name": cluster.name, "resource": cluster.resource,
                "clusterId": data.cluster_id, "rows": len(data.rows_now()), "empty": data.is_empty(),
                "versions": data.version_count, "minTs": data.min_ts, "maxTs": data.max_ts,
                "workload": cluster.workload.rates if cluster.workload else None,
                "sql": self.sandbox.sql.url(cluster.namespace, cluster.name)}

    async def list_clusters(self, request: web.Request) -> web.Response:
        return _json({"clusters": [self.cluster_summary(c) for c in self.sandbox.clusters.all()]})

    async def create_cluster(self, request: web.Request) -> web.Response:
        body = await _body(request)
        namespace, name = body.get("namespace"), body.get("name")
        group = body.get("apiGroup", "pingcap.com")
        if not namespace or not name:
            return _bad("namespace and name are required")
        if group not in ("pingcap.com", "br.pingcap.com"):
            return _bad(f"apiGroup must be pingcap.com or br.pingcap.com, got {group!r}")
        if self.sandbox.clusters.get(namespace, name) is not None:
            return _bad(f"cluster {namespace}/{name} already exists", 409)
        storage, template = body.get("storage", "s3"), body.get("seedTemplate", True)
        if storage not in STORAGE_KINDS:
            return _bad(f"storage must be one of {', '.join(STORAGE_KINDS)}, got {storage!r}")
        days = body.get("seedDays") or 0
        if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
            return _bad(f"seedDays must be a number of days, 0 or more, got {days!r}")
        if not isinstance(template, bool):
            return _bad(f"seedTemplate must be true or false, got {template!r}")
        rates = body.get("workload")
        try:
            workload = WorkloadRates(**rates) if rates else None
        except TypeError as exc:
            return _bad(f"workload: {exc}")
        known = [t.table.key.replace("/", ".") for t in WORKLOAD_TABLES]
        if workload is not None and workload.tables is not None:
            unknown = [t for t in workload.tables if t not in known]
            if unknown or not isinstance(workload.tables, list | tuple):
                return _bad(f"workload.tables must be a list of {', '.join(known)}; got {workload.tables!r}")
            workload.tables = tuple(workload.tables)
        cluster = self.sandbox.create_cluster(namespace, name, group, workload=None)
        seeded = None
        if days:
            seeded = await seed_history_for(self.sandbox, cluster, days=float(days), storage=storage,
                                            root=body.get("storageRoot"), template=template)
        self.sandbox.attach_workload(cluster, workload)
        return _json({**self.cluster_summary(cluster), "seeded": seeded}, 201)

    def find(self, request: web.Request) -> Any:
        cluster = self.sandbox.clusters.get(request.match_info["namespace"], request.match_info["name"])
        if cluster is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such cluster"}), content_type="application/json")
        return cluster

    async def get_cluster(self, request: web.Request) -> web.Response:
        return _json(self.cluster_summary(self.find(request)))

    async def delete_cluster(self, request: web.Request) -> web.Response:
        try:
            gone = self.sandbox.delete_cluster(request.match_info["namespace"], request.match_info["name"])
        except LookupError:
            return _bad("no such cluster", 404)
        return _json(gone)

    async def get_rows(self, request: web.Request) -> web.Response:
        cluster = self.find(request)
        as_of = request.query.get("asOf")
        if as_of:
            if not as_of.isdigit():
                return _bad(f"asOf must be a decimal TSO, got {as_of!r}")
            tso = int(as_of)
            rows = cluster.data.rows_at(tso)
        else:
            tso = self.sandbox.alloc.next()
            rows = cluster.data.rows_at(tso)
        body = {"namespace": cluster.namespace, "name": cluster.name, "tso": tso, "count": len(rows),
                "digest": rows_digest(rows)}
        if request.query.get("rows", "true") != "false":
            body["rows"] = rows
        return _json(body)

    async def write_row(self, request: web.Request) -> web.Response:
        """Insert, change or delete one row of an existing table now, e.g. to make two clusters differ."""
        cluster = self.find(request)
        body = await _body(request)
        database, table, row_id = body.get("database"), body.get("table"), body.get("id")
        if not isinstance(database, str) or not isinstance(table, str) or not isinstance(row_id, int):
            return _bad("database and table (strings) and id (an integer) are required")
        if cluster.data.get(table_key(database, table)) is None:
            return _bad(f"Table '{database}.{table}' doesn't exist", 404)
        key = row_key(database, table, row_id)
        if body.get("delete"):
            row = None
        else:
            values = body.get("values") or {}
            if not isinstance(values, dict):
                return _bad("values must be an object of column values")
            row = {**(cluster.data.get(key) or {"id": row_id}), **values}
        ts = self.sandbox.alloc.next()
        cluster.data.apply([Change(ts, key, row)])
        return _json({"key": key, "ts": ts, "row": row})

    async def stop_workload(self, request: web.Request) -> web.Response:
        """Stop the cluster's workload: its data stays as it is from now on (until a restore or a test writes)."""
        cluster = self.find(request)
        self.sandbox.attach_workload(cluster, None)
        return _json(self.cluster_summary(cluster))

    async def write_account(self, request: web.Request) -> web.Response:
        """Create or change (`CREATE USER` / `ALTER USER ... IDENTIFIED BY`) or drop an account other than root."""
        cluster = self.find(request)
        body = await _body(request)
        user, password = body.get("user"), body.get("password")
        if not isinstance(user, str) or not user or user == ROOT_USER:
            return _bad(f"user must be a name other than {ROOT_USER!r} (root's password is the cluster's Secret)")
        if not body.get("delete") and not isinstance(password, str):
            return _bad("password (a string) is required unless delete is true")
        row = None if body.get("delete") else account_row(user, str(password))
        ts = self.sandbox.alloc.next()
        cluster.data.apply([Change(ts, account_key(user), row)])
        return _json({"key": account_key(user), "ts": ts})

    async def sql_endpoints(self, request: web.Request) -> web.Response:
        return _json(self.sandbox.sql.urls())

    async def compact(self, request: web.Request) -> web.Response:
        return _json({"compactedResourceVersion": self.sandbox.store.compact()})

    async def audit(self, request: web.Request) -> web.Response:
        return _json({"entries": list(self.sandbox.audit.entries)})

    async def clear_audit(self, request: web.Request) -> web.Response:
        self.sandbox.audit.entries.clear()
        return _json({"entries": []})

    async def requests(self, request: web.Request) -> web.Response:
        """Kubernetes API requests since start (the audit's counters), and the watches open now."""
        return _json({**self.sandbox.audit.totals(), "activeWatches": self.sandbox.store.active_watches})

    async def tso(self, request: web.Request) -> web.Response:
        return _json({"tso": self.sandbox.alloc.next()})

    async def set_tso_skew(self, request: web.Request) -> web.Response:
        """`{"seconds": 120}`: PD's clock runs that far ahead of the sandbox's (negative: behind); 0 undoes it."""
        seconds = (await _body(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return _bad(f"seconds must be a number (PD's clock minus the workers'), got {seconds!r}")
        self.sandbox.alloc.skew_seconds = float(seconds)
        return _json({"seconds": float(seconds), "tso": self.sandbox.alloc.next()})

    async def get_rbac(self, request: web.Request) -> web.Response:
        """The tokens bound to Role rules (every other token is the admin)."""
        return _json({token: s.to_dict() for token, s in self.sandbox.authorizer.subjects.items()})

    async def bind_token(self, request: web.Request) -> web.Response:
        """`{"rules": [PolicyRule...]}`: the token's requests are allowed only by these rules (a test that takes
        one verb away copies include/rbac.yaml's rules without it)."""
        body = await _body(request)
        rules = body.get("rules")
        if not isinstance(rules, list):
            return _bad("rules must be a list of PolicyRules ({apiGroups, resources, verbs})")
        try:
            subject = self.sandbox.authorizer.bind(request.match_info["token"], [Rule.parse(r) for r in rules])
        except ValueError as exc:
            return _bad(str(exc))
        return _json(subject.to_dict())

    async def unbind_token(self, request: web.Request) -> web.Response:
        if not self.sandbox.authorizer.unbind(request.match_info["token"]):
            return _bad("no such token bound", 404)
        return _json({"unbound": request.match_info["token"]})


def install_control(app: web.Application, sandbox: Sandbox) -> None:
    """Add the control API's routes to `app` (what `__main__` does through `Sandbox.start(routes=...)`)."""
    ControlApi(sandbox).install(app)
