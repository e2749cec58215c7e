"""The response model of `GET /tidb-pitr/api/clusters`: the types the page's bundle (tidb_pitr.js) relies on.

Every time is `IsoTime`: an ISO-8601 time with a timezone, or null. TSOs are decimal strings (a JavaScript number
cannot hold one). What the guard published (`status`) is typed where the page reads it; other keys pass through.
Imported by `ui/app.py` only, so that no DAG parse or task loads pydantic models for the page.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# The one spelling of a time that both Python and every browser's Date.parse read: RFC 3339 with seconds and a zone.
# Python reads more (`20261121T053000+0000`, `2026-W47-6T05:30:00+00:00`, `2026-11-21T05Z`); the page could not.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def _iso_with_zone(value: str | None) -> str | None:
    if value is None:
        return None
    if not _RFC3339.fullmatch(value):
        raise ValueError(f"{value!r} is not an RFC 3339 time with its zone, such as 2026-11-21T05:30:00Z")
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # a date that does not exist (02-30) is refused here
    return value


IsoTime = Annotated[str | None, AfterValidator(_iso_with_zone)]
Tso = Annotated[str | None, Field(pattern=r"^[0-9]+$")]


class _Open(BaseModel):
    """Published JSON: the keys the page reads are typed, the rest pass through as they are."""
    model_config = ConfigDict(extra="allow")


class Point(_Open):
    """A moment the guard computed from a TSO."""
    ts: Tso = None
    time: IsoTime = None


class Range(_Open):
    from_: Point | None = Field(None, alias="from")
    to: Point | None = None


class Moment(Point):
    """A point that always has its time: the timeline's ends and its now (planning/timeline.py computes them)."""
    ts: Tso = None
    time: Annotated[str, AfterValidator(_iso_with_zone)]


class Span(_Open):
    """A stretch of the timeline (its range, a band, a gap): both ends always known."""
    from_: Moment = Field(alias="from")
    to: Moment


class Gap(Range):
    cause: str | None = None


class Coverage(Span):
    """A log backup's band on the timeline: its ends always known (planning/timeline.py)."""
    log: str | None = None
    state: str | None = None
    restorable_from: Point | None = None


class TimelineGap(Span):
    """A gap on the timeline: its ends always known, even an open one (planning/timeline.py Gap)."""
    cause: str | None = None


class Mark(_Open):
    """A snapshot on the timeline."""
    name: str
    ts: Tso = None
    time: IsoTime = None
    state: str | None = None
    managed: bool | None = None


class Truncation(Point):
    log: str | None = None
    truncated: bool | None = None


class Timeline(_Open):
    """What planning/timeline.py draws: the range, coverage bands, gaps and marks."""
    range: Span
    now: Moment
    policy_start: Moment
    coverage: list[Coverage] = []
    gaps: list[TimelineGap] = []
    marks: list[Mark] = []
    truncation: Truncation | None = None


class Window(_Open):
    """The recoverable window (planning/window.py): its ends, span and gaps."""
    earliest: Point  # its ts and time are null when there is no window (planning/window.py)
    latest: Point
    span_seconds: float | None = None
    gaps: list[Gap] = []
    notes: list[str] = []


class MaintenancePause(_Open):
    """A pause asked for by the log-control DAG (planning/pause.py `MaintenancePause`): the guard resumes it after."""
    until: IsoTime = None
    at: IsoTime = None
    run: str | None = None
    reason: str | None = None
    active: bool | None = None


class Rpo(_Open):
    """The log checkpoint and its lag against the RPO thresholds (planning/rpo.py)."""
    log_backup: str | None = None
    log_phase: str | None = None
    maintenance_pause: MaintenancePause | None = None
    checkpoint: Point | None = None
    lag_seconds: float | None = None
    level: str | None = None
    cause: str | None = None  # why the lag only grows (a log backup BR will not resume) and the way out
    log_backup: str | None = None  # the log backup's name, none when no log backup runs


class LastSnapshot(_Open):
    """The newest snapshot Backup of the cluster, as the guard saw it."""
    name: str | None = None
    state: str | None = None
    time: IsoTime = Field(default=None, description="when its data was taken: its commitTs")
    slot: IsoTime = Field(default=None, description="the snapshot run's slot, the time in its name (UTC)")
    size_bytes: int | None = None
    age_seconds: float | None = None
    managed: bool | None = None


class PlannedDeletion(_Open):
    """One snapshot the next retention run would delete (planning/retention.py)."""
    name: str | None = None
    commit_ts: Tso = None
    commit_time: IsoTime = None


class RetentionPlan(_Open):
    """The next retention run, planned as a dry run."""
    policy_start: Point | None = None
    truncate_until: Point | None = None
    delete: list[PlannedDeletion] = []
    base: PlannedDeletion | None = None
    held: str | None = None
    refused: str | None = None
    reasons: list[str] = []


class TargetState(_Open):
    """A restore target's state when published (planning/targets.py)."""
    value: str
    state: Literal["scratch", "restoring", "holds", "empty", "unknown"] = "unknown"
    detail: str | None = None
    databases: int | None = None


class Status(_Open):
    """What the cluster's log backup guard published (flows/tasks/guard_status.py)."""
    cluster: str | None = None
    generated_at: IsoTime = None
    # What the guard always publishes (guard_status.py): a status without one is refused as unreadable, with where.
    window: Window
    timeline: Timeline
    rpo: Rpo
    last_snapshot: LastSnapshot | None = None
    retention_plan: RetentionPlan
    targets: list[TargetState] = []
    source_tables: list[str] = Field(default=[], description="the source's user tables (`db.table`) over SQL when "
                                     "it has sql_conn_id: the restore form's suggestions for `tables`")


class Published(BaseModel):
    """The run whose `publish_status` XCom the page read: the guard's, or a DAG's that changed what the page shows."""
    dag_id: str | None = None
    run_id: str
    run_state: str
    run_end: IsoTime = None
    written: IsoTime = None


class LastRestore(BaseModel):
    """A run of the restore DAG, with the point it restored (or was asked) to (ui/payload.py restore_entry)."""
    run_id: str
    state: str
    note: str | None = None
    start: IsoTime = None
    end: IsoTime = None
    restore_time: IsoTime = None  # the point restored to, also when the run was given a TSO
    restore_ts: Tso = None  # that point's TSO
    target_cluster: str | None = None
    dry_run: bool = False
    kind: Literal["restore", "dry run", "refused", "running", "stopped before the restore"] = Field(
        default="restore", description="`restore` only when it created a Restore CR and finished")
    duration_seconds: float | None = Field(default=None, description="the Restore CR's run, from the report")
    duration: str | None = Field(default=None, description="duration_seconds as tidb_pitr.units says it")
    verified: Literal["passed", "not verified", "failed", "not requested"] | None = None
    tables: list[str] = Field(default=[], description="the run's `tables` (table-filter rules); []: whole cluster")


class DrillRecord(_Open):
    """What the drill recorded (flows/tasks/drill.py)."""
    verdict: str | None = None
    summary: str | None = None
    restore_ts: Tso = None
    restore_time: IsoTime = None


class LastDrill(Published):
    record: DrillRecord  # the drill's `record` task always returns one


class CheckRow(BaseModel):
    """One assumption the DAGs make, as the check DAG measured it (planning/check.py CheckRow)."""
    name: str
    status: Literal["OK", "WARNING", "FAILED"]
    value: str = Field(default="", description="what was measured")
    action: str = Field(default="", description="what to do; empty when OK")


class Checks(BaseModel):
    """The newest run of the cluster's check DAG: its rows, the failed first, and when they were measured."""
    run_id: str
    run_state: str
    at: IsoTime = Field(default=None, description="when the rows were measured")
    rows: list[CheckRow]


class RestoreTarget(BaseModel):
    """A restore target as the page lists it, with its state as of the last publish."""
    value: str
    label: str
    verify: bool = Field(default=False, description="the cluster and this target have sql_conn_id: verify can run")
    scratch: bool = Field(default=False, description="the drill's: never offered for a user restore")
    state: Literal["scratch", "restoring", "holds", "empty", "unknown"] = "unknown"
    detail: str | None = Field(default=None, description="the state in words: 'holds 2 databases', ...")


class Durations(BaseModel):
    """Durations as the API says them (tidb_pitr.units.format_duration); the bundle formats only live ages."""

    span: str | None = Field(default=None, description="the recoverable window's span")
    lag: str | None = Field(default=None, description="the log checkpoint's lag when published")
    warn: str | None = Field(default=None, description="the RPO warn threshold")
    critical: str | None = Field(default=None, description="the RPO critical threshold")
    last_snapshot_age: str | None = Field(default=None, description="the last snapshot's age when published")
    last_snapshot_size: str | None = Field(default=None, description="the last snapshot's size (backupSize)")


class DagIds(BaseModel):
    """The cluster's DAGs by flow: the guard and the restore DAG always; snapshot, retention, compaction, drill
    when the cluster has them (ui/payload.py cluster_dag_ids)."""
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]
    log_guard: str
    restore: str


class ClusterEntry(BaseModel):
    """One cluster's card."""
    name: str
    namespace: str
    id: str = Field(description="<namespace>/<name>, the card's key")
    timezone: str | None = None
    dag_ids: DagIds = Field(description="flow (log_guard, restore, ...) -> the cluster's DAG id")
    restore_targets: list[RestoreTarget]
    preselected_target: str | None = Field(default=None, description="the first user target found empty, or none")
    next_runs: dict[str, IsoTime] = Field(default={}, description="snapshot, retention, drill -> when it runs next")
    paused_dags: list[str] = Field(default=[], description="of those, the kinds whose DAG is paused in Airflow")
    status: Status | None = None
    status_error: str | None = Field(default=None, description="why `status` is null although the guard published")
    published: Published | None = Field(default=None, description="the guard run that published `status`")
    age_seconds: float | None = Field(default=None, description="seconds since `published`, at the server's now")
    durations: Durations = Field(description="`status`'s durations, formatted by tidb_pitr.units")
    last_restore: LastRestore | None = Field(default=None, description="the last run that made a Restore CR")
    last_attempts: list[LastRestore] = Field(default=[], description="newer dry runs, refusals, running runs")
    last_drill: LastDrill | None = None
    checks: Checks | None = Field(default=None, description="the check DAG's newest rows, none before its first run")

    @model_validator(mode="after")
    def _published_with_status(self) -> Self:
        if self.status is not None and self.published is None:
            raise ValueError("a status needs the guard run that published it (`published`)")
        return self


class ClustersResponse(BaseModel):
    now: IsoTime
    clusters: list[ClusterEntry]
