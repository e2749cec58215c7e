"""OpenAPI documents for the served resource types, shaped like kube-apiserver's.

kubectl (v1.32) reads them for `kubectl explain` (v3: it finds the GVK on a path's operations, then the
components.schemas entry carrying the same `x-kubernetes-group-version-kind`) and to decide whether the server
does field validation (v3: the PATCH operation of the GVK must list a `fieldValidation` query parameter).
Custom resources are named as kube names them (reverse-DNS group: `com.pingcap.v1alpha1.Backup`,
`com.pingcap.br.v1alpha1.Backup`); built-in kinds as `io.k8s.api.core.v1.Secret`. Built-ins have no schema in
the sandbox, so they get a small hand-written one (enough for explain, not a full copy of kube's).

The v2 (Swagger 2.0) document converts schemas as kube does for v2: no anyOf/allOf/oneOf/not, and nullable or
x-kubernetes-preserve-unknown-fields nodes lose their type/properties/items. Note kubectl asks for v2 in
protobuf only; a server that answers JSON makes kubectl fall back, which is harmless with v3 available.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from .crd import ResourceType

KUBE_VERSION = "v1.32.0"

_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
_API_VERSION_DESC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    f"More info: {_CONVENTIONS}#resources"
)
_KIND_DESC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. "
    f"More info: {_CONVENTIONS}#types-kinds"
)
_METADATA_DESC = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
_LIST_METADATA_DESC = f"Standard list metadata. More info: {_CONVENTIONS}#types-kinds"

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = _META + "ObjectMeta"
LIST_META = _META + "ListMeta"
STATUS = _META + "Status"
DELETE_OPTIONS = _META + "DeleteOptions"
PATCH = _META + "Patch"

Ref = Callable[[str], dict[str, Any]]


# -- JSON serialisation and hashing ------------------------------------------------------------------------


def stable_json(doc: Any) -> bytes:
    """Deterministic compact JSON: the bytes a document's hash is computed over."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def doc_hash(doc: Any) -> str:
    """kube's OpenAPI v3 document hash: SHA-512 of the serialised document, upper-case hex."""
    return hashlib.sha512(stable_json(doc)).hexdigest().upper()


# -- names ------------------------------------------------------------------------------------------------


def model_name(rt: ResourceType, kind: str | None = None) -> str:
    kind = kind or rt.kind
    if rt.group == "":
        return f"io.k8s.api.core.{rt.version}.{kind}"
    if "." not in rt.group:  # built-in groups such as batch
        return f"io.k8s.api.{rt.group}.{rt.version}.{kind}"
    return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{kind}"


def _gv_camel(rt: ResourceType) -> str:
    group = "".join(p[:1].upper() + p[1:] for p in re.split(r"[.-]", rt.group or "core"))
    return group + rt.version[:1].upper() + rt.version[1:]


def _tag(rt: ResourceType) -> str:
    group = rt.group.split(".")
    first = "".join([group[0]] + [p[:1].upper() + p[1:] for p in group[1:]]) if rt.group else "core"
    return f"{first}_{rt.version}"


def group_version_key(group: str, version: str) -> str:
    """The `/openapi/v3/<key>` of a group/version: `api/v1` or `apis/<group>/<version>`."""
    return f"api/{version}" if group == "" else f"apis/{group}/{version}"


def _gvk(rt: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": rt.group, "kind": kind or rt.kind, "version": rt.version}


# -- schemas ----------------------------------------------------------------------------------------------


def _ref_v3(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ref_v2(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}"}


def _with(ref: dict[str, Any], v3: bool, **extra: Any) -> dict[str, Any]:
    # v3 cannot put siblings next to $ref, so kube wraps the reference in allOf
    return {"allOf": [ref], **extra} if v3 else {**ref, **extra}


def _string_map() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string", "default": ""}}


def _obj(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "type": "object", "properties": properties, **extra}


def meta_schemas(ref: Ref, v3: bool) -> dict[str, dict[str, Any]]:
    """Minimal but valid meta/v1 models the resource schemas refer to."""
    s = {"type": "string"}
    i64 = {"type": "integer", "format": "int64"}

    def to(name: str, **extra: Any) -> dict[str, Any]:
        return _with(ref(_META + name), v3, **extra)

    def array_of(name: str, **extra: Any) -> dict[str, Any]:
        return {"type": "array", "items": to(name, default={}), **extra}

    owner_ref = _obj(
        "OwnerReference contains enough information to let you identify an owning object.",
        {"apiVersion": s, "blockOwnerDeletion": {"type": "boolean"}, "controller": {"type": "boolean"},
         "kind": s, "name": s, "uid": s},
        required=["apiVersion", "kind", "name", "uid"], **{"x-kubernetes-map-type": "atomic"})
    managed = _obj(
        "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource.",
        {"apiVersion": s, "fieldsType": s, "fieldsV1": to("FieldsV1"), "manager": s, "operation": s,
         "subresource": s, "time": to("Time")})
    object_meta = _obj("ObjectMeta is metadata that all persisted resources must have.", {
        "annotations": {**_string_map(), "description": "An unstructured key value map."},
        "creationTimestamp": to("Time", description="Server time when this object was created."),
        "deletionGracePeriodSeconds": i64,
        "deletionTimestamp": to("Time", description="RFC 3339 time at which this object will be deleted."),
        "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                       "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
        "generateName": {**s, "description": "Prefix used to generate a name if Name is not given."},
        "generation": {**i64, "description": "A sequence number of the desired state's generation."},
        "labels": {**_string_map(), "description": "String keys and values to organize and select objects."},
        "managedFields": array_of("ManagedFieldsEntry", **{"x-kubernetes-list-type": "atomic"}),
        "name": {**s, "description": "Name must be unique within a namespace."},
        "namespace": {**s, "description": "The space within which each name must be unique."},
        "ownerReferences": array_of("OwnerReference", **{
            "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"}),
        "resourceVersion": {**s, "description": "An opaque value for the internal version of this object."},
        "selfLink": {**s, "description": "Deprecated: a legacy read-only field."},
        "uid": {**s, "description": "The unique in time and space value for this object."},
    })
    status = _obj("Status is a return value for calls that don't return other objects.", {
        "apiVersion": {**s, "description": _API_VERSION_DESC}, "code": {"type": "integer"},
        "details": to("StatusDetails"), "kind": {**s, "description": _KIND_DESC}, "message": s,
        "metadata": to("ListMeta", default={}), "reason": s, "status": s,
    }, **{"x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}]})
    return {
        _META + "Time": {"description": "RFC 3339 date and time.", "type": "string", "format": "date-time"},
        _META + "FieldsV1": {"description": "A set of fields as a JSON trie.", "type": "object"},
        _META + "OwnerReference": owner_ref,
        _META + "ManagedFieldsEntry": managed,
        OBJECT_META: object_meta,
        LIST_META: _obj("ListMeta describes metadata that synthetic resources must have, including lists.",
                        {"continue": s, "remainingItemCount": i64, "resourceVersion": s, "selfLink": s}),
        _META + "StatusCause": _obj("More information about an api.Status failure.",
                                    {"field": s, "message": s, "reason": s}),
        _META + "StatusDetails": _obj("Additional properties of a Status.", {
            "causes": array_of("StatusCause", **{"x-kubernetes-list-type": "atomic"}),
            "group": s, "kind": s, "name": s, "retryAfterSeconds": {"type": "integer"}, "uid": s}),
        STATUS: status,
        _META + "Preconditions": _obj("Preconditions of an update or delete.",
                                      {"resourceVersion": s, "uid": s}),
        DELETE_OPTIONS: _obj("DeleteOptions may be provided when deleting an API object.", {
            "apiVersion": s, "kind": s, "gracePeriodSeconds": i64, "orphanDependents": {"type": "boolean"},
            "dryRun": {"type": "array", "items": {"type": "string", "default": ""},
                       "x-kubernetes-list-type": "atomic"},
            "preconditions": to("Preconditions"), "propagationPolicy": s}),
        PATCH: {"description": "The body of a PATCH request.", "type": "object"},
    }


def _free_object(description: str) -> dict[str, Any]:
    return {"description": description, "type": "object", "x-kubernetes-preserve-unknown-fields": True}


# Hand-written outlines of the built-in kinds (the sandbox does not validate them against a schema).
_BUILTIN_PROPERTIES: dict[str, dict[str, Any]] = {
    "Namespace": {
        "spec": {"type": "object", "description": "Spec defines the behavior of the Namespace.",
                 "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}}},
        "status": _obj("Status describes the current status of a Namespace.", {
            "phase": {"type": "string", "enum": ["Active", "Terminating"]},
            "conditions": {"type": "array", "items": _free_object("NamespaceCondition")}}),
    },
    "Secret": {
        "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                 "description": "Data contains the secret data, base64 encoded."},
        "stringData": {**_string_map(), "description": "stringData allows specifying non-binary secret data "
                       "in string form; merged into data on write."},
        "type": {"type": "string", "description": "Used to facilitate programmatic handling of secret data."},
        "immutable": {"type": "boolean"},
    },
    "ConfigMap": {
        "data": {**_string_map(), "description": "Data contains the configuration data."},
        "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
        "immutable": {"type": "boolean"},
    },
    "Event": {
        "involvedObject": _free_object("The object that this event is about."),
        "reason": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"},
        "count": {"type": "integer", "format": "int32"},
        "firstTimestamp": {"type": "string", "format": "date-time"},
        "lastTimestamp": {"type": "string", "format": "date-time"}, "source": _free_object("EventSource"),
        "reportingComponent": {"type": "string"}, "reportingInstance": {"type": "string"},
    },
    "Job": {
        "spec": _free_object("Specification of the desired behavior of a job."),
        "status": _free_object("Current status of a job."),
    },
}


def _type_properties() -> dict[str, Any]:
    return {"apiVersion": {"description": _API_VERSION_DESC, "type": "string"},
            "kind": {"description": _KIND_DESC, "type": "string"}}


def resource_schema(rt: ResourceType, ref: Ref, v3: bool) -> dict[str, Any]:
    """The model of one kind: its CRD schema (a copy) with kube's apiVersion/kind/metadata and GVK added."""
    if rt.schema is not None:
        schema = copy.deepcopy(rt.schema)
    else:
        schema = {"description": f"{rt.kind} (sandbox outline of the built-in kind).",
                  "properties": copy.deepcopy(_BUILTIN_PROPERTIES.get(rt.kind, {}))}
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props.update(_type_properties())
    props["metadata"] = _with(ref(OBJECT_META), v3, description=_METADATA_DESC, default={})
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema if v3 else to_v2_schema(schema)


def list_schema(rt: ResourceType, ref: Ref, v3: bool) -> dict[str, Any]:
    return {
        "description": f"{rt.list_kind} is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            **_type_properties(),
            "items": {"description": f"List of {rt.plural}. More info: {_CONVENTIONS}",
                      "type": "array", "items": ref(model_name(rt))},
            "metadata": _with(ref(LIST_META), v3, description=_LIST_METADATA_DESC, default={}),
        },
        "x-kubernetes-group-version-kind": [_gvk(rt, rt.list_kind)],
    }


def to_v2_schema(schema: Any) -> Any:
    """kube's ToStructuralOpenAPIV2: drop what OpenAPI v2 (and kubectl's v2 parser) cannot express."""
    if isinstance(schema, list):
        return [to_v2_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in ("anyOf", "allOf", "oneOf", "not")}
    if "$ref" in out:
        return out
    if out.pop("nullable", False):
        for key in ("type", "items", "properties"):
            out.pop(key, None)
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("items", None)
        out.pop("properties", None)
    if out.get("type") == "array" and "items" not in out:
        del out["type"]
    if isinstance(out.get("properties"), dict):
        props = out["properties"]
        nullable = {k for k, v in props.items() if isinstance(v, dict) and v.get("nullable")}
        if nullable and "required" in out:
            out["required"] = [r for r in out["required"] if r not in nullable]
            if not out["required"]:
                del out["required"]
        out["properties"] = {k: to_v2_schema(v) for k, v in props.items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = to_v2_schema(out[key])
    return out


# -- paths ------------------------------------------------------------------------------------------------

_PARAM_DOCS = {
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values are: "
              "- All: all dry run stages will be processed",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these "
                    "changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request "
                       "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: "
                       "- Ignore: unknown fields are silently dropped from the object. "
                       "- Warn: a warning is sent via the standard warning response header for each "
                       "unknown field that is dropped. This is the default in v1.23+ "
                       "- Strict: the request fails with a BadRequest error if any unknown fields would be "
                       "dropped from the object.",
    "force": 'Force is going to "force" Apply requests. Force flag must be unset for non-apply patch '
             "requests.",
    "pretty": "If 'true', then the output is pretty printed.",
    "allowWatchBookmarks": 'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    "continue": "The continue option should be set when retrieving more results from the server.",
    "fieldSelector": "A selector to restrict the list of returned objects by their fields.",
    "labelSelector": "A selector to restrict the list of returned objects by their labels.",
    "limit": "limit is a maximum number of responses to return for a list call.",
    "resourceVersion": "A constraint on what resource versions a request may be served from.",
    "resourceVersionMatch": "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    "sendInitialEvents": "`sendInitialEvents=true` may be set together with `watch=true`.",
    "timeoutSeconds": "Timeout for the list/watch call.",
    "watch": "Watch for changes to the described resources and return them as a stream of add, update, "
             "and remove notifications.",
    "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    "orphanDependents": "Deprecated: please use the PropagationPolicy.",
    "propagationPolicy": "Whether and how garbage collection will be performed.",
}
_PARAM_TYPES = {"allowWatchBookmarks": "boolean", "force": "boolean", "limit": "integer", "orphanDependents":
                "boolean", "sendInitialEvents": "boolean", "timeoutSeconds": "integer", "watch": "boolean",
                "gracePeriodSeconds": "integer"}
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
# kube offers strategic merge patch for built-in kinds only; kubectl reads this to pick a patch type
_PATCH_TYPES_CR = ("application/json-patch+json", "application/merge-patch+json",
                   "application/apply-patch+yaml")
_PATCH_TYPES_BUILTIN = (*_PATCH_TYPES_CR[:2], "application/strategic-merge-patch+json", _PATCH_TYPES_CR[2])


def _operations(rt: ResourceType) -> list[dict[str, Any]]:
    """Format-neutral description of the REST operations kube serves for rt."""
    base = f"/api/{rt.version}" if rt.group == "" else f"/apis/{rt.group}/{rt.version}"
    coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    item = f"{coll}/{{name}}"
    scope = "Namespaced" if rt.namespaced else ""
    gv = _gv_camel(rt)
    kind_model, list_model = model_name(rt), model_name(rt, rt.list_kind)
    patch_types = _PATCH_TYPES_CR if rt.schema is not None else _PATCH_TYPES_BUILTIN
    ops: list[dict[str, Any]] = []

    def op(verb: str, path: str, method: str, action: str, op_id: str, desc: str,
           params: tuple[str, ...] = (), body: str | None = None, response: str = kind_model,
           codes: tuple[str, ...] = ("200",), consumes: tuple[str, ...] = ("*/*",)) -> None:
        if verb in rt.verbs:
            ops.append({"path": path, "method": method, "action": action, "operationId": op_id,
                        "description": desc, "params": params, "body": body, "response": response,
                        "codes": codes, "consumes": consumes})

    op("list", coll, "get", "list", f"list{gv}{scope}{rt.kind}", f"list or watch objects of kind {rt.kind}",
       _LIST_PARAMS, response=list_model)
    op("create", coll, "post", "post", f"create{gv}{scope}{rt.kind}", f"create a {rt.kind}", _WRITE_PARAMS,
       kind_model, codes=("200", "201", "202"))
    op("deletecollection", coll, "delete", "deletecollection", f"delete{gv}Collection{scope}{rt.kind}",
       f"delete collection of {rt.kind}", _DELETE_PARAMS + _LIST_PARAMS, DELETE_OPTIONS, STATUS)
    op("get", item, "get", "get", f"read{gv}{scope}{rt.kind}", f"read the specified {rt.kind}")
    op("update", item, "put", "put", f"replace{gv}{scope}{rt.kind}", f"replace the specified {rt.kind}",
       _WRITE_PARAMS, kind_model, codes=("200", "201"))
    op("patch", item, "patch", "patch", f"patch{gv}{scope}{rt.kind}",
       f"partially update the specified {rt.kind}", (*_WRITE_PARAMS, "force"), PATCH, codes=("200", "201"),
       consumes=patch_types)
    op("delete", item, "delete", "delete", f"delete{gv}{scope}{rt.kind}", f"delete a {rt.kind}",
       _DELETE_PARAMS, DELETE_OPTIONS, STATUS, codes=("200", "202"))
    if rt.status_subresource:
        status = f"{item}/status"
        op("get", status, "get", "get", f"read{gv}{scope}{rt.kind}Status",
           f"read status of the specified {rt.kind}")
        op("update", status, "put", "put", f"replace{gv}{scope}{rt.kind}Status",
           f"replace status of the specified {rt.kind}", _WRITE_PARAMS, kind_model, codes=("200", "201"))
        op("patch", status, "patch", "patch", f"patch{gv}{scope}{rt.kind}Status",
           f"partially update status of the specified {rt.kind}", (*_WRITE_PARAMS, "force"), PATCH,
           codes=("200", "201"), consumes=patch_types)
    if rt.namespaced:
        op("list", f"{base}/{rt.plural}", "get", "list", f"list{gv}{rt.kind}ForAllNamespaces",
           f"list or watch objects of kind {rt.kind}", _LIST_PARAMS, response=list_model)
    return ops


def _path_params(rt: ResourceType, path: str) -> list[tuple[str, str]]:
    names = []
    if "{name}" in path:
        names.append(("name", f"name of the {rt.kind}"))
    if "{namespace}" in path:
        names.append(("namespace", "object name and auth scope, such as for teams and projects"))
    return names


_CODE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}


def _path_level_params(rt: ResourceType, path: str, v3: bool) -> list[dict[str, Any]]:
    params = [(n, "path", d) for n, d in _path_params(rt, path)]
    params.append(("pretty", "query", _PARAM_DOCS["pretty"]))
    out = []
    for name, where, doc in params:
        p: dict[str, Any] = {"name": name, "in": where, "description": doc}
        if where == "path":
            p["required"] = True
        if v3:
            p["schema"] = {"type": "string", "uniqueItems": True}
        else:
            p.update(type="string", uniqueItems=True)
        out.append(p)
    return out


def _query_params(names: tuple[str, ...], v3: bool) -> list[dict[str, Any]]:
    out = []
    for name in names:
        typed = {"type": _PARAM_TYPES.get(name, "string"), "uniqueItems": True}
        p: dict[str, Any] = {"name": name, "in": "query", "description": _PARAM_DOCS[name]}
        if v3:
            p["schema"] = typed
        else:
            p.update(typed)
        out.append(p)
    return out


def _paths_v3(rt: ResourceType) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for o in _operations(rt):
        entry = paths.setdefault(o["path"], {"parameters": _path_level_params(rt, o["path"], v3=True)})
        content = {ct: {"schema": _ref_v3(o["response"])} for ct in ("application/json", "application/yaml")}
        responses: dict[str, Any] = {c: {"description": _CODE_TEXT[c], "content": content}
                                     for c in o["codes"]}
        responses["401"] = {"description": "Unauthorized"}
        operation: dict[str, Any] = {
            "tags": [_tag(rt)], "description": o["description"], "operationId": o["operationId"],
            "parameters": _query_params(o["params"], v3=True), "responses": responses,
            "x-kubernetes-action": o["action"], "x-kubernetes-group-version-kind": _gvk(rt),
        }
        if o["body"]:
            body = {ct: {"schema": _ref_v3(o["body"])} for ct in o["consumes"]}
            operation["requestBody"] = {"content": body, "required": o["method"] != "delete"}
        entry[o["method"]] = operation
    return paths


def _paths_v2(rt: ResourceType) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for o in _operations(rt):
        entry = paths.setdefault(o["path"], {"parameters": _path_level_params(rt, o["path"], v3=False)})
        params: list[dict[str, Any]] = []
        if o["body"]:
            params.append({"name": "body", "in": "body", "required": o["method"] != "delete",
                           "schema": _ref_v2(o["body"])})
        params.extend(_query_params(o["params"], v3=False))
        schema = _ref_v2(o["response"])
        responses = {c: {"description": _CODE_TEXT[c], "schema": schema} for c in o["codes"]}
        responses["401"] = {"description": "Unauthorized"}
        entry[o["method"]] = {
            "description": o["description"], "consumes": list(o["consumes"]),
            "produces": ["application/json", "application/yaml"], "schemes": ["https"], "tags": [_tag(rt)],
            "operationId": o["operationId"], "parameters": params, "responses": responses,
            "x-kubernetes-action": o["action"], "x-kubernetes-group-version-kind": _gvk(rt),
        }
    return paths


# -- documents --------------------------------------------------------------------------------------------

_SECURITY_V3 = {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                "name": "authorization", "in": "header"}}


def _info() -> dict[str, str]:
    return {"title": "Kubernetes", "version": KUBE_VERSION}


def openapi_v3_group_version(types: list[ResourceType], group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document kube serves at /openapi/v3/apis/<group>/<version> (or api/<version>)."""
    selected = [rt for rt in types if rt.group == group and rt.version == version]
    if not selected:
        raise KeyError(f"no resource types in {group_version_key(group, version)}")
    schemas = meta_schemas(_ref_v3, v3=True)
    paths: dict[str, Any] = {}
    for rt in selected:
        schemas[model_name(rt)] = resource_schema(rt, _ref_v3, v3=True)
        schemas[model_name(rt, rt.list_kind)] = list_schema(rt, _ref_v3, v3=True)
        paths.update(_paths_v3(rt))
    return {"openapi": "3.0.0", "info": _info(), "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": _SECURITY_V3}}


def _discovery_doc(path: str, op_id: str, desc: str) -> dict[str, Any]:
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    get = {"description": desc, "operationId": op_id,
           "responses": {"200": ok, "401": {"description": "Unauthorized"}}}
    return {"openapi": "3.0.0", "info": _info(), "paths": {path: {"get": get}},
            "components": {"securitySchemes": _SECURITY_V3}}


def openapi_v3_document(types: list[ResourceType], key: str) -> dict[str, Any] | None:
    """The document behind an index key (`apis/pingcap.com/v1alpha1`, `api/v1`, `api`, `apis`, `version`)."""
    if key == "api":
        return _discovery_doc("/api/", "getCoreAPIVersions", "get available API versions")
    if key == "apis":
        return _discovery_doc("/apis/", "getAPIVersions", "get available API versions")
    if key == "version":
        return _discovery_doc("/version/", "getCodeVersion", "get the version information for this server")
    parts = key.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        group, version = "", parts[1]
    elif len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    else:
        return None
    try:
        return openapi_v3_group_version(types, group, version)
    except KeyError:
        return None


def openapi_v3_index(types: list[ResourceType]) -> dict[str, Any]:
    """/openapi/v3: every document key with a serverRelativeURL carrying the document's hash."""
    keys = ["api", "apis", "version"] + sorted({group_version_key(rt.group, rt.version) for rt in types})
    paths = {}
    for key in keys:
        doc = openapi_v3_document(types, key)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc_hash(doc)}"}
    return {"paths": paths}


def openapi_v2(types: list[ResourceType]) -> dict[str, Any]:
    """The Swagger 2.0 document of /openapi/v2 (JSON form)."""
    definitions = meta_schemas(_ref_v2, v3=False)
    definitions = {k: to_v2_schema(v) for k, v in definitions.items()}
    paths: dict[str, Any] = {}
    for rt in types:
        definitions[model_name(rt)] = resource_schema(rt, _ref_v2, v3=False)
        definitions[model_name(rt, rt.list_kind)] = list_schema(rt, _ref_v2, v3=False)
        paths.update(_paths_v2(rt))
    return {"swagger": "2.0", "info": _info(), "paths": paths, "definitions": definitions,
            "securityDefinitions": {"BearerToken": _SECURITY_V3["BearerToken"]},
            "security": [{"BearerToken": []}]}


class OpenAPICache:
    """Documents built once per type set, with their serialised bytes and hashes (kube's ETag)."""

    def __init__(self, types: list[ResourceType]):
        self.types = list(types)
        self._v3: dict[str, tuple[bytes, str] | None] = {}
        self._index: dict[str, Any] | None = None
        self._v2: bytes | None = None

    def index(self) -> dict[str, Any]:
        if self._index is None:
            self._index = openapi_v3_index(self.types)
        return self._index

    def v3(self, key: str) -> tuple[bytes, str] | None:
        """(JSON body, hash) of the document at /openapi/v3/<key>, or None if there is none."""
        if key not in self._v3:
            doc = openapi_v3_document(self.types, key)
            self._v3[key] = None if doc is None else (stable_json(doc), doc_hash(doc))
        return self._v3[key]

    def v2(self) -> bytes:
        if self._v2 is None:
            self._v2 = stable_json(openapi_v2(self.types))
        return self._v2
