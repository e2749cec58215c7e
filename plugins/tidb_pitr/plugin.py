"""The Airflow plugin: the custom timetable (needed to (de)serialize DAGs that use it), macros, the listener
that writes run notes, and the TiDB PITR page (a FastAPI app under /tidb-pitr and the React app it serves)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .runtime.notes import run_notes
from .timetables import EveryNDaysTimetable
from .tso import tso_iso
from .ui.lazy import LazyAsgiApp

URL_PREFIX = "/tidb-pitr"  # tidb_pitr.ui.app's routes are below it
BUNDLE_URL = f"{URL_PREFIX}/static/tidb_pitr.js"


def tso_to_iso(ts: int | str) -> str:
    """`{{ macros.tidb_pitr.tso_to_iso(ti.xcom_pull(...)) }}`: a TSO (int or the CRs' decimal string) as UTC ISO."""
    return tso_iso(int(ts))


class TidbPitrPlugin(AirflowPlugin):
    name = "tidb_pitr"
    timetables = [EveryNDaysTimetable]
    macros = [tso_to_iso]
    listeners = [run_notes]
    fastapi_apps = [{"app": LazyAsgiApp("tidb_pitr.ui.app:app"), "url_prefix": URL_PREFIX, "name": "TiDB PITR status"}]
    # One component, two places: the whole page in the nav, and the DAG's own cluster on each of its DAGs' pages
    # (the component gets `dagId` there and shows only that cluster).
    react_apps = [
        {"name": "TiDB PITR", "bundle_url": BUNDLE_URL, "destination": "nav", "url_route": "tidb-pitr",
         "nav_top_level": True},
        {"name": "TiDB PITR cluster", "bundle_url": BUNDLE_URL, "destination": "dag", "url_route": "tidb-pitr-dag"},
    ]
