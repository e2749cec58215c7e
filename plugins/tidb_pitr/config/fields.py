"""The building blocks of the schema: the frozen base model, the `Duration` field, and the checks of names,
time zones, local times and cron expressions that several sections share."""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from ..units import parse_duration

# Derived names (`<name>-log-backup`, and the Job names the operator makes from CR names) end up in label
# values, which Kubernetes caps at 63 characters; 40 leaves room. `tidb_cluster` may be longer.
MAX_NAME = 40
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ANCHOR = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")

# `10m`, `1h30m`, `30d`, ISO-8601 or seconds in the file; a timedelta in the model.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class ConfigModel(BaseModel):
    """Every section's base: unknown keys refused, values frozen, strings stripped."""

    # Frozen: a config is read at parse time and shared by every DAG built from it.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def dns_label(value: str, what: str = "") -> str:
    """`value` if it is a DNS-1123 label (what Kubernetes names and labels allow)."""
    if len(value) > 63 or not DNS_LABEL.fullmatch(value):
        raise ValueError(f"{what}must be a DNS-1123 label: lower-case letters, digits and '-', starting and "
                         f"ending with a letter or digit, at most 63 characters")
    return value


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone; otherwise a ValueError with close matches (looked up only on error)."""
    try:
        ZoneInfo(name)  # cached by zoneinfo: cheap for the same zone in every cluster
        return name
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"must be an IANA time zone name such as 'UTC', 'Europe/Berlin' or 'Asia/Shanghai'{hint}")


def check_anchor(value: Any) -> str:
    """`HH:MM`, 24-hour, 00:00 to 23:59."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        # YAML 1.1 reads an unquoted 12:30 as the base-60 integer 750: turn it back into what was written.
        value = "{:02d}:{:02d}".format(*divmod(value, 60))
    if not isinstance(value, str) or not ANCHOR.fullmatch(value):
        raise ValueError(f"must be a local time 'HH:MM' from '00:00' to '23:59' (got {value!r})")
    return value


_CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")


def check_cron(value: str) -> str:
    """A five-field cron expression or one of Airflow's presets (croniter is imported only here)."""
    from croniter import croniter

    if value in _CRON_PRESETS or croniter.is_valid(value):
        return value
    raise ValueError(f"must be a cron expression such as '0 4 * * 0' (minute hour day month weekday) or one of "
                     f"{', '.join(_CRON_PRESETS)}")


# A cluster's IANA time zone and a local time of day (`HH:MM`), checked wherever they appear.
TimeZone = Annotated[str, AfterValidator(check_timezone)]
LocalTime = Annotated[str, BeforeValidator(check_anchor)]
Cron = Annotated[str, AfterValidator(check_cron)]  # five fields, or an Airflow preset
