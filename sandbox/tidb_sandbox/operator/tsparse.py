"""How the operator and BR read the TS strings users put into CRs (reference section 1.2 and 1.3).

The operator accepts a decimal TSO, `YYYY-MM-DD HH:MM:SS` (in its own zone, UTC in the container) or
RFC 3339. BR additionally refuses a datetime without a zone. The sandbox keeps both behaviours, so a
CR that the operator accepts can still fail in the BR job, as on a real cluster.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..data.tso import dt_to_tso

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_ZONED_SPACE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$")
_PLAIN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class TsParseError(ValueError):
    pass


def _rfc3339(text: str) -> int:
    return dt_to_tso(datetime.fromisoformat(text.replace("Z", "+00:00")))


def parse_ts_operator(text: str | None) -> int:
    """`ParseTSString` of TiDB Operator: empty is 0."""
    text = (text or "").strip()
    if not text:
        return 0
    if text.isdigit():
        return int(text)
    if _PLAIN.match(text):
        return dt_to_tso(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    if _RFC3339.match(text):
        return _rfc3339(text)
    raise TsParseError(f"cannot parse ts string {text}")


def parse_ts_br(text: str) -> int:
    """BR's `ParseTSString(ts, tzCheck=true)`: a datetime must carry its zone."""
    text = (text or "").strip()
    if text.isdigit():
        return int(text)
    if m := _ZONED_SPACE.match(text):
        date, clock, zone = m.groups()
        if zone != "Z":
            sign, digits = zone[0], zone[1:].replace(":", "")
            zone = f"{sign}{digits[:2]}:{digits[2:4] or '00'}"
        return _rfc3339(f"{date}T{clock}{zone}")
    if _PLAIN.match(text) or re.match(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$", text):
        raise TsParseError("must set timezone when using datetime format ts, e.g. '2018-05-11 01:42:23+0800'")
    raise TsParseError(f"failed to parse ts string {text}")
