"""Server-side printing: the meta.k8s.io/v1 `Table` kube-apiserver returns to `kubectl get`.

Cells follow apiextensions-apiserver's CRD table convertor: the first JSONPath result only, `None` when there
is none; `string` columns print the value as kubectl JSONPath would (maps and lists as JSON, JSON null as
`<no value>`); `integer`/`number`/`boolean` columns keep JSON values of the matching type and give `None`
otherwise; `date` columns show the age of an RFC 3339 timestamp the way apimachinery's `HumanDuration` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .. import clock
from . import jsonpath
from .crd import ResourceType
from .goformat import go_json, go_value

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$"
)


def human_duration(d: timedelta) -> str:
    """apimachinery's `duration.HumanDuration`: 2-3 significant figures (`5s`, `3m20s`, `40d`)."""
    total_ns = (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000
    seconds = int(total_ns / 10**9)  # truncation toward zero, as Go's int(d.Seconds())
    if seconds < -1:
        return "<invalid>"  # more than 2s in the future: a clock problem, not "almost now"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = total_ns // (60 * 10**9)
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = total_ns // (3600 * 10**9)
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 timestamp as `metav1.Time` reads it; None when it does not parse."""
    m = _RFC3339.match(value)
    if not m:
        return None
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    tz = UTC
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec),
                        int((frac or "0")[:6].ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None


def age(value: Any, now: datetime) -> str | None:
    """A `date` cell: age of the timestamp, `<unknown>` for empty/zero time, `<invalid>` if unparsable."""
    if not isinstance(value, str):
        return None
    if value in ("", "null"):
        return "<unknown>"
    ts = parse_time(value)
    if ts is None:
        return "<invalid>"
    if ts.year == 1 and ts.month == 1 and ts.day == 1 and ts.hour == ts.minute == ts.second == 0:
        return "<unknown>"  # Go's zero time
    return human_duration(now - ts)


def _text(value: Any) -> str:
    # kubectl JSONPath printing of a single value
    if value is None:
        return "<no value>"
    if isinstance(value, (dict, list)):
        return go_json(value)
    return go_value(value)


def _typed_cell(col_type: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if col_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)  # Go's int64(float64) truncates
        return None
    if col_type == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, (int, float)) else None
    if col_type == "boolean":
        return value if isinstance(value, bool) else None
    if col_type == "date":
        return age(value, now)
    return None


# -- computed columns of built-in kinds (kube prints these with Go code, not JSONPath) ----------------------


def _count(obj: dict[str, Any], col: dict[str, Any], now: datetime) -> Any:
    found = jsonpath.evaluate(col["jsonPath"], obj)
    return len(found[0]) if found and isinstance(found[0], (dict, list)) else 0


def _involved_object(obj: dict[str, Any], col: dict[str, Any], now: datetime) -> Any:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _has_condition(obj: dict[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or () if isinstance(c, dict))


def _job_status(obj: dict[str, Any], col: dict[str, Any], now: datetime) -> Any:
    if _has_condition(obj, "Complete"):
        return "Complete"
    if _has_condition(obj, "Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(obj, ctype):
            return ctype
    return "Running"


def _job_completions(obj: dict[str, Any], col: dict[str, Any], now: datetime) -> Any:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded") or 0
    completions = spec.get("completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = spec.get("parallelism")
    if parallelism is None or parallelism > 1:
        return f"{succeeded}/1 of {parallelism if parallelism is not None else 1}"
    return f"{succeeded}/1"


def _job_duration(obj: dict[str, Any], col: dict[str, Any], now: datetime) -> Any:
    status = obj.get("status") or {}
    start = parse_time(status.get("startTime") or "")
    if start is None:
        return ""
    end = parse_time(status.get("completionTime") or "") or now
    return human_duration(end - start)


_COMPUTED: dict[str, Callable[[dict[str, Any], dict[str, Any], datetime], Any]] = {
    "count": _count,
    "involvedObject": _involved_object,
    "jobStatus": _job_status,
    "jobCompletions": _job_completions,
    "jobDuration": _job_duration,
}


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    cols = [{"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION,
             "priority": 0}]
    for col in rt.printer_columns:
        cols.append({
            "name": col["name"],
            "type": col["type"],
            "format": col.get("format", ""),
            "description": col.get("description")
            or f"Custom resource definition column (in JSONPath format): {col['jsonPath']}",
            "priority": col.get("priority", 0),
        })
    return cols


def row_cells(rt: ResourceType, obj: dict[str, Any], now: datetime) -> list[Any]:
    cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for col in rt.printer_columns:
        compute = col.get("x-sandbox-compute")
        if compute:
            cells.append(_COMPUTED[compute](obj, col, now))
            continue
        found = jsonpath.evaluate(col["jsonPath"], obj)
        if not found:
            cells.append(None)
        elif col["type"] == "string":
            cells.append(_text(found[0]))
        else:
            cells.append(_typed_cell(col["type"], found[0], now))
    return cells


def _row_object(obj: dict[str, Any], include_object: str) -> Any:
    if include_object == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {})}
    if include_object == "Object":
        return obj
    return None


def to_table(rt: ResourceType, objects: list[dict[str, Any]], *, resource_version: str,
             include_object: str = "Metadata", now: datetime | None = None,
             continue_token: str = "") -> dict[str, Any]:
    """The Table for `objects`; include_object is kube's `includeObject` (None, Metadata or Object)."""
    include_object = include_object or "Metadata"
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f'unrecognized includeObject value: "{include_object}"')
    now = now or clock.now()
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    rows = [{"cells": row_cells(rt, obj, now), "object": _row_object(obj, include_object)} for obj in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": column_definitions(rt), "rows": rows}
