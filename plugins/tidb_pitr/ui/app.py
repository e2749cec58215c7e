"""`/tidb-pitr`: what the clusters' DAGs published last (the guard every 10 minutes, and every DAG that changes
what the page shows at its end), per configured cluster, read from Airflow's metadata DB, and the
cluster's last restore told apart from its last attempts (dry runs, refusals, runs still going).

The web tier has no Kubernetes or storage credentials and needs none: the clusters come from the config file,
everything else from the XComs and runs of the clusters' DAGs. Every route needs an Airflow user (the UI's
`_token` cookie or a bearer token), and a cluster is listed only when that user may read its guard DAG.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_authenticated
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import ClusterConfig, ConfigError, load_config
from .payload import FINISHED, cluster_dag_ids, cluster_payload, durations, iso, response, restore_entry, split_restores

__all__ = ["app", "durations"]  # durations: the published durations as the page gets them (ui/payload.py)

# The page's code: the bundle Airflow's UI imports, and the helpers module the bundle imports from beside it.
STATIC = {name: Path(__file__).with_name(name) for name in ("tidb_pitr.js", "tidb_pitr_helpers.js")}
STATUS_TASK, DRILL_TASK = "publish_status", "record"
# The check DAG's rows: pushed under their own key by its `check` task, whether or not a row FAILED (a FAILED row
# fails the task, so it has no return value then): flows/tasks/check.py publish_check.
CHECK_TASK, CHECK_KEY = "check", "tidb_pitr_check"
RESTORE_TASKS = ("plan", "restore", "verify")  # their states tell a restore from a dry run or a refusal
NEXT_RUN_KINDS = ("snapshot", "retention", "drill")  # the page says when each runs next
RUNS_READ = 25  # restore runs read per card: enough to find the last real restore behind a row of attempts
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".cjs")

app = FastAPI(title="TiDB PITR", docs_url=None, redoc_url=None, openapi_url=None)


def _newest(session: Session, *where: Any, order: tuple[Any, ...]) -> dict[str, Any] | None:
    """The first top-level XCom matching `where` in `order`, deserialized, with its DAG and its run's id and state."""
    row = session.execute(
        select(XComModel, DagRun.run_id, DagRun.state, DagRun.end_date)
        .join(DagRun, XComModel.dag_run_id == DagRun.id)
        .where(*where, XComModel.map_index == -1)
        .order_by(*order).limit(1)
    ).first()
    if row is None:
        return None
    xcom, run_id, state, end = row
    return {"value": XComModel.deserialize_value(xcom), "dag_id": xcom.dag_id, "run_id": run_id,
            "run_state": str(state), "run_end": iso(end), "written": iso(xcom.timestamp)}


def newest_xcom(session: Session, dag_id: str, task_id: str, key: str = "return_value") -> dict[str, Any] | None:
    """The XCom `key` of `task_id` in the newest run of `dag_id` that has one, with that run's id and state."""
    found = _newest(session, XComModel.dag_id == dag_id, XComModel.task_id == task_id, XComModel.key == key,
                    order=(DagRun.run_after.desc(), DagRun.id.desc()))
    if found is not None:
        found.pop("dag_id")  # the caller named it
    return found


def newest_status(session: Session, dag_ids: list[str]) -> dict[str, Any] | None:
    """The newest status any of the cluster's DAGs published (`publish_status`: the guard's, and the one every DAG
    that changes what the page shows runs at its end), by when it was written, with its DAG and run."""
    return _newest(session, XComModel.dag_id.in_(dag_ids), XComModel.task_id == STATUS_TASK,
                   XComModel.key == "return_value", order=(XComModel.timestamp.desc(), XComModel.dag_run_id.desc()))


def next_runs(session: Session, dag_ids: dict[str, str]) -> tuple[dict[str, str | None], list[str]]:
    """When the scheduler runs the cluster's scheduled DAGs next (their `next_dagrun_create_after`), by kind, and
    the kinds whose DAG is paused (it runs at no time: the page says so rather than a blank)."""
    kinds = {dag_ids[k]: k for k in NEXT_RUN_KINDS if k in dag_ids}
    found: dict[str, str | None] = {kind: None for kind in kinds.values()}
    paused_kinds = []
    for dag_id, after, paused in session.execute(
            select(DagModel.dag_id, DagModel.next_dagrun_create_after, DagModel.is_paused)
            .where(DagModel.dag_id.in_(list(kinds)))):
        found[kinds[dag_id]] = None if paused else iso(after)
        if paused:
            paused_kinds.append(kinds[dag_id])
    return found, sorted(paused_kinds)


def restore_runs(session: Session, dag_id: str) -> list[dict[str, Any]]:
    """The newest runs of a restore DAG (`RUNS_READ`), newest first, each with its tasks' states and report; and
    the last that made a Restore CR and finished, when it is older than those."""
    newest = select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc(), DagRun.id.desc())
    runs = list(session.scalars(newest.limit(RUNS_READ)).all())
    if len(runs) == RUNS_READ:
        restored = newest.join(TaskInstance, (TaskInstance.dag_id == DagRun.dag_id)
                               & (TaskInstance.run_id == DagRun.run_id)).where(
            TaskInstance.task_id == "restore", TaskInstance.state.in_(FINISHED), DagRun.state.in_(FINISHED))
        older = session.scalars(restored.limit(1)).first()
        if older is not None and older not in runs:
            runs.append(older)
    if not runs:
        return []
    run_ids = [run.run_id for run in runs]
    tasks: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
    for run_id, task_id, state in session.execute(
            select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids),
                   TaskInstance.task_id.in_(RESTORE_TASKS), TaskInstance.map_index == -1)):
        tasks[run_id][task_id] = str(state) if state is not None else "none"
    reports = {run_id: XComModel.deserialize_value(xcom) for xcom, run_id in session.execute(
        select(XComModel, DagRun.run_id).join(DagRun, XComModel.dag_run_id == DagRun.id)
        .where(XComModel.dag_id == dag_id, DagRun.run_id.in_(run_ids), XComModel.task_id == "report",
               XComModel.key == "return_value", XComModel.map_index == -1))}
    return [restore_entry(run_id=run.run_id, state=run.state, note=run.note, start=run.start_date,
                          end=run.end_date, conf=run.conf, tasks=tasks[run.run_id], report=reports.get(run.run_id))
            for run in runs]


def cluster_entry(session: Session, cluster: ClusterConfig, now: datetime, readable: set[str]) -> dict[str, Any]:
    """One cluster's card: what its guard published, its last drill and restore, read from the metadata DB."""
    dag_ids = cluster_dag_ids(cluster)
    # Any of its DAGs the user may read: the guard, and those that publish again what they changed.
    published = newest_status(session, [d for d in dag_ids.values() if d in readable])
    status = published.pop("value") if published else None
    drill = None
    if "drill" in dag_ids and dag_ids["drill"] in readable:
        found = newest_xcom(session, dag_ids["drill"], DRILL_TASK)
        drill = {**found, "record": found.pop("value")} if found else None
    runs = restore_runs(session, dag_ids["restore"]) if dag_ids["restore"] in readable else []
    restore, attempts = split_restores(runs)
    checks = newest_xcom(session, dag_ids["check"], CHECK_TASK, CHECK_KEY) if dag_ids["check"] in readable else None
    return cluster_payload(cluster, now=now, published=published, status=status, drill=drill, restore=restore,
                           attempts=attempts, schedules=next_runs(session, dag_ids), checks=checks)


@app.get("/api/clusters")
def clusters(user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Every configured cluster the user may read, with what its guard published last."""
    try:
        config = load_config()
    except ConfigError as exc:
        raise HTTPException(status_code=500, detail=f"the clusters configuration cannot be read: {exc}") from None
    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    now = datetime.now(UTC)
    shown = [c for c in config.clusters if c.dag_id("log_guard") in readable]
    return response(now, [cluster_entry(session, c, now, readable) for c in shown])


@app.get("/static/{name}", dependencies=[Depends(requires_authenticated())])
def bundle(name: str) -> FileResponse:
    """The page's code: plain JavaScript ES modules over the host's React (no build step); nothing else."""
    if name not in STATIC:
        raise HTTPException(status_code=404, detail=f"no such file; the page's files are {sorted(STATIC)}")
    return FileResponse(STATIC[name], media_type="text/javascript", headers={"Cache-Control": "no-cache"})
