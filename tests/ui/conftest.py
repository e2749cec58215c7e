"""The browser tests' stack: the demo's sandbox + `airflow standalone` (scripts/airflow_stack.py) in a tmp dir
on free ports, ready for restores, and a headless Chromium with a fresh profile.

One stack for every browser test: it takes a few minutes to start (40 days of history, Airflow's four
components). Each test that restores has an empty target of its own (`PAGE_TARGET` beside the demo's
`UI_TARGET`), so no test depends on another's leftovers. Everything started is stopped at the end, also when a
test or the start fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from airflow_stack import ROOT, UI_TARGET, Stack, free_port, running_stack
from playwright.sync_api import BrowserContext, Page, sync_playwright

from .pages import login

CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by the Makefile: no browser download
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / ".artifacts" / "ui"
PAGE_TARGET = f"{UI_TARGET}-page"  # the status page's "Restore to here" restores into this one
TABLES_TARGET = f"{UI_TARGET}-tables"  # ... and one table into this one


def _say(text: str) -> None:
    print(f"[ui stack] {text}", flush=True)


def ready_for_restores(stack: Stack) -> None:
    """Restore DAG on, and one log backup guard run done: it checks the live log backup a restore reads."""
    api = stack.api
    guard, restore = stack.dag_id("log_guard"), stack.dag_id("restore")
    api.wait_dags([guard, restore])
    api.unpause(restore)
    api.unpause(guard)  # the scheduler starts the latest slot's run now (catchup=False): wait for that one
    run_id = api.wait_scheduled_run(guard) or api.trigger(guard)
    run = api.wait_run(guard, run_id, timeout=300)
    assert run["state"] == "success", f"{guard} run {run_id} {run['state']}; see {stack.workdir}/airflow/logs"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("ui-stack"), free_port(), _say,
                       extra_targets=(PAGE_TARGET, TABLES_TARGET)) as running:
        ready_for_restores(running)
        yield running


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def page(browser: BrowserContext, stack: Stack) -> Page:
    """One logged-in tab for the browser tests (the session cookie lives in the profile)."""
    tab = browser.new_page()
    login(tab, stack)
    return tab


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """screenshot(page, step) saves .artifacts/ui/<test>-<step>.png (git-ignored), to look at after a run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, step: str) -> Path:
        path = SCREENSHOTS / f"{request.node.name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
