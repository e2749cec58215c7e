"""What a user does in the Airflow 3.3 UI, as Playwright steps: log in, fill the restore form, follow the run.

Locators go by what the user reads (labels, option texts, button names) and by the form's own field names,
not by generated CSS classes.
"""

from __future__ import annotations

import re
import urllib.parse

from airflow_stack import Stack
from playwright.sync_api import Locator, Page, expect

RUN_PAGE = re.compile(r"/dags/[^/]+/runs/[^/?#]+$")


def login(page: Page, stack: Stack) -> None:
    """Through the simple auth manager's login page, as admin with the password standalone generated."""
    page.goto(f"{stack.url}/")
    expect(page.get_by_text("Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(stack.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.url}/")


def open_trigger_form(page: Page, dag_url: str) -> Locator:
    page.goto(dag_url)
    page.get_by_test_id("trigger-dag-button").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Restore to", exact=True)).to_be_visible()
    return form


def _labelled(form: Locator, label: str) -> Locator:
    return form.get_by_role("group").filter(has=form.page.get_by_text(label, exact=True))


def _named(form: Locator, param: str) -> Locator:
    """The field of a DAG param: the form names its inputs element_<param>."""
    return form.get_by_role("group").filter(has=form.page.locator(f"[name=element_{param}]"))


def set_restore_time(form: Locator, text: str) -> None:
    """Type the "Restore to" text as a user would (the field is text: the timezone is part of what is typed)."""
    field = form.locator("[name=element_restore_time]")
    field.fill(text)
    expect(field).to_have_value(text)


def set_restore_tso(form: Locator, tso: int) -> None:
    """Paste an exact TSO into "Restore to TSO", "Restore to" left empty (as a DBA copies one from `br log status`)."""
    field = form.locator("[name=element_restore_tso]")
    field.fill(str(tso))
    expect(field).to_have_value(str(tso))


def choose_target(form: Locator, label: str) -> None:
    field = _named(form, "target_cluster")
    field.get_by_role("combobox").click()
    form.page.get_by_role("option", name=label, exact=True).click()
    expect(field).to_contain_text(label)


def submit(form: Locator) -> str:
    """Press Trigger; the UI opens the new run's page. Returns its run id."""
    page = form.page
    form.get_by_role("button", name="Trigger", exact=True).click()
    page.wait_for_url(RUN_PAGE)
    return urllib.parse.unquote(page.url.rsplit("/runs/", 1)[1])


def wait_for_run_page(page: Page, run_id: str) -> None:
    """Until the run's page has drawn its state and its task list (after a reload it shows placeholders first)."""
    # On a loaded 2-core machine the run's page can take well over the default 5 s to draw after a reload.
    expect(run_state_badge(page, run_id)).to_be_visible(timeout=30_000)
    expect(page.get_by_role("table").get_by_role("link", name="plan", exact=True)).to_be_visible(timeout=30_000)


def run_state_badge(page: Page, run_id: str) -> Locator:
    """The state badge next to the run id at the top of the run's page."""
    heading = page.get_by_role("heading", name=run_id, exact=True)
    return heading.locator("xpath=following-sibling::span[@data-testid='state-badge']")


def wrap_log_lines(page: Page) -> None:
    """On a task's log: wrap long lines (Log Settings > Wrap), so a whole message is on screen."""
    # The log has loaded. Airflow reads it from the worker's log file: CI at load 13 took over 5 s (the default).
    expect(page.get_by_text("Post Execute")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Log Settings").click()
    page.get_by_role("menuitem", name=re.compile("^Wrap")).click()
