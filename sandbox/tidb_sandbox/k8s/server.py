"""The Kubernetes API over HTTP: discovery, OpenAPI, CRUD, patch, watch, Table output.

Built on aiohttp. Clients talk to it unchanged through a kubeconfig: kubectl, the `kubernetes` and
`kubernetes_asyncio` clients, and Airflow's Kubernetes hooks. Written here because no Python library serves
the Kubernetes API (kube-apiserver itself, or envtest's, would need Go binaries and etcd).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import yaml
from aiohttp import web

from .. import clock
from ..faults import Faults
from . import openapi
from .crd import ResourceType
from .errors import ApiError, bad_request, conflict
from .patch import apply_patch
from .rbac import Authorizer
from .selectors import label_matcher, parse_field_selector, selected_name
from .store import Event, Store
from .table import to_table

log = logging.getLogger(__name__)

SERVER_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-tidb-sandbox", "gitCommit": "", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64",
}
WATCH_DEFAULT_TIMEOUT = 1800.0


class Audit:
    """What clients asked for: (verb, group, resource, subresource, namespace, name), newest last.

    The entries keep the last `size` requests; `counts` counts every request since start by verb and
    resource, never truncated (a benchmark's requests per minute outlast the entries).
    """

    def __init__(self, size: int = 20000):
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.counts: dict[tuple[str, str], int] = {}

    def record(self, **entry: Any) -> None:
        self.entries.append(entry)
        key = (entry.get("verb", ""), entry.get("resource", ""))
        self.counts[key] = self.counts.get(key, 0) + 1

    def totals(self) -> dict[str, Any]:
        by_verb: dict[str, int] = {}
        for (verb, _), n in self.counts.items():
            by_verb[verb] = by_verb.get(verb, 0) + n
        return {"total": sum(self.counts.values()), "byVerb": by_verb,
                "byResource": {f"{verb} {resource}": n for (verb, resource), n in sorted(self.counts.items())}}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json", headers=headers)


def _error(err: ApiError) -> web.Response:
    return _json(err.status(), status=err.code)


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept.split(",")[0] or accept.startswith("application/json;as=Table")


class ApiServer:
    def __init__(self, store: Store, types: list[ResourceType], crd_manifests: list[dict[str, Any]],
                 faults: Faults, audit: Audit, group_order: list[str], authorizer: Authorizer | None = None):
        self.store = store
        self.authorizer = authorizer or Authorizer(role_file=None)
        self.types = types
        self.crd_manifests = crd_manifests
        self.faults = faults
        self.audit = audit
        self.group_order = group_order
        self._by_group_version: dict[tuple[str, str], list[ResourceType]] = {}
        for rt in types:
            self._by_group_version.setdefault((rt.group, rt.version), []).append(rt)
            store.register(rt)
        self.openapi = openapi.OpenAPICache(types)

    # -- application ---------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._fault_middleware)
        r = app.router
        r.add_get("/version", self._version)
        r.add_get("/version/", self._version)  # client-go's and the Python client's VersionApi ask this one
        r.add_get("/healthz", self._ok)
        r.add_get("/readyz", self._ok)
        r.add_get("/livez", self._ok)
        r.add_get("/api", self._api_versions)
        r.add_get("/apis", self._api_groups)
        r.add_get("/openapi/v2", self._openapi_v2)
        r.add_get("/openapi/v3", self._openapi_v3_index)
        r.add_get("/openapi/v3/{path:.+}", self._openapi_v3_doc)
        # Before the generic route, which would take it for a resource of a group the sandbox does not serve.
        r.add_post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", self._access_review)
        r.add_route("*", "/api/v1", self._core_resources)
        r.add_route("*", "/api/v1/{path:.+}", self._resource_request)
        r.add_get("/apis/{group}", self._api_group)
        r.add_get("/apis/{group}/{version}", self._group_resources)
        r.add_route("*", "/apis/{group}/{version}/{path:.+}", self._resource_request)

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.path.startswith(("/api/", "/apis/")) or request.path in ("/api", "/apis"):
            code = self.faults.api_error()
            if code is not None:
                reason = "ServiceUnavailable" if code == 503 else "InternalError"
                err = ApiError(code, reason, f"sandbox fault: injected {code}")
                if request.method in ("POST", "PUT", "PATCH", "DELETE") and self.faults.error_after_write():
                    # The write reached the store, the answer did not reach the client (an apiserver
                    # timing out on etcd, a load balancer dropping the response): a blind retry duplicates.
                    try:
                        await handler(request)
                    except web.HTTPException:
                        pass
                    err = ApiError(code, reason, f"sandbox fault: injected {code} after the write was applied")
                return _error(err)
        return await handler(request)

    # -- discovery -----------------------------------------------------------------------------
    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _version(self, request: web.Request) -> web.Response:
        return _json(SERVER_VERSION)

    async def _api_versions(self, request: web.Request) -> web.Response:
        host = request.host
        return _json({"kind": "APIVersions", "versions": ["v1"],
                      "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})

    def _groups(self) -> list[str]:
        present = {g for g, _ in self._by_group_version if g}
        ordered = [g for g in self.group_order if g in present]
        return ordered + sorted(present - set(ordered))

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = sorted({v for g, v in self._by_group_version if g == group})
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0]}

    async def _api_groups(self, request: web.Request) -> web.Response:
        return _json({"kind": "APIGroupList", "apiVersion": "v1",
                      "groups": [self._group_doc(g) for g in self._groups()]})

    async def _api_group(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        if group not in self._groups():
            return _error(ApiError(404, "NotFound", "the server could not find the requested resource"))
        return _json(self._group_doc(group))

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rt in self._by_group_version.get((group, version), []):
            entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                     "kind": rt.kind, "verbs": list(rt.verbs)}
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            if rt.status_subresource:
                resources.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                                  "kind": rt.kind, "verbs": ["get", "patch", "update"]})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    async def _core_resources(self, request: web.Request) -> web.Response:
        return _json(self._resource_list("", "v1"))

    async def _group_resources(self, request: web.Request) -> web.Response:
        group, version = request.match_info["group"], request.match_info["version"]
        if (group, version) not in self._by_group_version:
            return _error(ApiError(404, "NotFound", "the server could not find the requested resource"))
        return _json(self._resource_list(group, version))

    # -- OpenAPI -------------------------------------------------------------------------------
    async def _openapi_v2(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "protobuf" in accept and "json" not in accept:
            # We serve JSON only; 406 makes clients fall back as they do for JSON-only servers.
            return _error(ApiError(406, "NotAcceptable", "only application/json is served"))
        return web.Response(body=self.openapi.v2(), content_type="application/json")

    async def _openapi_v3_index(self, request: web.Request) -> web.Response:
        return _json(self.openapi.index())

    async def _openapi_v3_doc(self, request: web.Request) -> web.Response:
        # Built and serialised once; the bytes are what the index's hash was computed over.
        path = request.match_info["path"]
        found = self.openapi.v3(path)
        if found is None:
            return _error(ApiError(404, "NotFound", f"openapi document {path} not found"))
        body, digest = found
        return web.Response(body=body, content_type="application/json", headers={"ETag": f'"{digest}"'})

    # -- resources -----------------------------------------------------------------------------
    def _resolve(self, request: web.Request) -> tuple[ResourceType, str | None, str | None, str | None]:
        group = request.match_info.get("group", "")
        version = request.match_info.get("version", "v1")
        segments = [s for s in request.match_info["path"].split("/") if s]
        by_plural = {rt.plural: rt for rt in self._by_group_version.get((group, version), [])}
        namespace = None
        if (len(segments) >= 3 and segments[0] == "namespaces" and segments[2] in by_plural
                and by_plural[segments[2]].namespaced):
            namespace, segments = segments[1], segments[2:]
        rt = by_plural.get(segments[0])
        if rt is None or len(segments) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = segments[1] if len(segments) > 1 else None
        sub = segments[2] if len(segments) > 2 else None
        if sub is not None and not (sub == "status" and rt.status_subresource):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt, namespace, name, sub

    async def _resource_request(self, request: web.Request) -> web.StreamResponse:
        try:
            rt, namespace, name, sub = self._resolve(request)
            verb = self._verb(request, name)
            self.authorizer.authorize(request.headers.get("Authorization", ""), verb, rt.group, rt.plural, sub or "",
                                      namespace or "", name or "")
            # `peer`: the client's TCP connection, so that tests count connections, not only requests.
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.audit.record(verb=verb, group=rt.group, resource=rt.plural, subresource=sub or "",
                              namespace=namespace or "", name=name or "", time=clock.time(),
                              peer=f"{peer[0]}:{peer[1]}" if peer else "")
            if verb == "watch":
                return await self._watch(request, rt, namespace)
            handler = {
                "list": self._list, "get": self._get, "create": self._create, "update": self._update,
                "patch": self._patch, "delete": self._delete, "deletecollection": self._delete_collection,
            }[verb]
            return await handler(request, rt, namespace, name, sub)
        except ApiError as err:
            return _error(err)

    async def _access_review(self, request: web.Request) -> web.Response:
        """POST selfsubjectaccessreviews: may the caller do this? Answered from the rules its requests meet."""
        try:
            body = await self._body(request)
            return _json(self.authorizer.review(request.headers.get("Authorization", ""), body), 201)
        except ApiError as err:
            return _error(err)

    @staticmethod
    def _verb(request: web.Request, name: str | None) -> str:
        method = request.method
        if method == "GET":
            if name is None:
                return "watch" if request.query.get("watch", "").lower() in ("true", "1") else "list"
            return "get"
        if method == "POST" and name is None:
            return "create"
        if method == "PUT" and name is not None:
            return "update"
        if method == "PATCH" and name is not None:
            return "patch"
        if method == "DELETE":
            return "delete" if name is not None else "deletecollection"
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _respond(self, request: web.Request, rt: ResourceType, obj: dict[str, Any], status: int = 200,
                 warnings: list[str] | None = None) -> web.Response:
        headers = {}
        if warnings:
            headers["Warning"] = ", ".join(f'299 - {json.dumps(w)}' for w in warnings)
        if _wants_table(request):
            body = to_table(rt, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                            include_object=request.query.get("includeObject", "Metadata"))
            return _json(body, status, headers)
        return _json(obj, status, headers)

    def _check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        ns_type = self.store.type_for("", "namespaces")
        if namespace is None or ns_type is None:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        ns = self.store.find(ns_type, None, namespace)
        if ns is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                                             "because it is being terminated")

    @staticmethod
    async def _body(request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            raise bad_request("the request body is empty")
        try:
            if "yaml" in request.content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from exc

    @staticmethod
    def _field_validation(request: web.Request) -> str:
        level = request.query.get("fieldValidation", "Warn") or "Warn"
        if level not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", "Strict", got "{level}"')
        return level

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        return request.query.get("dryRun") == "All"

    async def _list(self, request, rt, namespace, name, sub) -> web.Response:
        labels = label_matcher(request.query.get("labelSelector"))
        fields_match = parse_field_selector(request.query.get("fieldSelector"))
        items, rv = self.store.list(rt, namespace, lambda o: labels(o) and fields_match(o))
        if _wants_table(request):
            return _json(to_table(rt, items, resource_version=str(rv),
                                  include_object=request.query.get("includeObject", "Metadata")))
        return _json({"apiVersion": rt.api_version, "kind": rt.list_kind,
                      "metadata": {"resourceVersion": str(rv)}, "items": items})

    async def _get(self, request, rt, namespace, name, sub) -> web.Response:
        return self._respond(request, rt, self.store.get(rt, namespace, name))

    async def _create(self, request, rt, namespace, name, sub) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be an object")
        body_ns = (body.get("metadata") or {}).get("namespace")
        if rt.namespaced and body_ns not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        self._check_namespace(rt, namespace)
        if rt.plural == "namespaces":
            body.setdefault("status", {"phase": "Active"})
        warnings: list[str] = []
        obj = self.store.create(rt, namespace, body, dry_run=self._dry_run(request),
                                field_validation=self._field_validation(request), warnings=warnings)
        return self._respond(request, rt, obj, 201, warnings)

    async def _update(self, request, rt, namespace, name, sub) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be an object")
        warnings: list[str] = []
        obj = self.store.update(rt, namespace, name, body, subresource=sub, dry_run=self._dry_run(request),
                                field_validation=self._field_validation(request), warnings=warnings)
        return self._respond(request, rt, obj, 200, warnings)

    async def _patch(self, request, rt, namespace, name, sub) -> web.Response:
        if self.faults.take_patch_conflict():
            raise conflict(rt.group, rt.plural, name)
        body = await self._body(request)
        current = self.store.get(rt, namespace, name)
        patched = apply_patch(request.headers.get("Content-Type", ""), current, body)
        if not isinstance(patched, dict):
            raise bad_request("the patched object must be an object")
        # A resourceVersion in the patch is a precondition (optimistic lock); otherwise patch the latest.
        patched.setdefault("metadata", {})
        sent_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        patched["metadata"]["resourceVersion"] = sent_rv or current["metadata"]["resourceVersion"]
        warnings: list[str] = []
        obj = self.store.update(rt, namespace, name, patched, subresource=sub, dry_run=self._dry_run(request),
                                field_validation=self._field_validation(request), warnings=warnings)
        return self._respond(request, rt, obj, 200, warnings)

    async def _delete(self, request, rt, namespace, name, sub) -> web.Response:
        if rt.plural == "namespaces":
            return _json(self._delete_namespace(rt, name))
        obj = self.store.delete(rt, namespace, name, dry_run=self._dry_run(request))
        return _json(obj)

    def _delete_namespace(self, rt: ResourceType, name: str) -> dict[str, Any]:
        """Mark the namespace Terminating and delete its content; it goes once the content is gone."""
        ns = self.store.get(rt, None, name)
        ns.setdefault("status", {})["phase"] = "Terminating"
        ns = self.store.update(rt, None, name, ns)
        for other in self.types:
            if other.namespaced:
                for obj in self.store.list(other, name)[0]:
                    self.store.delete(other, name, obj["metadata"]["name"])
        self.sweep_namespaces()
        return ns

    def sweep_namespaces(self) -> None:
        """Remove Terminating namespaces whose content is gone (finalizers may hold it a while)."""
        ns_type = self.store.type_for("", "namespaces")
        if ns_type is None:
            return
        for ns in self.store.list(ns_type, None)[0]:
            if (ns.get("status") or {}).get("phase") != "Terminating":
                continue
            name = ns["metadata"]["name"]
            if not any(self.store.list(t, name)[0] for t in self.types if t.namespaced):
                self.store.delete(ns_type, None, name)

    async def _delete_collection(self, request, rt, namespace, name, sub) -> web.Response:
        labels = label_matcher(request.query.get("labelSelector"))
        fields_match = parse_field_selector(request.query.get("fieldSelector"))
        items, _ = self.store.list(rt, namespace, lambda o: labels(o) and fields_match(o))
        deleted = [self.store.delete(rt, o["metadata"].get("namespace"), o["metadata"]["name"]) for o in items]
        return _json({"apiVersion": rt.api_version, "kind": rt.list_kind,
                      "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted})

    # -- watch ---------------------------------------------------------------------------------
    async def _watch(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.StreamResponse:
        labels = label_matcher(request.query.get("labelSelector"))
        fields_match = parse_field_selector(request.query.get("fieldSelector"))
        timeout = float(request.query.get("timeoutSeconds") or WATCH_DEFAULT_TIMEOUT)
        as_table = _wants_table(request)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            sub = self.store.subscribe(rt, namespace, request.query.get("resourceVersion"),
                                       lambda o: labels(o) and fields_match(o),
                                       name=selected_name(request.query.get("fieldSelector")))
        except ApiError as err:
            if err.code != 410:
                raise
            # kube answers a too-old resourceVersion on a watch with 200 and one ERROR event.
            await response.prepare(request)
            await response.write((json.dumps({"type": "ERROR", "object": err.status()}) + "\n").encode())
            await response.write_eof()
            return response
        await response.prepare(request)
        started = clock.monotonic()
        cut_after = self.faults.watch_cut_after
        deadline = started + timeout
        if cut_after is not None:
            deadline = min(deadline, started + cut_after)
        try:
            while True:
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    break
                try:
                    event = await clock.wait_for(sub.queue.get(), remaining)
                except TimeoutError:
                    break
                await response.write((json.dumps(self._event_body(rt, event, as_table, request)) + "\n").encode())
            if cut_after is not None and clock.monotonic() >= started + cut_after and request.transport:
                # Drop the connection without ending the chunked body: the client sees a broken stream.
                request.transport.close()
                return response
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(sub)
        return response

    def _event_body(self, rt: ResourceType, event: Event, as_table: bool, request: web.Request) -> dict[str, Any]:
        obj: Any = event.obj
        if as_table:
            obj = to_table(rt, [obj], resource_version=obj["metadata"]["resourceVersion"],
                           include_object=request.query.get("includeObject", "Object"))
        return {"type": event.type, "object": obj}
