"""The Airflow plugin: the custom timetable (needed to (de)serialize DAGs that use it), macros, and the listener
that writes run notes."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .run_notes import run_notes
from .timetables import EveryNDaysTimetable
from .tso import tso_iso


def tso_to_iso(ts: int | str) -> str:
    """`{{ macros.tidb_pitr.tso_to_iso(ti.xcom_pull(...)) }}`: a TSO (int or the CRs' decimal string) as UTC ISO."""
    return tso_iso(int(ts))


class TidbPitrPlugin(AirflowPlugin):
    name = "tidb_pitr"
    timetables = [EveryNDaysTimetable]
    macros = [tso_to_iso]
    listeners = [run_notes]
