"""The store's write hook: what kube-apiserver does to a body before it is stored.

Schema pruning, defaulting and validation for custom resources (422 with field paths, 400 for a
strict-decoding failure), plus the built-in conversions the sandbox's clients rely on.
"""

from __future__ import annotations

import base64
from typing import Any

from .crd import ResourceType
from .errors import ApiError
from .validation import invalid_status, prepare_object


def _secret_string_data(obj: dict[str, Any]) -> dict[str, Any]:
    """Secrets: `stringData` is write-only and folded into base64 `data`, as the API server does."""
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    return obj


def admit(rt: ResourceType, obj: dict[str, Any], field_validation: str, warnings: list[str]) -> dict[str, Any]:
    if (rt.group, rt.plural) == ("", "secrets"):
        obj = _secret_string_data(obj)
    prepared = prepare_object(rt, obj, field_validation=field_validation)
    if prepared.decode_error:
        raise ApiError(400, "BadRequest", prepared.decode_error)
    if prepared.errors:
        status = invalid_status(rt, (obj.get("metadata") or {}).get("name", ""), prepared.errors)
        raise ApiError(422, "Invalid", status["message"], status.get("details"))
    warnings.extend(prepared.warnings)
    return prepared.obj


def make_prepare() -> Any:
    return admit
