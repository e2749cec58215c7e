"""The TiDB PITR page's payload, built from plain values: every time in it an ISO-8601 UTC time or null.

`ui/app.py` reads Airflow's metadata DB and hands the values here; nothing here imports FastAPI or touches a DB,
so the builders are unit-tested as they are. The whole payload is validated through the response model
(`ui/model.py`) before it is sent. A restore triggered by TSO (`restore_tso`) shows its time, with its
TSO kept apart in `restore_ts`; a time that cannot be read (a hand-written conf, an old XCom) becomes null, never
a string the page's `new Date(...)` cannot parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..config import ClusterConfig
from ..planning.targets import SCRATCH_DETAIL, preselected
from ..tso import parse_user_time, tso_iso, tso_str
from ..units import format_bytes, format_duration
from .model import ClustersResponse, Status

# Keys that hold a time as a string, anywhere in what the guard or the drill published.
TIME_KEYS = frozenset({"time", "commit_time", "generated_at", "restore_time", "written", "run_end", "start",
                       "end", "now"})
# Keys that hold a time as a string in some places ({"from": "2026-…Z"}) and a {ts, time} point in others.
RANGE_KEYS = frozenset({"from", "to"})
# An ISO-8601 date-time with a zone, as JavaScript's Date.parse reads it everywhere.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def iso(value: datetime | None) -> str | None:
    """A timezone-aware datetime as `2026-11-21T05:30:00.123456Z`; a naive one is taken as UTC (Airflow's DB)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clean_time(value: Any) -> str | None:
    """`value` when it is an ISO-8601 time with a timezone that exists, else None."""
    if isinstance(value, datetime):
        return iso(value)
    if not isinstance(value, str) or not _ISO.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed.astimezone(UTC)  # an offset that moves it out of range raises here
    except (ValueError, OverflowError):
        return None
    return value


def clean_times(value: Any, key: str | None = None) -> Any:
    """A copy of published JSON with every time field (`TIME_KEYS`, string `from`/`to`) readable or null."""
    if isinstance(value, Mapping):
        return {k: clean_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_times(v, key) for v in value]
    if key in TIME_KEYS or (key in RANGE_KEYS and isinstance(value, str)):
        return clean_time(value)
    return value


def restore_point(conf: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(time, TSO) a restore run was asked for: `restore_time` as given, or `restore_tso` converted; either None
    when the conf's value cannot be read (the run itself refuses it, with the reason, in its note)."""
    for field in ("restore_time", "restore_tso"):
        raw = conf.get(field)
        if raw in (None, ""):
            continue
        try:
            ts = parse_user_time(raw if isinstance(raw, str) else str(raw), field=field)
            return tso_iso(ts), tso_str(ts)
        except (ValueError, TypeError, OverflowError):
            return None, None
    return None, None


# What a restore run was, from its tasks' states: only a `restore` task that ran to an end made a Restore CR.
RESTORE, DRY_RUN, REFUSED, RUNNING, STOPPED = "restore", "dry run", "refused", "running", "stopped before the restore"
FINISHED = ("success", "failed")
ATTEMPTS_SHOWN = 3


def restore_kind(state: str, dry_run: bool, tasks: Mapping[str, str]) -> str:
    """`restore` (it created a Restore CR and finished), `dry run`, `refused` (at plan), `running`, or `stopped
    before the restore` (a wait failed: no CR)."""
    if tasks.get("restore") in FINISHED and state in FINISHED:
        return RESTORE
    if state not in FINISHED:
        return RUNNING
    if dry_run:
        return DRY_RUN
    return REFUSED if tasks.get("plan") == "failed" else STOPPED


def _verified(report: Mapping[str, Any], tasks: Mapping[str, str]) -> str | None:
    """`passed`, `not verified`, `failed` (the target differs) or `not requested`; None while unknown."""
    if tasks.get("verify") == "failed":
        return "failed"
    if tasks.get("verify") == "skipped":
        return "not requested"
    verdict = report.get("verify")
    return verdict if isinstance(verdict, str) else None


def restore_entry(*, run_id: str, state: Any, note: str | None, start: datetime | None, end: datetime | None,
                  conf: Mapping[str, Any] | None, tasks: Mapping[str, str] | None = None,
                  report: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A restore run as the page shows it: what it was (`kind`), the point as a time (and its TSO), the target, how
    long the restore took and whether it was verified (from its `report`), the run and its note."""
    conf = conf if isinstance(conf, Mapping) else {}
    tasks = tasks or {}
    report = report if isinstance(report, Mapping) else {}
    time, ts = restore_point(conf)
    target = conf.get("target_cluster")
    dry_run = conf.get("dry_run") is True
    took = report.get("duration_seconds")
    took = float(took) if isinstance(took, int | float) and not isinstance(took, bool) else None
    return {"run_id": run_id, "state": str(state), "note": note, "start": iso(start), "end": iso(end),
            "restore_time": time, "restore_ts": ts, "target_cluster": target if isinstance(target, str) else None,
            "dry_run": dry_run, "kind": restore_kind(str(state), dry_run, tasks),
            "duration_seconds": took, "duration": _text(took), "verified": _verified(report, tasks),
            "tables": _rules(conf.get("tables"))}


def _rules(raw: Any) -> list[str]:
    """A run's `tables` as the form gave them (a list, or lines / commas); [] when none or unreadable."""
    if isinstance(raw, str):
        raw = raw.replace(",", "\n").split("\n")
    return [r.strip() for r in raw if isinstance(r, str) and r.strip()] if isinstance(raw, list) else []


def split_restores(runs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the last restore, the last attempts) from restore runs newest first (`restore_entry`): the last restore is
    the newest run that created a Restore CR and finished; the attempts are the newest other runs (dry runs,
    refusals, runs still going or stopped before a CR), at most `ATTEMPTS_SHOWN`."""
    last = next((r for r in runs if r["kind"] == RESTORE), None)
    return last, [r for r in runs if r["kind"] != RESTORE][:ATTEMPTS_SHOWN]


def _bytes(size: Any) -> str | None:
    return format_bytes(size) if isinstance(size, int) and not isinstance(size, bool) else None


def _text(seconds: Any) -> str | None:
    return format_duration(float(seconds)) if isinstance(seconds, int | float) else None


def durations(status: Any) -> dict[str, str | None]:
    """The published durations as the package says them (`tidb_pitr.units`), so the page does not format them
    itself: it formats only the one that grows while it is open, the age of what was published."""
    status = status if isinstance(status, dict) else {}
    window, rpo, last = (status.get(k) or {} for k in ("window", "rpo", "last_snapshot"))
    return {"span": _text(window.get("span_seconds")), "lag": _text(rpo.get("lag_seconds")),
            "warn": _text(rpo.get("warn_seconds")), "critical": _text(rpo.get("critical_seconds")),
            "last_snapshot_age": _text(last.get("age_seconds")), "last_snapshot_size": _bytes(last.get("size_bytes"))}


def _age(value: Any, now: datetime) -> float | None:
    """Seconds since `value` (an ISO time with a zone), None when it is not one."""
    value = clean_time(value)
    return (now - datetime.fromisoformat(value.replace("Z", "+00:00"))).total_seconds() if value else None


def readable_status(status: Any) -> tuple[dict[str, Any] | None, str | None]:
    """What the guard published with unreadable times made null, or (None, why) when its shape is not the one
    the page reads (an XCom from another version): the card then says so instead of the page failing."""
    if status is None:
        return None, None
    if not isinstance(status, dict):
        return None, f"the guard published a {type(status).__name__}, not a status"
    status = clean_times(status)
    try:
        Status.model_validate(status)
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"the guard's status is unreadable at {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return status, None


def cluster_dag_ids(cluster: ClusterConfig) -> dict[str, str]:
    """The DAGs of the cluster, by kind, that the page links to and reads."""
    own = [] if cluster.schedule_managed else ["snapshot", "retention", "log_control"]
    kinds = ["log_guard", "restore", "check"] + own \
        + (["compaction"] if cluster.compaction else []) \
        + (["drill"] if cluster.drill else [])
    return {kind: cluster.dag_id(kind) for kind in kinds}


def _targets(cluster: ClusterConfig, status: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The restore targets with their state as of the last publish (`status["targets"]`, else unknown); `verify`
    when both sides can be compared over SQL; `scratch` ones are the drill's, shown but never offered."""
    published = {t.get("value"): t for t in (status or {}).get("targets") or [] if isinstance(t, Mapping)}
    out = []
    for value, label in cluster.target_choices().items():
        namespace, _, name = value.rpartition("/")
        target = cluster.restore_target(name, namespace or None)
        scratch = bool(target is not None and target.scratch)
        seen = published.get(value, {})
        state = "scratch" if scratch else seen.get("state", "unknown")
        detail = SCRATCH_DETAIL if scratch else seen.get("detail") or "not published yet"
        out.append({"value": value, "label": label, "scratch": scratch, "state": state, "detail": detail,
                    "verify": bool(cluster.sql_conn_id and target is not None and target.sql_conn_id)})
    return out


def cluster_payload(cluster: ClusterConfig, *, now: datetime, published: dict[str, Any] | None, status: Any,
                    drill: dict[str, Any] | None, restore: dict[str, Any] | None,
                    attempts: list[dict[str, Any]] | None = None,
                    schedules: tuple[Mapping[str, str | None], list[str]] | None = None,
                    checks: dict[str, Any] | None = None) -> dict[str, Any]:
    """One cluster's card from what was read: the guard's newest status XCom (`published`, without its value,
    and `status`), the drill's newest record, the last restore and the last attempts (`split_restores`), the
    check DAG's newest rows (`checks`: its XCom with the run's id and state)."""
    status, unreadable = readable_status(status)
    if drill is not None:
        record = drill.get("record")
        drill = {**drill, "run_end": clean_time(drill.get("run_end")), "written": clean_time(drill.get("written")),
                 "record": clean_times(record) if isinstance(record, dict) else None}
    return {
        "name": cluster.name, "namespace": cluster.namespace, "id": f"{cluster.namespace}/{cluster.name}",
        "timezone": cluster.timezone, "dag_ids": cluster_dag_ids(cluster),
        "restore_targets": (targets := _targets(cluster, status)), "preselected_target": preselected(targets),
        "next_runs": {kind: clean_time(at) for kind, at in (schedules[0] if schedules else {}).items()},
        "paused_dags": list(schedules[1]) if schedules else [],
        "status": status, "status_error": unreadable, "published": published,
        "age_seconds": _age(status.get("generated_at"), now) if status else None,
        "durations": durations(status),
        "last_restore": restore, "last_attempts": attempts or [], "last_drill": drill,
        "checks": check_entry(checks),
    }


def check_entry(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The check DAG's XCom ({"rows": [...], "at": epoch seconds}) as the card shows it: FAILED rows first, then
    WARNING, then OK (as the run note orders them); a row that is not one of the three is shown as FAILED with
    what it said, since a check the page cannot read is not a check that passed."""
    if not found or not isinstance(found.get("value"), Mapping):
        return None
    value = found["value"]
    rows = []
    for row in value.get("rows") or []:
        if not isinstance(row, Mapping):
            continue
        status = row.get("status")
        rows.append({"name": str(row.get("name", "?")), "status": status if status in CHECK_ORDER else "FAILED",
                     "value": str(row.get("value", "")) if status in CHECK_ORDER else f"unreadable row: {row!r}",
                     "action": str(row.get("action", ""))})
    rows.sort(key=lambda r: CHECK_ORDER.index(r["status"]))
    at = value.get("at")
    when = datetime.fromtimestamp(at, UTC) if isinstance(at, int | float) else None
    return {"run_id": found["run_id"], "run_state": found["run_state"], "at": iso(when) if when else None,
            "rows": rows}


CHECK_ORDER = ["FAILED", "WARNING", "OK"]


def response(now: datetime, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The payload, validated through the response model (ui/model.py) and sent as that model dumps it."""
    return ClustersResponse.model_validate({"now": iso(now), "clusters": entries}).model_dump(
        mode="json", by_alias=True)
