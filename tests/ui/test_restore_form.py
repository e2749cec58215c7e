"""Restores as a user makes them: the restore DAG's Trigger form in headless Chromium, then the run's page.

The form is built in plugins/tidb_pitr/flows/restore.py: "Restore to" (typed, with its timezone) or "Restore to
TSO", the target cluster chosen from restore_targets (none chosen by default), and a refused run carries its reason
in the run's note. A restore by TSO is then on the TiDB PITR page by its time (the state `make demo` leaves).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow_stack import CLUSTER, NAMESPACE, TARGET, UI_TARGET, Stack
from playwright.sync_api import Page, expect

from .pages import (
    choose_target,
    open_trigger_form,
    run_state_badge,
    set_restore_time,
    set_restore_tso,
    submit,
    wait_for_run_page,
    wrap_log_lines,
)

# The first test also waits for the stack (sandbox with 40 days of history, Airflow, one guard run).
pytestmark = pytest.mark.timeout(1200)
RESTORE_TIMEOUT = 300.0

Shot = Callable[[Page, str], Path]


def trigger_restore(page: Page, stack: Stack, when: datetime | str | int, target: str, screenshot: Shot) -> str:
    """Fill the form (time as typed, or an int: a TSO; target from the list) and trigger; returns the run id of the
    page it opens."""
    form = open_trigger_form(page, stack.dag_url("restore"))
    target_field = form.get_by_role("group").filter(has=page.locator("[name=element_target_cluster]"))
    expect(target_field).to_contain_text("choose the empty cluster to restore into")  # none chosen for the user
    screenshot(page, "1-form")
    if isinstance(when, int):
        set_restore_tso(form, when)
    else:
        set_restore_time(form, when if isinstance(when, str) else when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    choose_target(form, stack.target_label(target))
    screenshot(page, "2-filled")
    run_id = submit(form)
    screenshot(page, "3-triggered")
    return run_id


def rows_digest(stack: Stack, cluster: str, as_of: str | None = None) -> tuple[int, str]:
    query = f"asOf={as_of}&rows=false" if as_of else "rows=false"
    rows = stack.sandbox.call("GET", f"/clusters/{NAMESPACE}/{cluster}/rows?{query}")
    return rows["count"], rows["digest"]


def wait_for_end(page: Page, stack: Stack, run_id: str) -> str:
    """The run's final state (from the REST API), then the page reloaded to show it."""
    state = stack.api.wait_run(stack.dag_id("restore"), run_id, timeout=RESTORE_TIMEOUT)["state"]
    page.reload()
    wait_for_run_page(page, run_id)
    return state


def test_restore_an_hour_back_by_tso_from_the_form_then_the_page_shows_it(page: Page, stack: Stack,
                                                                          screenshot: Shot) -> None:
    """By TSO, as the demo's own restore: the page that once crashed on it ("Invalid time value") shows it by its
    time, and its TSO with "Show TSOs"."""
    from tidb_pitr.tso import dt_to_tso, tso_iso

    tso = dt_to_tso(datetime.now(UTC) - timedelta(hours=1))
    run_id = trigger_restore(page, stack, tso, UI_TARGET, screenshot)  # not the demo's target: a real choice

    state = wait_for_end(page, stack, run_id)
    screenshot(page, "4-finished")
    assert state == "success", f"restore run {run_id} ended {state}; see its page in the screenshot"
    expect(run_state_badge(page, run_id)).to_have_text("Success")
    expect(page.get_by_text(re.compile("^Restored "))).to_contain_text(f"into {NAMESPACE}/{UI_TARGET}")
    # What the form sent, and what the restore made of it: the source's rows at that TSO, in the target.
    conf = stack.api.run(stack.dag_id("restore"), run_id)["conf"]
    assert conf["target_cluster"] == f"{NAMESPACE}/{UI_TARGET}"
    assert conf["restore_tso"] == str(tso) and not conf["restore_time"]
    assert stack.api.xcom(stack.dag_id("restore"), run_id, "report")["restore_ts"] == str(tso)
    assert rows_digest(stack, UI_TARGET) == rows_digest(stack, CLUSTER, as_of=str(tso))

    # The TiDB PITR page: that restore is the last one, by its time (to the ms, in the hover), and its TSO.
    page.get_by_role("link", name="TiDB PITR").or_(page.get_by_role("button", name="TiDB PITR")).first.click()
    last = page.get_by_role("article", name=f"cluster {NAMESPACE}/{CLUSTER}").get_by_role("region",
                                                                                         name="Last restore")
    expect(last).to_contain_text(run_id, timeout=30_000)
    hover = tso_iso(tso).replace(".000Z", "Z")  # as the bundle's utc() writes it
    expect(last.locator(f'[title="{hover} (UTC)"]')).to_be_visible()
    expect(last).not_to_contain_text("TSO ")
    expect(page.get_by_text("Invalid time value")).to_have_count(0)
    page.get_by_label("Show TSOs").check()
    expect(last).to_contain_text(f"TSO {tso}")
    last.scroll_into_view_if_needed()
    screenshot(page, "5-page-last-restore")


def test_a_time_outside_the_window_is_refused_with_the_reason(page: Page, stack: Stack, screenshot: Shot) -> None:
    when = (datetime.now(UTC) - timedelta(days=400)).replace(second=0, microsecond=0)
    # Its own target: the other test's restore leaves demo1-restore-ui not empty, which is refused too.
    run_id = trigger_restore(page, stack, when, TARGET, screenshot)

    state = wait_for_end(page, stack, run_id)
    screenshot(page, "4-refused")
    assert state == "failed"
    expect(run_state_badge(page, run_id)).to_have_text("Failed")
    note = page.get_by_text(re.compile("^Refused: "))
    expect(note).to_be_visible()
    expect(note).to_contain_text("is before the earliest restorable time | window ")
    # The note shows one line; the plan task's log (its row in the run's task list) has the whole refusal.
    page.get_by_role("table").get_by_role("link", name="plan", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/[^/]+/tasks/plan"))
    wrap_log_lines(page)
    expect(page.get_by_text(re.compile("ERROR - Refused: .*recoverable window"))).to_be_visible()
    screenshot(page, "5-plan-log")


def test_a_time_without_a_timezone_gets_what_to_add(page: Page, stack: Stack, screenshot: Shot) -> None:
    """Typed as a wall-clock time: Airflow takes the run (no JSON-schema dump in the form), and the plan refuses it
    before anything exists, saying what to add, with an example."""
    run_id = trigger_restore(page, stack, "2026-11-21 05:30", TARGET, screenshot)

    state = wait_for_end(page, stack, run_id)
    screenshot(page, "4-refused")
    assert state == "failed"
    # The header shows the note's headline (the reason and the window); the note holds the rest: what to write.
    note = page.get_by_text(re.compile("^Refused: restore_time: "))
    expect(note).to_contain_text('"2026-11-21 05:30" has no timezone | window 20')
    expect(page.get_by_text("Failed validating")).to_have_count(0)
    assert ('"2026-11-21 05:30" has no timezone; write it as 2026-11-21T05:30:00Z or '
            "2026-11-21 05:30:00+08:00" in stack.api.run(stack.dag_id("restore"), run_id)["note"])
