"""kube field errors (k8s.io/apimachinery/pkg/util/validation/field) and the Status bodies built from them.

`FieldError.message` is kube's `ErrorBody()`: the error type, the offending value printed as Go does, and the
detail, e.g. `Unsupported value: "foo": supported values: "a", "b"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .goformat import go_quote, go_sharp_v


@dataclass(frozen=True)
class FieldError:
    field: str  # e.g. "spec.br.cluster", "metadata.name", "spec.tolerations[0].key", "<nil>"
    reason: str  # kube cause type, e.g. "FieldValueRequired"
    message: str  # kube's error body, e.g. 'Unsupported value: "foo": supported values: "a", "b"'

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _bad_value(v: Any) -> str:
    """How field.Error.ErrorBody prints the offending value: `%#v`, except that null reads "null"."""
    return '"null"' if v is None else go_sharp_v(v)


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", _with_detail(f"Invalid value: {_bad_value(value)}", detail))


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    body = f"Invalid value: {_bad_value(value)}"
    return FieldError(path, "FieldValueTypeInvalid", _with_detail(body, detail))


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "FieldValueRequired", _with_detail("Required value", detail))


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, "FieldValueForbidden", _with_detail("Forbidden", detail))


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, "FieldValueDuplicate", f"Duplicate value: {_bad_value(value)}")


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(s) for s in supported) if supported else ""
    body = f"Unsupported value: {_bad_value(value)}"
    return FieldError(path, "FieldValueNotSupported", _with_detail(body, detail))


def too_long(path: str, max_length: int) -> FieldError:
    unit = "byte" if max_length == 1 else "bytes"
    return FieldError(path, "FieldValueTooLong", f"Too long: may not be more than {max_length} {unit}")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    unit = "item" if max_items == 1 else "items"
    return FieldError(path, "FieldValueTooMany", f"Too many: {actual}: must have at most {max_items} {unit}")


def invalid_status(qualified_kind: str, group: str, kind: str, name: str,
                   errors: list[FieldError]) -> dict[str, Any]:
    """kube's 422 `Status` for a rejected write (apierrors.NewInvalid)."""
    seen: list[str] = []
    for err in errors:  # the message lists each distinct error once (ErrorList.ToAggregate); causes keep all
        text = str(err)
        if text not in seen:
            seen.append(text)
    if not seen:
        message = f"{qualified_kind} {go_quote(name)} is invalid"
    elif len(seen) == 1:
        message = f"{qualified_kind} {go_quote(name)} is invalid: {seen[0]}"
    else:
        message = f"{qualified_kind} {go_quote(name)} is invalid: [{', '.join(seen)}]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Invalid", "details": details, "code": 422}


def bad_request_status(message: str) -> dict[str, Any]:
    """kube's 400 `Status` (e.g. for a body it cannot decode)."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "BadRequest", "code": 400}
