"""PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

Strategic merge patch is applied as a merge patch, which is what kube-apiserver does for custom
resources anyway (they have no patch strategies).
"""

from __future__ import annotations

import copy
from typing import Any

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


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    if not pointer.startswith("/"):
        raise _invalid(f"invalid JSON pointer {pointer!r}")
    tokens = [_unescape(t) for t in pointer[1:].split("/")]
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, pointer)
    return node, tokens[-1]


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise _invalid(f"doc is missing path: {pointer!r}")


def _invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def _get(doc: Any, pointer: str) -> Any:
    if pointer == "":
        return doc
    parent, last = _parent(doc, pointer)
    return _child(parent, last, pointer)


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    value = _child(parent, last, pointer)
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return value


def _add(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    parent, last = _parent(doc, pointer)
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _invalid(f"invalid index in JSON pointer {pointer!r}")
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise _invalid(f"doc is missing path: {pointer!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if path == "":
                doc = copy.deepcopy(op.get("value"))
            else:
                parent, last = _parent(doc, path)
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(op.get("value"))
                else:
                    parent[last] = copy.deepcopy(op.get("value"))
        elif kind == "move":
            value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise _invalid(f"testing value {path} failed")
        else:
            raise _invalid(f"unexpected operation {kind!r}")
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
