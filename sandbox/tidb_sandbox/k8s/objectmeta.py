"""ObjectMeta as kube-apiserver decodes and validates it for a write.

Decoding drops unknown metadata fields (reported like pruned fields) and empty ones (kube round-trips
metadata through the ObjectMeta struct, whose fields are `omitempty`); a value of the wrong JSON type is a
decode error (HTTP 400), as encoding/json reports it. Validation follows apimachinery's
`ValidateObjectMetaAccessor`, plus the finalizer-name warnings apiextensions-apiserver adds for custom
resources. Owner references and managed fields are only type-checked.
"""

from __future__ import annotations

import re
from typing import Any

from .fielderrors import FieldError, forbidden, invalid, required, too_long
from .goformat import go_float, go_quote
from .names import dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, qualified_name_errors

# field -> Go type as encoding/json names it in errors
_META_FIELDS = {
    "name": "string", "generateName": "string", "namespace": "string", "selfLink": "string",
    "uid": "types.UID", "resourceVersion": "string", "generation": "int64", "creationTimestamp": "v1.Time",
    "deletionTimestamp": "v1.Time", "deletionGracePeriodSeconds": "int64", "labels": "map[string]string",
    "annotations": "map[string]string", "ownerReferences": "[]v1.OwnerReference", "finalizers": "[]string",
    "managedFields": "[]v1.ManagedFieldsEntry",
}
_POINTER_FIELDS = {"deletionGracePeriodSeconds", "deletionTimestamp"}  # kept even when zero
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}


def json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _meta_type_error(key: str, value: Any) -> str | None:
    """The encoding/json error unmarshalling `value` into ObjectMeta.<key>, or None if it decodes."""
    go_type = _META_FIELDS[key]

    def err(v: Any, t: str) -> str:
        return f"json: cannot unmarshal {json_type(v)} into Go struct field ObjectMeta.{key} of type {t}"

    if go_type in ("string", "types.UID"):
        return None if isinstance(value, str) else err(value, go_type)
    if go_type == "int64":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return err(value, go_type)
        if isinstance(value, float) and not value.is_integer():
            return (f"json: cannot unmarshal number {go_float(value)} into Go struct field ObjectMeta.{key} "
                    "of type int64")
        return None
    if go_type == "v1.Time":
        if not isinstance(value, str):
            return err(value, "string")
        if not _RFC3339.match(value):
            return (f'parsing time {go_quote(value)} as "2006-01-02T15:04:05Z07:00": cannot parse '
                    f'{go_quote(value)} as "2006"')
        return None
    if go_type == "map[string]string":
        if not isinstance(value, dict):
            return err(value, go_type)
        for v in value.values():
            if v is not None and not isinstance(v, str):
                return err(v, "string")
        return None
    if not isinstance(value, list):  # the list fields
        return err(value, go_type)
    if go_type == "[]string":
        bad = next((v for v in value if v is not None and not isinstance(v, str)), None)
        return err(bad, "string") if bad is not None else None
    bad = next((v for v in value if v is not None and not isinstance(v, dict)), None)
    return err(bad, go_type[2:]) if bad is not None else None


def decode_meta(meta: dict[str, Any], unknown: list[str], path: str) -> str | None:
    """Drop unknown and empty ObjectMeta fields in place (kube round-trips metadata through ObjectMeta)."""
    for key in list(meta):
        value = meta[key]
        if key not in _META_FIELDS:
            unknown.append(f"{path}.{key}")
            del meta[key]
            continue
        if value is None:
            del meta[key]
            continue
        error = _meta_type_error(key, value)
        if error:
            return error
        if key not in _POINTER_FIELDS and value in ("", 0, {}, []) and not isinstance(value, bool):
            del meta[key]  # omitempty
        elif key in ("labels", "annotations"):
            for k in [k for k, v in value.items() if v is None]:
                value[k] = ""  # a JSON null decodes to Go's zero value
    return None


def _mask_trailing_dash(name: str) -> str:
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def validate_meta(meta: dict[str, Any], *, namespaced: bool, dns_label_names: bool, custom_resource: bool,
                  errs: list[FieldError], warnings: list[str]) -> None:
    """ValidateObjectMetaAccessor: names (DNS-1123 subdomain, or label when `dns_label_names`), namespace
    presence, generation, labels, annotations and finalizers; appends to `errs` and `warnings`."""
    name_errors = dns1123_label_errors if dns_label_names else dns1123_subdomain_errors
    gen = meta.get("generateName") or ""
    if gen:
        errs.extend(invalid("metadata.generateName", gen, m) for m in name_errors(_mask_trailing_dash(gen)))
    name = meta.get("name") or ""
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs.extend(invalid("metadata.name", name, m) for m in name_errors(name))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required("metadata.namespace"))
        else:
            errs.extend(invalid("metadata.namespace", namespace, m) for m in dns1123_label_errors(namespace))
    elif namespace:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, (int, float)) and generation < 0:
        errs.append(invalid("metadata.generation", generation, "must be greater than or equal to 0"))
    for key, value in (meta.get("labels") or {}).items():
        errs.extend(invalid("metadata.labels", key, m) for m in qualified_name_errors(key))
        errs.extend(invalid("metadata.labels", value, m) for m in label_value_errors(value))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        errs.extend(invalid("metadata.annotations", key, m) for m in qualified_name_errors(key.lower()))
    if sum(len(k) + len(v) for k, v in annotations.items()) > 256 * 1024:
        errs.append(too_long("metadata.annotations", 256 * 1024))
    for fin in meta.get("finalizers") or ():
        errs.extend(invalid("metadata.finalizers", fin, m) for m in qualified_name_errors(fin))
        if custom_resource and "/" not in fin and fin not in _STANDARD_FINALIZERS:
            warnings.append(f"metadata.finalizers: {go_quote(fin)}: prefer a domain-qualified finalizer name "
                            "to avoid accidental conflicts with other finalizer writers")


