"""Admission of a write the way kube-apiserver does it for custom resources, without I/O.

`prepare_object` runs, in kube's order: ObjectMeta decoding (unknown metadata fields dropped), structural
pruning of fields the schema does not declare, removal of non-nullable nulls without a default, structural
defaulting, then validation: type meta, ObjectMeta, the OpenAPI schema, x-kubernetes-list-type invariants and,
when nothing "blocking" failed, the x-kubernetes-validations rules. Messages and field paths are kube's, so
`invalid_status` builds the same 422 body kube returns.

Not modelled: ratcheting of unchanged invalid fields on update, metadata immutability on update (the caller's
job), the schema keywords allOf/oneOf/not/patternProperties (a schema using them fails loudly), string formats
other than date-time and date (kube itself strips int32/int64/double/... before validating, so those are not
range-checked), and validation of metadata inside x-kubernetes-embedded-resource objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import fielderrors, structural
from .crd import ResourceType
from .fielderrors import FieldError, bad_request_status, invalid
from .goformat import go_quote
from .objectmeta import decode_meta, json_type, validate_meta
from .schemacheck import BLOCKING, Validator, cel_checks, list_checks

__all__ = ["FIELD_VALIDATION_LEVELS", "FieldError", "Prepared", "bad_request_status", "compile_schema",
           "invalid_status", "prepare_object"]

FIELD_VALIDATION_LEVELS = ("Ignore", "Warn", "Strict")

_CEL_SKIPPED = ("some validation rules were not checked because the object was invalid; correct the existing "
                "errors to complete validation")


@dataclass(frozen=True)
class Prepared:
    """Outcome of `prepare_object`.

    obj: the object as kube would store it (pruned and defaulted); look at `decode_error` and `errors` first.
    errors: non-empty -> answer 422 with `invalid_status(rt, name, errors)`.
    warnings: `Warning` header texts (unknown fields under fieldValidation=Warn, finalizer name hints).
    unknown_fields: every dropped unknown field path ("spec.foo"), whatever the fieldValidation level.
    decode_error: set -> answer 400 with `bad_request_status(decode_error)`: kube rejects such a body before
        validating it (fieldValidation=Strict with unknown fields, or metadata that is not valid ObjectMeta).
    """

    obj: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    decode_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.decode_error is None and not self.errors


def compile_schema(rt: ResourceType) -> None:
    """Compile all of rt's schema now (normally done lazily), raising for anything unsupported."""
    if rt.schema is None:
        return
    root, _ = structural.root(rt.schema)
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(n for k in node.raw.get("properties") or {} if (n := node.prop(k)) is not None)
        stack.extend(n for n in (node.addl(), node.items()) if n is not None)
        stack.extend(node.any_of())


def _type_meta_errors(rt: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
    # Only values present in the body are checked; the server fills missing ones from the URL as kube does.
    errs = []
    kind = obj.get("kind")
    if isinstance(kind, str) and kind and kind != rt.kind:
        errs.append(invalid("kind", kind, f"must be {rt.kind}"))
    api_version = obj.get("apiVersion")
    if isinstance(api_version, str) and api_version and api_version != rt.api_version:
        errs.append(invalid("apiVersion", api_version, f"must be {rt.group}/{rt.version}"))
    return errs


def prepare_object(rt: ResourceType, obj: dict[str, Any], *, field_validation: str = "Warn",
                   status_only: bool = False) -> Prepared:
    """Prune, default and validate a create/update body for `rt` as kube-apiserver would.

    `obj` is not modified. Set metadata.namespace (namespaced kinds) and metadata.name (after generateName)
    before calling, as kube does before validating. `status_only` validates the schema of `status` alone (plus
    metadata and CEL rules), as kube's /status strategy does for CRDs with a status subresource.
    """
    if field_validation not in FIELD_VALIDATION_LEVELS:
        raise ValueError(f"fieldValidation must be one of {FIELD_VALIDATION_LEVELS}: {field_validation!r}")
    if not isinstance(obj, dict):
        raise TypeError("prepare_object needs a JSON object")
    new = structural.copy_json(obj)
    unknown: list[str] = []

    def reject(message: str) -> Prepared:
        kind = new.get("kind") if isinstance(new.get("kind"), str) and new.get("kind") else rt.kind
        text = f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {message}'
        return Prepared(new, unknown_fields=unknown, decode_error=text)

    if "metadata" in new and new["metadata"] is None:
        new["metadata"] = {}  # JSON null decodes to an empty ObjectMeta
    meta = new.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return reject(f"json: cannot unmarshal {json_type(meta)} into Go value of type v1.ObjectMeta")
    if isinstance(meta, dict):
        error = decode_meta(meta, unknown, "metadata")
        if error:
            return reject(error)

    root: structural.Node | None = None
    has_rules = False
    if rt.schema is not None:
        root, has_rules = structural.root(rt.schema)
        structural.prune(new, root, "", unknown, embedded=True)  # the root is pruned like an embedded object
        structural.apply_defaults(new, root)

    unknown.sort()  # Go reports them in map order; sorted is as good and stable
    if unknown and field_validation == "Strict":
        return reject("strict decoding error: " + ", ".join(f"unknown field {go_quote(p)}" for p in unknown))
    warnings = [f"unknown field {go_quote(p)}" for p in unknown] if field_validation == "Warn" else []

    errs = _type_meta_errors(rt, new)
    if errs:
        return Prepared(new, errs, warnings, unknown)  # kube validates nothing else then
    validate_meta(new.get("metadata") or {}, namespaced=rt.namespaced,
                  dns_label_names=(rt.group, rt.kind) == ("", "Namespace"),
                  custom_resource=rt.schema is not None, errs=errs, warnings=warnings)
    if root is not None:
        if status_only:
            status_node = root.prop("status")
            if status_node is not None and "status" in new:
                checker = Validator(prefix="status")
                checker.validate(status_node, new["status"], "")
                errs.extend(checker.errors)
        else:
            checker = Validator()
            checker.validate(root, new, "")
            errs.extend(checker.errors)
        list_checks(root, new, "", errs)
        if has_rules:
            if any(e.reason in BLOCKING for e in errs):
                errs.append(invalid("<nil>", None, _CEL_SKIPPED))
            else:
                cel_checks(root, new, "", errs)
    return Prepared(new, errs, warnings, unknown)


def invalid_status(rt: ResourceType, name: str, errors: list[FieldError]) -> dict[str, Any]:
    """kube's 422 `Status` body for a write of `rt` named `name` rejected with `errors`."""
    return fielderrors.invalid_status(rt.qualified_kind, rt.group, rt.kind, name, errors)
