"""PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902, by `jsonpatch`).

Strategic merge patch is applied as a merge patch, which is what kube-apiserver does for custom
resources anyway (they have no patch strategies). The merge patch stays written here: it is twelve lines of
RFC 7386, and no library for it is installed with Airflow (`jsonpatch` does RFC 6902 only).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from .errors import ApiError

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 by `jsonpatch`, one operation at a time so that a failure names its path, worded as
    kube-apiserver's (evanphx/json-patch) errors are."""
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        path = op.get("path", "") if isinstance(op, dict) else ""
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise _invalid(f"testing value {path} failed") from exc
        except jsonpatch.InvalidJsonPatch as exc:
            kind = op.get("op") if isinstance(op, dict) else op
            raise _invalid(f"unexpected operation {kind!r}") from exc
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
            raise _invalid(f"doc is missing path: {path!r}") from exc
    return doc


def apply_patch(content_type: str, target: Any, body: Any) -> Any:
    media = content_type.split(";")[0].strip()
    if media in (MERGE, STRATEGIC):
        return merge_patch(target, body)
    if media == JSON_PATCH:
        return json_patch(target, body)
    raise ApiError(415, "UnsupportedMediaType",
                   f"the body of the request was in an unknown format - accepted media types include: "
                   f"{JSON_PATCH}, {MERGE}, {STRATEGIC}")
