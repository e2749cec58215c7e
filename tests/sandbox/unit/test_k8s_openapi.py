"""OpenAPI v3/v2 documents as kubectl reads them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from tidb_sandbox.k8s import crd, openapi
from tidb_sandbox.k8s.crd import ResourceType

TYPES = crd.load_crds() + crd.builtin_types()
GROUP_VERSIONS = sorted({(rt.group, rt.version) for rt in TYPES})


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def keys_anywhere(node: Any, key: str) -> bool:
    if isinstance(node, dict):
        return key in node or any(keys_anywhere(v, key) for v in node.values())
    if isinstance(node, list):
        return any(keys_anywhere(v, key) for v in node)
    return False


def explain_schema(doc: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    """What kubectl explain does: GVK from a path operation, then the schema listing that GVK."""
    prefix = "/api" if not rt.group else f"/apis/{rt.group}"
    base = f"{prefix}/{rt.version}"
    candidates = [f"{base}/{rt.plural}", f"{base}/namespaces/{{namespace}}/{rt.plural}"]
    gvk = next(doc["paths"][p][m]["x-kubernetes-group-version-kind"] for p in candidates if p in doc["paths"]
               for m in ("get", "post", "put", "patch", "delete") if m in doc["paths"][p])
    return next(s for s in doc["components"]["schemas"].values()
                if gvk in s.get("x-kubernetes-group-version-kind", []))


def supports_field_validation(doc: dict[str, Any], rt: ResourceType) -> bool:
    """kubectl's queryParamVerifierV3: the PATCH operation of the GVK lists fieldValidation."""
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    for item in doc["paths"].values():
        patch = item.get("patch")
        if patch and patch.get("x-kubernetes-group-version-kind") == gvk:
            return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    return False


@pytest.mark.parametrize(("group", "version"), GROUP_VERSIONS)
def test_v3_group_version_documents(group: str, version: str) -> None:
    doc = openapi.openapi_v3_group_version(TYPES, group, version)
    json.dumps(doc, allow_nan=False)
    assert doc["openapi"] == "3.0.0"
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    for path in doc["paths"]:
        assert path.startswith("/api/" if not group else f"/apis/{group}/{version}/")
    for rt in (t for t in TYPES if (t.group, t.version) == (group, version)):
        schema = explain_schema(doc, rt)
        assert schema is schemas[openapi.model_name(rt)]
        assert schema["properties"]["metadata"]["allOf"] == [
            {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
        assert supports_field_validation(doc, rt)
        list_schema = schemas[openapi.model_name(rt, rt.list_kind)]
        assert list_schema["x-kubernetes-group-version-kind"] == [
            {"group": group, "kind": rt.list_kind, "version": version}]


def test_backup_schema_under_both_groups() -> None:
    v1 = openapi.openapi_v3_group_version(TYPES, "pingcap.com", "v1alpha1")["components"]["schemas"]
    v2 = openapi.openapi_v3_group_version(TYPES, "br.pingcap.com", "v1alpha1")["components"]["schemas"]
    for schemas, name, group in ((v1, "com.pingcap.v1alpha1.Backup", "pingcap.com"),
                                 (v2, "com.pingcap.br.v1alpha1.Backup", "br.pingcap.com")):
        backup = schemas[name]
        assert backup["x-kubernetes-group-version-kind"] == [
            {"group": group, "kind": "Backup", "version": "v1alpha1"}]
        spec = backup["properties"]["spec"]
        assert spec["properties"]["br"]["required"] == ["cluster"]
        rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
        assert rules[0] == "has(self.logSubcommand) ? !has(self.logStop) : true"
    assert "log-resume" in v2["com.pingcap.br.v1alpha1.Backup"]["properties"]["spec"]["properties"][
        "logSubcommand"]["enum"]
    core = openapi.openapi_v3_group_version(TYPES, "core.pingcap.com", "v1alpha1")["components"]["schemas"]
    assert "com.pingcap.core.v1alpha1.Cluster" in core
    core_v1 = openapi.openapi_v3_group_version(TYPES, "", "v1")["components"]["schemas"]
    secret = core_v1["io.k8s.api.core.v1.Secret"]
    assert secret["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Secret", "version": "v1"}]


def test_patch_content_types() -> None:
    cr_doc = openapi.openapi_v3_group_version(TYPES, "br.pingcap.com", "v1alpha1")
    patch = cr_doc["paths"]["/apis/br.pingcap.com/v1alpha1/namespaces/{namespace}/backups/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert [p["name"] for p in patch["parameters"]] == ["dryRun", "fieldManager", "fieldValidation", "force"]
    assert "/apis/br.pingcap.com/v1alpha1/namespaces/{namespace}/backups/{name}/status" in cr_doc["paths"]
    v1_doc = openapi.openapi_v3_group_version(TYPES, "pingcap.com", "v1alpha1")
    assert "/apis/pingcap.com/v1alpha1/namespaces/{namespace}/backups/{name}/status" not in v1_doc["paths"]
    core = openapi.openapi_v3_group_version(TYPES, "", "v1")
    secret_patch = core["paths"]["/api/v1/namespaces/{namespace}/secrets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in secret_patch["requestBody"]["content"]
    assert "/api/v1/namespaces/{name}" in core["paths"]  # cluster-scoped
    assert "delete" not in core["paths"]["/api/v1/namespaces"]  # no deletecollection verb


def test_unknown_group_version() -> None:
    with pytest.raises(KeyError):
        openapi.openapi_v3_group_version(TYPES, "nope.io", "v1")
    assert openapi.openapi_v3_document(TYPES, "apis/nope.io/v1") is None
    assert openapi.openapi_v3_document(TYPES, "bogus") is None


def test_v3_index_hashes_match_documents() -> None:
    index = openapi.openapi_v3_index(TYPES)
    expected = {"api", "apis", "version"} | {openapi.group_version_key(g, v) for g, v in GROUP_VERSIONS}
    assert set(index["paths"]) == expected
    for key, entry in index["paths"].items():
        doc = openapi.openapi_v3_document(TYPES, key)
        digest = hashlib.sha512(openapi.stable_json(doc)).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{key}?hash={digest}"
    assert openapi.openapi_v3_index(TYPES) == index  # stable


def test_cache_serves_the_indexed_bytes() -> None:
    cache = openapi.OpenAPICache(TYPES)
    body, digest = cache.v3("apis/pingcap.com/v1alpha1")
    assert cache.index()["paths"]["apis/pingcap.com/v1alpha1"]["serverRelativeURL"].endswith(digest)
    assert json.loads(body)["components"]["schemas"]["com.pingcap.v1alpha1.Backup"]
    assert cache.v3("apis/nope/v1") is None
    assert json.loads(cache.v2())["swagger"] == "2.0"


def test_v2_document() -> None:
    doc = openapi.openapi_v2(TYPES)
    json.dumps(doc, allow_nan=False)
    defs = doc["definitions"]
    for ref in refs(doc):
        assert ref.startswith("#/definitions/") and ref.rsplit("/", 1)[1] in defs
    for name in ("com.pingcap.v1alpha1.Backup", "com.pingcap.br.v1alpha1.Backup", "io.k8s.api.batch.v1.Job"):
        assert defs[name]["x-kubernetes-group-version-kind"][0]["kind"] in ("Backup", "Job")
    for key in ("nullable", "anyOf", "allOf", "oneOf"):
        assert not keys_anywhere(defs, key)
    status = defs["com.pingcap.v1alpha1.Backup"]["properties"]["status"]["properties"]
    assert "type" not in status["timeCompleted"]  # nullable -> untyped, as kube publishes v2
    cpu = defs["com.pingcap.v1alpha1.Backup"]["properties"]["spec"]["properties"]["resources"]["properties"][
        "limits"]["additionalProperties"]
    assert cpu.get("x-kubernetes-int-or-string") is True and "type" not in cpu
    patch = doc["paths"]["/apis/pingcap.com/v1alpha1/namespaces/{namespace}/backups/{name}"]["patch"]
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    assert patch["x-kubernetes-group-version-kind"] == {"group": "pingcap.com", "kind": "Backup",
                                                        "version": "v1alpha1"}
    assert patch["consumes"] == ["application/json-patch+json", "application/merge-patch+json",
                                 "application/apply-patch+yaml"]


def test_v2_conversion_rules() -> None:
    schema = {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "string", "nullable": True},
        "b": {"type": "array"},
        "c": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"x": {}}},
        "d": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True},
    }}
    assert openapi.to_v2_schema(schema) == {"type": "object", "required": ["b"], "properties": {
        "a": {}, "b": {}, "c": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "d": {"x-kubernetes-int-or-string": True}}}
