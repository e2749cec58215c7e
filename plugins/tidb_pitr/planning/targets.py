"""What each restore target is as of a publish, and which one the page may offer a user: pure, from plain values.

A target is `scratch` (the drill's: it empties it, so users never restore there), `restoring` (a Restore CR into it
is in progress), `holds` (user databases found over SQL), `empty` (none found over SQL), or `unknown` (no
`sql_conn_id`, or SQL could not be read). Only an `empty` target is a safe preselection; `holds` and `restoring`
would be refused by the restore's plan, and `unknown` is checked only by BR, after the Restore CR exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCRATCH, RESTORING, HOLDS, EMPTY, UNKNOWN = "scratch", "restoring", "holds", "empty", "unknown"
STATES = (SCRATCH, RESTORING, HOLDS, EMPTY, UNKNOWN)
SCRATCH_DETAIL = "the drill's scratch cluster: drills only"


def target_state(*, scratch: bool, restoring: Sequence[str], user_objects: Sequence[str] | None,
                 unreadable: str | None = None) -> dict[str, Any]:
    """One target's state: scratch first (drills only, whatever it holds), then a restore in progress, then what SQL
    found (`user_objects`: `db.table` or `db`, None when not read). `databases` counts the user databases found."""
    databases = len({o.split(".", 1)[0] for o in user_objects}) if user_objects is not None else None
    if scratch:
        state, detail = SCRATCH, SCRATCH_DETAIL
    elif restoring:
        state, detail = RESTORING, f"being restored into: {', '.join(restoring)}"
    elif user_objects is None:
        state, detail = UNKNOWN, unreadable or "no sql_conn_id: not checked (BR checks it after the CR exists)"
    elif databases:
        state, detail = HOLDS, f"holds {databases} database{'' if databases == 1 else 's'}"
    else:
        state, detail = EMPTY, "empty"
    return {"state": state, "detail": detail, "databases": databases, "restoring": list(restoring)}


def user_choices(targets: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The targets a user restore may be offered: every one but the drill's scratch clusters."""
    return [t for t in targets if not t.get("scratch")]


def preselected(targets: Iterable[Mapping[str, Any]]) -> str | None:
    """The target a restore form selects first: the first user target found `empty`, else none (the user
    chooses; a guess at a target that holds data or is being restored into would be refused)."""
    return next((str(t["value"]) for t in user_choices(targets) if t.get("state") == EMPTY), None)
