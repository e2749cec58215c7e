"""The sandbox's own HTTP API under /sandbox/v1: cluster rows, faults, settings, watch history, audit, SQL.

Tests and the demo use it to ask what a real cluster would answer through SQL ("rows of cluster X as
of TSO T") and to break things on purpose.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .data.mvcc import Change
from .data.schema import row_key, table_key
from .sql.config import all_settings, update_settings

if TYPE_CHECKING:
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


def install_control(app: web.Application, sandbox: Sandbox) -> None:
    from .app import WorkloadRates

    async def info(request: web.Request) -> web.Response:
        return _json({"url": sandbox.url, "kubeconfig": str(sandbox.kubeconfig_path),
                      "envFile": str(sandbox.env_path), "endpoints": sandbox.endpoints_env(),
                      "config": all_settings(sandbox.config, sandbox.sql_config), "faults": sandbox.faults.to_dict(),
                      "tso": sandbox.alloc.next(), "activeWatches": sandbox.store.active_watches})

    async def get_faults(request: web.Request) -> web.Response:
        return _json(sandbox.faults.to_dict())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            sandbox.faults.update(await _body(request))
        except ValueError as exc:
            return _bad(str(exc))
        return _json(sandbox.faults.to_dict())

    async def get_config(request: web.Request) -> web.Response:
        return _json(all_settings(sandbox.config, sandbox.sql_config))

    async def set_config(request: web.Request) -> web.Response:
        body = await _body(request)
        sandbox.sql.times.settle()  # GC runs made under the old settings stay made
        try:
            update_settings(sandbox.config, sandbox.sql_config, body)
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return _json(all_settings(sandbox.config, sandbox.sql_config))

    def cluster_summary(cluster: Any) -> dict[str, Any]:
        data = cluster.data
        return {"namespace": cluster.namespace, "name": cluster.name, "resource": cluster.resource,
                "clusterId": data.cluster_id, "rows": len(data.rows_now()), "empty": data.is_empty(),
                "versions": data.version_count, "minTs": data.min_ts, "maxTs": data.max_ts,
                "workload": cluster.workload.rates if cluster.workload else None,
                "sql": sandbox.sql.url(cluster.namespace, cluster.name)}

    async def list_clusters(request: web.Request) -> web.Response:
        return _json({"clusters": [cluster_summary(c) for c in sandbox.clusters.all()]})

    async def create_cluster(request: web.Request) -> web.Response:
        body = await _body(request)
        namespace, name = body.get("namespace"), body.get("name")
        group = body.get("apiGroup", "pingcap.com")
        if not namespace or not name:
            return _bad("namespace and name are required")
        if group not in ("pingcap.com", "br.pingcap.com"):
            return _bad(f"apiGroup must be pingcap.com or br.pingcap.com, got {group!r}")
        if sandbox.clusters.get(namespace, name) is not None:
            return _bad(f"cluster {namespace}/{name} already exists", 409)
        rates = body.get("workload")
        try:
            workload = WorkloadRates(**rates) if rates else None
        except TypeError as exc:
            return _bad(f"workload: {exc}")
        cluster = sandbox.create_cluster(namespace, name, group, workload=None)
        seeded = None
        if body.get("seedDays"):
            from .seed import seed_history_for

            seeded = await seed_history_for(sandbox, cluster, days=float(body["seedDays"]),
                                            storage=body.get("storage", "s3"), root=body.get("storageRoot"))
        sandbox.attach_workload(cluster, workload)
        return _json({**cluster_summary(cluster), "seeded": seeded}, 201)

    def find(request: web.Request) -> Any:
        cluster = sandbox.clusters.get(request.match_info["namespace"], request.match_info["name"])
        if cluster is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such cluster"}), content_type="application/json")
        return cluster

    async def get_cluster(request: web.Request) -> web.Response:
        return _json(cluster_summary(find(request)))

    async def get_rows(request: web.Request) -> web.Response:
        cluster = find(request)
        as_of = request.query.get("asOf")
        if as_of:
            if not as_of.isdigit():
                return _bad(f"asOf must be a decimal TSO, got {as_of!r}")
            tso = int(as_of)
            rows = cluster.data.rows_at(tso)
        else:
            tso = sandbox.alloc.next()
            rows = cluster.data.rows_at(tso)
        body = {"namespace": cluster.namespace, "name": cluster.name, "tso": tso, "count": len(rows),
                "digest": rows_digest(rows)}
        if request.query.get("rows", "true") != "false":
            body["rows"] = rows
        return _json(body)

    async def write_row(request: web.Request) -> web.Response:
        """Insert, change or delete one row of an existing table now, e.g. to make two clusters differ."""
        cluster = find(request)
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
        ts = sandbox.alloc.next()
        cluster.data.apply([Change(ts, key, row)])
        return _json({"key": key, "ts": ts, "row": row})

    async def sql_endpoints(request: web.Request) -> web.Response:
        return _json(sandbox.sql.urls())

    async def compact(request: web.Request) -> web.Response:
        return _json({"compactedResourceVersion": sandbox.store.compact()})

    async def audit(request: web.Request) -> web.Response:
        return _json({"entries": list(sandbox.audit.entries)})

    async def clear_audit(request: web.Request) -> web.Response:
        sandbox.audit.entries.clear()
        return _json({"entries": []})

    async def requests(request: web.Request) -> web.Response:
        """Kubernetes API requests since start (the audit's counters), and the watches open now."""
        return _json({**sandbox.audit.totals(), "activeWatches": sandbox.store.active_watches})

    async def tso(request: web.Request) -> web.Response:
        return _json({"tso": sandbox.alloc.next()})

    r = app.router
    r.add_get(f"{PREFIX}/info", info)
    r.add_get(f"{PREFIX}/faults", get_faults)
    r.add_route("PATCH", f"{PREFIX}/faults", set_faults)
    r.add_put(f"{PREFIX}/faults", set_faults)
    r.add_get(f"{PREFIX}/config", get_config)
    r.add_route("PATCH", f"{PREFIX}/config", set_config)
    r.add_get(f"{PREFIX}/clusters", list_clusters)
    r.add_post(f"{PREFIX}/clusters", create_cluster)
    r.add_get(f"{PREFIX}/clusters/{{namespace}}/{{name}}", get_cluster)
    r.add_get(f"{PREFIX}/clusters/{{namespace}}/{{name}}/rows", get_rows)
    r.add_post(f"{PREFIX}/clusters/{{namespace}}/{{name}}/rows", write_row)
    r.add_get(f"{PREFIX}/sql", sql_endpoints)
    r.add_post(f"{PREFIX}/watch-history/compact", compact)
    r.add_get(f"{PREFIX}/audit", audit)
    r.add_delete(f"{PREFIX}/audit", clear_audit)
    r.add_get(f"{PREFIX}/requests", requests)
    r.add_get(f"{PREFIX}/tso", tso)
