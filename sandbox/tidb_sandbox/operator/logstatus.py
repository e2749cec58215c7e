"""How a log backup's status is written: per sub-command, and what of it reaches the whole CR.

Follows `updateLogBackupStatus` of TiDB Operator (v1 `pkg/controller/backup_status_updater.go`, release-1.6;
v2 `pkg/controllers/br/manager/backup/backup_status_updater.go`, main):
- while the CR is being deleted, conditions and fields go to the whole CR as they are (v1 leaves the
  sub-commands untouched then, v2 updates them too);
- a checkpoint update touches only the whole CR's fields;
- otherwise the sub-command's entry records the condition (its type becomes the entry's phase) and
  `restructCondition` / `restructStatus` decide what the whole CR gets;
- when log-pause (log-resume) changes, an existing log-resume (log-pause) entry becomes `Repeatable`, so
  that the next resume (pause) is not taken for one already done.
"""

from __future__ import annotations

from typing import Any

from .common import V2_GROUP
from .conditions import make_condition, set_condition, update_condition

START, STOP, PAUSE, RESUME, TRUNCATE, UNKNOWN = (
    "log-start", "log-stop", "log-pause", "log-resume", "log-truncate", "log-unknown")
SUB_FIELDS = ("timeStarted", "timeCompleted", "logTruncatingUntil")  # updateLogSubCommandStatusOnly
_OPPOSITE = {PAUSE: RESUME, RESUME: PAUSE}


def restruct_condition(command: str, ctype: str) -> str | None:
    """Which sub-command condition reaches the whole CR, as what (`restructCondition`)."""
    if command == START:
        return None if ctype == "Complete" else ctype
    if ctype != "Complete":
        return None
    return {STOP: "Stopped", PAUSE: "Paused", RESUME: "Running"}.get(command)  # truncate: nothing


def restruct_fields(command: str, ctype: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Which fields reach the whole CR (`restructStatus`)."""
    out = dict(fields)
    out.pop("logTruncatingUntil", None)  # a sub-command field only
    if command == START:
        if ctype == "Complete":
            out.pop("timeCompleted", None)  # a started task has not completed
        return out
    if ctype != "Complete":
        return None
    if command != STOP:
        out.pop("timeCompleted", None)
    out.pop("timeStarted", None)
    return out


def write_log_status(status: dict[str, Any], group: str, generation: int | None, *, deleting: bool,
                     command: str | None, ctype: str | None, reason: str = "", message: str = "",
                     fields: dict[str, Any] | None = None) -> None:
    """Apply one status update of a log Backup, in place (`realBackupConditionUpdater.Update`)."""
    fields = dict(fields or {})
    if deleting or "logCheckpointTs" in fields:
        _whole(status, group, generation, ctype, reason, message, fields)
        # v2 dropped v1's early return here (a TODO in its updater): its sub-commands are updated while deleting.
        if deleting and group == V2_GROUP and command is not None and ctype is not None:
            _sub(status, group, command, ctype, reason, message, fields)
        return
    if command is None or ctype is None:
        return
    whole_fields = restruct_fields(command, ctype, fields)
    _whole(status, group, generation, restruct_condition(command, ctype), reason, message, whole_fields or {})
    _sub(status, group, command, ctype, reason, message, fields)


def _whole(status: dict[str, Any], group: str, generation: int | None, ctype: str | None, reason: str,
           message: str, fields: dict[str, Any]) -> None:
    status.update({k: v for k, v in fields.items() if v is not None and k != "logTruncatingUntil"})
    if ctype is not None:
        update_condition(status, group, ctype, reason, message, generation)


def _sub(status: dict[str, Any], group: str, command: str, ctype: str, reason: str, message: str,
         fields: dict[str, Any]) -> None:
    subs = status.setdefault("logSubCommandStatuses", {})
    entry = subs.setdefault(command, {"command": command, "conditions": []})
    for name in SUB_FIELDS:
        if fields.get(name) is not None:
            entry[name] = fields[name]
    entry["phase"] = ctype
    # Sub-command conditions carry no `command` (the updater copies type, status, reason, message only).
    cond = make_condition("" if group != V2_GROUP else group, ctype, reason, message)
    entry["conditions"] = set_condition(entry.get("conditions") or [], cond)
    other = subs.get(_OPPOSITE.get(command, ""))
    if other is not None:
        other["phase"] = "Repeatable"


def sub_status(status: dict[str, Any], command: str) -> dict[str, Any]:
    return (status.get("logSubCommandStatuses") or {}).get(command) or {}
