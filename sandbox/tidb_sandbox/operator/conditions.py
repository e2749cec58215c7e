"""Status conditions for both API groups.

v1 (`pingcap.com`) uses the operator's own condition type (reason and message optional); v2
(`br.pingcap.com`) uses `metav1.Condition`, where reason and message are required and the operator
sets `reason = type` when it has none (reference section 0.1).
"""

from __future__ import annotations

from typing import Any

from ..k8s.store import now_rfc3339

V2_GROUP = "br.pingcap.com"


def make_condition(group: str, ctype: str, reason: str = "", message: str = "", status: str = "True",
                   generation: int | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": status, "lastTransitionTime": now_rfc3339()}
    if group == V2_GROUP:
        cond["reason"] = reason or ctype
        cond["message"] = message
        if generation is not None:
            cond["observedGeneration"] = generation
    else:
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


def set_condition(conditions: list[dict[str, Any]], cond: dict[str, Any]) -> list[dict[str, Any]]:
    """Conditions are unique by type; the transition time only moves when the status changes."""
    result = []
    replaced = False
    for existing in conditions:
        if existing.get("type") == cond["type"]:
            if existing.get("status") == cond["status"]:
                cond = {**cond, "lastTransitionTime": existing.get("lastTransitionTime", cond["lastTransitionTime"])}
            result.append(cond)
            replaced = True
        else:
            result.append(existing)
    if not replaced:
        result.append(cond)
    return result


def update_condition(status: dict[str, Any], group: str, ctype: str, reason: str = "", message: str = "",
                     generation: int | None = None, *, status_value: str = "True") -> None:
    """`UpdateBackupCondition`: record the condition and make it the phase (except `Restart`), whatever its
    status (Clean=False is the phase `Clean` while the clean Job runs)."""
    cond = make_condition(group, ctype, reason, message, status=status_value, generation=generation)
    status["conditions"] = set_condition(status.get("conditions") or [], cond)
    if ctype != "Restart":
        status["phase"] = ctype
