"""CRD loading and kube-compatible admission (pruning, defaulting, validation, 422 bodies)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tidb_sandbox.k8s import cel, crd, validation
from tidb_sandbox.k8s.crd import ResourceType
from tidb_sandbox.k8s.validation import FieldError, prepare_object

V1 = "pingcap.com"
V2 = "br.pingcap.com"
CEL_SKIPPED = ('<nil>: Invalid value: "null": some validation rules were not checked because the object was '
               "invalid; correct the existing errors to complete validation")
S3 = {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket"}


def types(v1_line: str = "v1.6.6") -> dict[tuple[str, str], ResourceType]:
    return {(rt.group, rt.kind): rt for rt in crd.load_crds(v1_line) + crd.builtin_types()}


def rt_of(group: str, kind: str, v1_line: str = "v1.6.6") -> ResourceType:
    return types(v1_line)[(group, kind)]


def cr(rt: ResourceType, spec: dict[str, Any], name: str = "x", **extra: Any) -> dict[str, Any]:
    meta = {"name": name}
    if rt.namespaced:
        meta["namespace"] = "test1"
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta, "spec": spec, **extra}


def messages(errors: list[FieldError]) -> list[str]:
    return [str(e) for e in errors]


# -- loading ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["v1.6.6", "release-1.x"])
def test_every_vendored_crd_loads_and_compiles(line: str) -> None:
    loaded = crd.load_crds(line)
    got = {(rt.group, rt.kind) for rt in loaded}
    for group in (V1, V2):
        for kind in ("Backup", "Restore", "BackupSchedule", "CompactBackup"):
            assert (group, kind) in got
    assert ("core.pingcap.com", "Cluster") in got and (V1, "TidbCluster") in got
    for rt in loaded:
        validation.compile_schema(rt)  # raises on anything the validator does not support
        assert rt.schema is not None and rt.namespaced
        assert rt.status_subresource == (rt.group != V1)


def test_v1_lines_differ_only_where_documented() -> None:
    old = rt_of(V1, "CompactBackup").schema["properties"]["spec"]["properties"]
    new = rt_of(V1, "CompactBackup", "release-1.x").schema["properties"]["spec"]["properties"]
    assert "shardCount" in new and "shardCount" not in old


def test_resource_type_basics() -> None:
    bk = rt_of(V2, "Backup")
    assert (bk.api_version, bk.list_kind, bk.plural, bk.short_names) == (
        "br.pingcap.com/v1alpha1", "BackupList", "backups", ("bk",))
    assert bk.qualified_kind == "Backup.br.pingcap.com"
    ns = rt_of("", "Namespace")
    assert (ns.api_version, ns.namespaced, ns.schema, ns.short_names) == ("v1", False, None, ("ns",))
    assert rt_of("batch", "Job").api_version == "batch/v1"
    assert {bk, bk} == {bk}  # hashable despite the schema dict


def test_manifests_are_plain_json_and_private_copies() -> None:
    manifests = crd.load_crd_manifests()
    assert len(manifests) == len(crd.load_crds())
    json.dumps(manifests, allow_nan=False)  # YAML gave only JSON types (no dates etc.)
    manifests[0]["spec"]["group"] = "changed"
    assert crd.load_crd_manifests()[0]["spec"]["group"] != "changed"
    sandbox = [m for m in manifests if m["metadata"]["name"] in ("tidbclusters.pingcap.com",
                                                                   "clusters.core.pingcap.com")]
    assert len(sandbox) == 2


def test_unknown_v1_line() -> None:
    with pytest.raises(ValueError, match="unknown v1 line"):
        crd.load_crds("v9")


# -- CEL subset -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "value", "holds"), [
    ("has(self.a) ? !has(self.b) : true", {"a": 1}, True),
    ("has(self.a) ? !has(self.b) : true", {"a": 1, "b": 2}, False),
    ("has(self.a) ? !has(self.b) : true", {"b": 2}, True),
    ("has(self.a)", {}, False),
    ("!has(self.a)", {}, True),
    ("has(self.a) && (has(self.b) || false)", {"a": 1, "b": 1}, True),
])
def test_cel_subset(rule: str, value: dict[str, Any], holds: bool) -> None:
    assert cel.compile_rule({"rule": rule, "message": "m"}).evaluate(value) is holds


@pytest.mark.parametrize("entry", [
    {"rule": "self.replicas > 1"},
    {"rule": "has(self.a.b)"},
    {"rule": "self == oldSelf"},
    {"rule": "has(self.a)", "messageExpression": "'x'"},
])
def test_cel_unsupported_rules_fail_loudly(entry: dict[str, Any]) -> None:
    with pytest.raises(cel.UnsupportedRule):
        cel.compile_rule(entry)


def test_crd_with_unsupported_rule_fails_to_load() -> None:
    manifest = copy.deepcopy(crd.load_crd_manifests()[0])
    manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "x-kubernetes-validations"] = [{"rule": "size(self.name) < 5"}]
    with pytest.raises(cel.UnsupportedRule, match=r"backups\.pingcap\.com.*spec"):
        crd.resource_types_from_crd(manifest)


def test_default_cel_message() -> None:
    assert cel.compile_rule({"rule": " has(self.a) "}).message == "failed rule: has(self.a)"


# -- the documented example specs validate clean ----------------------------------------------------------

SEEDS = [
    (V2, "Backup", {"backupType": "full", "br": {"cluster": "demo1"},
                    "s3": {**S3, "prefix": "my-full-backup-folder"}}),
    (V2, "Backup", {"backupMode": "log", "br": {"cluster": "demo1", "sendCredToTikv": True},
                    "s3": {**S3, "prefix": "my-log-backup-folder"}}),
    (V1, "Backup", {"backupType": "log", "br": {"cluster": "demo1", "clusterNamespace": "test1",
                                                 "sendCredToTikv": True},
                    "azblob": {"secretName": "azblob-secret", "container": "my-container",
                               "prefix": "my-folder"}}),
    (V2, "CompactBackup", {"startTs": "***", "endTs": "***", "concurrency": 8, "maxRetryTimes": 2,
                           "br": {"cluster": "demo1", "sendCredToTikv": True},
                           "s3": {**S3, "prefix": "my-log-backup-folder"}}),
    (V1, "CompactBackup", {"startTs": "***", "endTs": "***", "concurrency": 8, "maxRetryTimes": 2,
                           "br": {"cluster": "demo1", "sendCredToTikv": True},
                           "s3": {**S3, "prefix": "my-log-backup-folder"}}),
]
PITR = {"restoreMode": "pitr", "pitrRestoredTs": "2022-10-10 17:21:00 +0800",
        "br": {"cluster": "demo3", "sendCredToTikv": True}, "s3": {**S3, "prefix": "my-log-backup-folder"},
        "pitrFullBackupStorageProvider": {"s3": {**S3, "prefix": "my-full-backup-folder"}}}


@pytest.mark.parametrize("line", ["v1.6.6", "release-1.x"])
@pytest.mark.parametrize(("group", "kind", "spec"), SEEDS + [(V1, "Restore", PITR), (V2, "Restore", PITR)])
def test_seed_specs_validate_clean(line: str, group: str, kind: str, spec: dict[str, Any]) -> None:
    rt = rt_of(group, kind, line)
    result = prepare_object(rt, cr(rt, spec), field_validation="Strict")
    assert result.ok, (result.decode_error, messages(result.errors))
    assert result.warnings == [] and result.unknown_fields == []
    for key, value in spec.items():
        assert result.obj["spec"][key] == value


# -- rejections with kube's field paths and messages ------------------------------------------------------

@pytest.mark.parametrize("group", [V1, V2])
def test_enum_type_and_required_errors(group: str) -> None:
    rt = rt_of(group, "Backup")
    result = prepare_object(rt, cr(rt, {"br": {"concurrency": "string"}, "cleanPolicy": "foo"}))
    assert messages(result.errors) == [
        'spec.br.concurrency: Invalid value: "string": spec.br.concurrency in body must be of type integer: '
        '"string"',
        "spec.br.cluster: Required value",
        'spec.cleanPolicy: Unsupported value: "foo": supported values: "Retain", "OnFailure", "Delete"',
        CEL_SKIPPED,
    ]
    assert [e.reason for e in result.errors] == [
        "FieldValueTypeInvalid", "FieldValueRequired", "FieldValueNotSupported", "FieldValueInvalid"]


@pytest.mark.parametrize("group", [V1, V2])
def test_cel_log_stop_with_log_subcommand(group: str) -> None:
    rt = rt_of(group, "Backup")
    spec = {"backupMode": "log", "logSubcommand": "log-stop", "logStop": True, "br": {"cluster": "demo1"}}
    result = prepare_object(rt, cr(rt, spec, name="log1"))
    text = "Field `logStop` is the old version field, please use `logSubcommand` instead"
    assert messages(result.errors) == [f'spec: Invalid value: "object": {text}'] * 2  # both rules fail
    status = validation.invalid_status(rt, "log1", result.errors)
    assert status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Backup.{group} "log1" is invalid: spec: Invalid value: "object": {text}',
        "reason": "Invalid",
        "details": {"name": "log1", "group": group, "kind": "Backup", "causes": [
            {"reason": "FieldValueInvalid", "message": f'Invalid value: "object": {text}', "field": "spec"},
        ] * 2},
        "code": 422,
    }
    only_one = prepare_object(rt, cr(rt, {"logStop": True, "br": {"cluster": "demo1"}}))
    assert only_one.ok


def test_log_resume_is_v2_only() -> None:
    spec = {"backupMode": "log", "logSubcommand": "log-resume", "br": {"cluster": "demo1"}}
    assert prepare_object(rt_of(V2, "Backup"), cr(rt_of(V2, "Backup"), spec)).ok
    v1 = prepare_object(rt_of(V1, "Backup"), cr(rt_of(V1, "Backup"), spec))
    assert messages(v1.errors)[0] == (
        'spec.logSubcommand: Unsupported value: "log-resume": supported values: "log-start", "log-stop", '
        '"log-pause"')


def test_bad_metadata_name() -> None:
    rt = rt_of(V1, "Backup")
    result = prepare_object(rt, cr(rt, {"br": {"cluster": "demo1"}}, name="Foo"))
    assert messages(result.errors) == [
        'metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ]  # an Invalid error does not block the CEL rules (which pass here)


def test_several_errors_message_is_bracketed() -> None:
    rt = rt_of(V2, "Backup")
    result = prepare_object(rt, cr(rt, {"cleanPolicy": "x"}, name="Bad_Name"))
    status = validation.invalid_status(rt, "Bad_Name", result.errors)
    assert status["message"].startswith('Backup.br.pingcap.com "Bad_Name" is invalid: [metadata.name: ')
    assert status["message"].endswith("complete validation]")
    assert len(status["details"]["causes"]) == len(result.errors) == 3


def test_metadata_rules() -> None:
    ns = rt_of("", "Namespace")
    bad = prepare_object(ns, {"metadata": {"name": "a.b", "namespace": "x"}})
    assert messages(bad.errors) == [
        'metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label must consist of lower case '
        "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. "
        "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "metadata.namespace: Forbidden: not allowed on this type",
    ]
    secret = rt_of("", "Secret")
    missing = prepare_object(secret, {"metadata": {"labels": {"app": "bad value"}}, "data": {}})
    assert messages(missing.errors)[:2] == ["metadata.name: Required value: name or generateName is required",
                                            "metadata.namespace: Required value"]
    assert messages(missing.errors)[2].startswith(
        'metadata.labels: Invalid value: "bad value": a valid label')
    assert prepare_object(secret, {"metadata": {"name": "s", "namespace": "n"}, "anything": [1]}).ok


def test_metadata_decoding() -> None:
    rt = rt_of(V2, "Backup")
    obj = cr(rt, {"br": {"cluster": "c"}})
    obj["metadata"].update(foo=1, labels={"a": "b"}, annotations={}, resourceVersion="")
    result = prepare_object(rt, obj)
    assert result.ok and result.warnings == ['unknown field "metadata.foo"']
    assert result.obj["metadata"] == {"name": "x", "namespace": "test1", "labels": {"a": "b"}}
    obj["metadata"]["labels"] = {"a": 1}
    bad = prepare_object(rt, obj)
    assert bad.decode_error == ('Backup in version "v1alpha1" cannot be handled as a Backup: json: cannot '
                                "unmarshal number into Go struct field ObjectMeta.labels of type string")
    assert validation.bad_request_status(bad.decode_error)["code"] == 400


def test_type_meta_mismatch() -> None:
    rt = rt_of(V2, "Backup")
    result = prepare_object(rt, {**cr(rt, {}), "kind": "Restore"})
    assert messages(result.errors) == ['kind: Invalid value: "Restore": must be Backup']


def test_finalizer_warning_for_custom_resources() -> None:
    rt = rt_of(V1, "Backup")
    obj = cr(rt, {"br": {"cluster": "c"}})
    obj["metadata"]["finalizers"] = ["tidb.pingcap.com/backup-protection", "mine"]
    assert prepare_object(rt, obj).warnings == [
        'metadata.finalizers: "mine": prefer a domain-qualified finalizer name to avoid accidental conflicts '
        "with other finalizer writers"]


# -- pruning, nulls, defaults, formats ----------------------------------------------------------------------

def test_unknown_fields_pruned_per_field_validation_level() -> None:
    rt = rt_of(V1, "Backup")
    spec = {"br": {"cluster": "c", "bogus": 1}, "foo": {"x": 1}, "tolerations": [{"key": "k", "nope": 1}]}
    obj = cr(rt, spec, extra={"top": 1})
    unknown = ["extra", "spec.br.bogus", "spec.foo", "spec.tolerations[0].nope"]
    warn = prepare_object(rt, obj)
    assert warn.ok and warn.unknown_fields == unknown
    assert warn.warnings == [f'unknown field "{p}"' for p in unknown]
    assert "extra" not in warn.obj and warn.obj["spec"]["br"] == {"cluster": "c"}
    assert warn.obj["spec"]["tolerations"] == [{"key": "k"}]
    ignore = prepare_object(rt, obj, field_validation="Ignore")
    assert ignore.ok and ignore.warnings == [] and ignore.obj == warn.obj
    strict = prepare_object(rt, obj, field_validation="Strict")
    assert strict.decode_error == (
        'Backup in version "v1alpha1" cannot be handled as a Backup: strict decoding error: '
        'unknown field "extra", unknown field "spec.br.bogus", unknown field "spec.foo", '
        'unknown field "spec.tolerations[0].nope"')
    assert obj["extra"] == {"top": 1}  # the input is not modified
    with pytest.raises(ValueError):
        prepare_object(rt, obj, field_validation="warn")


def test_preserve_unknown_fields_keeps_everything() -> None:
    rt = rt_of(V1, "TidbCluster")
    spec = {"pd": {"replicas": 3, "anything": {"deep": [1, None]}}, "x": None}
    result = prepare_object(rt, cr(rt, spec, status={"conditions": []}), field_validation="Strict")
    assert result.ok and result.obj["spec"] == spec and result.obj["status"] == {"conditions": []}


def test_defaults_applied_where_parent_exists() -> None:
    rt = rt_of(V1, "Backup")
    result = prepare_object(rt, cr(rt, {"br": {"cluster": "c"}}))
    spec = result.obj["spec"]
    assert (spec["backupMode"], spec["cleanPolicy"], spec["calcSizeLevel"]) == ("snapshot", "Retain", "all")
    assert spec["volumeBackupInitJobMaxActiveSeconds"] == 600
    assert "backoffRetryPolicy" not in spec
    spec = {"br": {"cluster": "c"}, "backoffRetryPolicy": {"maxRetryTimes": 5}}
    with_parent = prepare_object(rt, cr(rt, spec))
    assert with_parent.obj["spec"]["backoffRetryPolicy"] == {
        "maxRetryTimes": 5, "minRetryDuration": "300s", "retryTimeout": "30m"}
    log = prepare_object(rt, cr(rt, {"backupMode": "log", "br": {"cluster": "c"}}))
    assert log.obj["spec"]["backupMode"] == "log"


def test_nulls() -> None:
    rt = rt_of(V1, "Backup")
    spec = {"br": {"cluster": "c"}, "backupType": None, "cleanPolicy": None}
    status = {"timeCompleted": None, "phase": None}
    result = prepare_object(rt, cr(rt, spec, status=status))
    assert result.ok
    assert "backupType" not in result.obj["spec"]  # non-nullable without default: dropped
    assert result.obj["spec"]["cleanPolicy"] == "Retain"  # non-nullable with default: defaulted
    assert result.obj["status"] == {"timeCompleted": None}  # nullable: kept


def test_date_time_format_and_int_or_string() -> None:
    rt = rt_of(V2, "Backup")
    obj = cr(rt, {"br": {"cluster": "c"}, "resources": {"limits": {"cpu": "2", "memory": "abc"},
                                                        "requests": {"cpu": True}}},
             status={"timeStarted": "yesterday", "timeCompleted": "2024-05-01T10:00:00.123+08:00"})
    result = prepare_object(rt, obj)
    quantity = rt.schema["properties"]["spec"]["properties"]["resources"]["properties"]["limits"][
        "additionalProperties"]["pattern"]
    assert quantity.startswith(r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))")
    assert messages(result.errors)[:5] == [
        f"spec.resources.limits.memory: Invalid value: \"abc\": spec.resources.limits.memory in body should "
        f"match '{quantity}'",
        'spec.resources.requests.cpu: Invalid value: "boolean": spec.resources.requests.cpu in body must be '
        'of type integer,string: "boolean"',
        '<nil>: Invalid value: "": "spec.resources.requests.cpu" must validate at least one schema (anyOf)',
        'spec.resources.requests.cpu: Invalid value: "boolean": spec.resources.requests.cpu in body must be '
        'of type integer: "boolean"',
        'status.timeStarted: Invalid value: "yesterday": status.timeStarted in body must be of type '
        'date-time: "yesterday"',
    ]
    resources = {"limits": {"cpu": 2, "memory": "1Gi"}}
    ok = prepare_object(rt, cr(rt, {"br": {"cluster": "c"}, "resources": resources}))
    assert ok.ok


def test_list_map_duplicates() -> None:
    rt = rt_of(V2, "Backup")
    claims = [{"name": "a"}, {"name": "b"}, {"name": "a"}]
    result = prepare_object(rt, cr(rt, {"br": {"cluster": "c"}, "resources": {"claims": claims}}))
    assert messages(result.errors) == [
        'spec.resources.claims[2]: Duplicate value: map[string]interface {}{"name":"a"}']


def test_status_only_validates_status() -> None:
    rt = rt_of(V2, "Backup")
    obj = cr(rt, {"cleanPolicy": "bad"}, status={"phase": 5, "backupSize": "x"})
    result = prepare_object(rt, obj, status_only=True)
    assert messages(result.errors)[:2] == [
        'status.phase: Invalid value: "integer": phase in body must be of type string: "integer"',
        'status.backupSize: Invalid value: "string": backupSize in body must be of type integer: "string"',
    ]


def test_integral_float_accepted_for_integer() -> None:
    rt = rt_of(V2, "CompactBackup")
    assert prepare_object(rt, cr(rt, {"concurrency": 8.0, "br": {"cluster": "c"}})).ok
    result = prepare_object(rt, cr(rt, {"concurrency": 8.5, "br": {"cluster": "c"}}))
    assert messages(result.errors)[0] == (
        'spec.concurrency: Invalid value: "number": spec.concurrency in body must be of type integer: '
        '"number"')


# -- idempotence ---------------------------------------------------------------------------------------------

def _from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly schema-shaped JSON with occasional wrong types, nulls and unknown keys."""
    noise = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3))
    if schema.get("enum"):
        shaped: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif schema.get("x-kubernetes-int-or-string"):
        shaped = st.one_of(st.integers(0, 64), st.sampled_from(["1", "500m", "2Gi", "x"]))
    elif schema.get("type") == "object" and depth < 3:
        props = schema.get("properties") or {}
        names = sorted(props)
        if names:
            shaped = st.lists(st.sampled_from(names + ["unknownField"]), max_size=4, unique=True).flatmap(
                lambda keys: st.fixed_dictionaries(
                    {k: (_from_schema(props[k], depth + 1) if k in props else noise) for k in keys}))
        elif isinstance(schema.get("additionalProperties"), dict):
            shaped = st.dictionaries(st.sampled_from(["a", "b"]),
                                     _from_schema(schema["additionalProperties"], depth + 1), max_size=2)
        else:
            shaped = st.dictionaries(st.sampled_from(["k", "v"]), noise, max_size=2)
    elif schema.get("type") == "array" and depth < 3 and isinstance(schema.get("items"), dict):
        shaped = st.lists(_from_schema(schema["items"], depth + 1), max_size=2)
    elif schema.get("type") == "integer":
        shaped = st.integers(-5, 10**6)
    elif schema.get("type") == "boolean":
        shaped = st.booleans()
    elif schema.get("type") == "string":
        shaped = st.sampled_from(["", "demo1", "2024-01-01T00:00:00Z", "log-start", "s"])
    else:
        shaped = noise
    return st.one_of(shaped, shaped, shaped, noise) if depth else shaped


@pytest.mark.parametrize("group", [V1, V2])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prepared_objects_are_fixed_points(group: str, data: st.DataObject) -> None:
    rt = rt_of(group, "Backup")
    spec = data.draw(_from_schema(rt.schema["properties"]["spec"]))
    status = data.draw(st.one_of(st.nothing(), _from_schema(rt.schema["properties"]["status"])) | st.just({}))
    first = prepare_object(rt, cr(rt, spec, status=status))
    if not first.ok:
        return
    again = prepare_object(rt, first.obj, field_validation="Strict")
    assert again.ok and again.unknown_fields == [] and again.warnings == []
    assert again.obj == first.obj
