"""One line on the DAG run itself (its note, shown on the grid and the run's page): why a restore was refused,
what it restored, how long it took.

A task cannot write its own run's note in Airflow 3.3 (the Task SDK has no call for it), so tasks publish the
line as an XCom (`publish_note`) and a listener in the scheduler, which already holds the run in its database
session, copies the newest one into the note when the run ends. A note the user typed in the trigger form is
kept, with ours below it.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

NOTE_KEY = "tidb_pitr_run_note"
MAX_NOTE = 1000  # dag_run_note.content is String(1000)
log = logging.getLogger(__name__)


def publish_note(context: Any, text: str) -> None:
    """What the run's note should say (the last one published wins): its paragraphs (split by a blank line) kept,
    each on one line, since the run's header shows only the first (planning/notes.py writes that headline)."""
    paragraphs = (" ".join(part.split()) for part in text.split("\n\n"))
    context["ti"].xcom_push(key=NOTE_KEY, value="\n\n".join(p for p in paragraphs if p)[:MAX_NOTE])


def _newest_note(dag_run: Any, session: Any) -> str | None:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.scalars(
        select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
                                XComModel.key == NOTE_KEY).order_by(XComModel.timestamp.desc()).limit(1)
    ).first()
    return None if row is None else str(XComModel.deserialize_value(row))


def apply_note(dag_run: Any) -> None:
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:  # the scheduler's session: written with its commit, no lock of our own
        _write(dag_run, session)
        return
    # A run not bound to a session (`dag.test()` hands one out): a short session of our own.
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as own:
        bound = own.get(DagRun, dag_run.id)
        if bound is not None:
            _write(bound, own)


def _write(dag_run: Any, session: Any) -> None:
    note = _newest_note(dag_run, session)
    if not note:
        return
    typed = (dag_run.note or "").split("\n---\n")[0].strip()
    ours = note if not typed or typed == note else f"{typed}\n---\n{note}"
    dag_run.note = ours[:MAX_NOTE]


class RunNotes:
    """The listener object registered by the plugin."""

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        self._safely(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        self._safely(dag_run)

    @staticmethod
    def _safely(dag_run: Any) -> None:
        try:
            apply_note(dag_run)
        except Exception:  # a note is never worth failing the scheduler's loop for
            log.exception("could not write the run note of %s", getattr(dag_run, "run_id", dag_run))


run_notes = RunNotes()
