"""The TiDB PITR page (plugins/tidb_pitr/ui) as a user sees it in Airflow 3.3's UI, in headless Chromium.

The page shows what the log backup guard published; the stack's setup ran the guard once (conftest), and the
second test runs it again through the REST API after replacing the log backup.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow_stack import CLUSTER, NAMESPACE, Stack
from playwright.sync_api import Locator, Page, expect

from .conftest import PAGE_TARGET
from .conftest import SCREENSHOTS as ARTIFACTS
from .pages import run_state_badge

pytestmark = pytest.mark.timeout(1200)
RESTORE_TIMEOUT = 300.0
Shot = Callable[[Page, str], Path]
CLUSTER_ID = f"{NAMESPACE}/{CLUSTER}"


def open_status_page(page: Page, stack: Stack) -> Locator:
    """From the home page, through the nav entry; returns demo1's card once its data has loaded."""
    page.goto(f"{stack.url}/")
    page.get_by_role("link", name="TiDB PITR").or_(page.get_by_role("button", name="TiDB PITR")).first.click()
    card = page.get_by_role("article", name=f"cluster {CLUSTER_ID}")
    expect(card.get_by_role("region", name="Recoverable window")).to_contain_text("Earliest", timeout=30_000)
    return card


def test_restore_to_a_point_clicked_on_the_timeline(page: Page, stack: Stack, screenshot: Shot) -> None:
    card = open_status_page(page, stack)
    screenshot(page, "1-page")
    timeline = card.get_by_test_id("tidb-pitr-timeline")
    expect(timeline.locator("[data-kind=snapshot][data-state=Complete]").first).to_be_attached()
    expect(card.get_by_text("No gaps.")).to_be_visible()

    band = timeline.locator("[data-kind=restorable]").last
    box = band.bounding_box()
    assert box is not None
    band.click(position={"x": box["width"] * 0.97, "y": box["height"] / 2})  # a recent time: a short replay
    form = card.get_by_role("form", name="Restore to here")
    expect(form).to_be_visible()
    expect(form.get_by_role("alert")).to_have_count(0)  # inside the window
    form.get_by_label("Target cluster").select_option(f"{NAMESPACE}/{PAGE_TARGET}")
    screenshot(page, "2-form")
    form.get_by_role("button", name="Trigger restore").click()
    link = form.get_by_role("status").get_by_role("link")
    expect(link).to_be_visible()
    run_id = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(r"/dags/[^/]+/runs/"))

    restore = stack.dag_id("restore")
    state = stack.api.wait_run(restore, run_id, timeout=RESTORE_TIMEOUT)["state"]
    page.reload()
    expect(run_state_badge(page, run_id)).to_be_visible(timeout=30_000)  # a loaded machine draws it late
    screenshot(page, "3-run")
    assert state == "success", f"restore run {run_id} ended {state}"
    expect(run_state_badge(page, run_id)).to_have_text("Success")
    conf = stack.api.run(restore, run_id)["conf"]
    assert conf["target_cluster"] == f"{NAMESPACE}/{PAGE_TARGET}" and conf["restore_time"].endswith("Z")

    card = open_status_page(page, stack)  # the page lists that restore as the last one
    expect(card.get_by_role("region", name="Last restore")).to_contain_text(run_id)
    screenshot(page, "4-last-restore")


def _stop_log_backup(stack: Stack) -> str:
    """log-stop on the live log backup, through the sandbox's Kubernetes API, as a DBA would."""
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("AIRFLOW_CONN_")})
    from tidb_pitr.cr.model import BackupView
    from tidb_pitr.hooks.kubernetes import TidbOperatorHook

    hook = TidbOperatorHook(stack.cluster.kubernetes_conn_id, api_group=stack.cluster.group())
    name = stack.cluster.log_backup_name
    hook.merge_patch("backups", name, NAMESPACE, {"spec": {"logSubcommand": "log-stop"}})
    deadline = time.monotonic() + 60
    while BackupView.from_cr(hook.get("backups", name, NAMESPACE)).phase != "Stopped":
        assert time.monotonic() < deadline, f"{name} did not stop"
        time.sleep(0.5)
    return name


def test_a_replaced_log_backup_shows_a_gap(page: Page, stack: Stack, screenshot: Shot) -> None:
    stopped = _stop_log_backup(stack)
    guard = stack.dag_id("log_guard")
    run = stack.api.wait_run(guard, stack.api.trigger(guard, {"start_new_log_backup": True}), timeout=300)
    assert run["state"] == "success", f"{guard} run {run['dag_run_id']} {run['state']}"

    card = open_status_page(page, stack)
    gaps = card.get_by_role("list", name="gaps")
    expect(gaps).to_contain_text(f"log backup {stopped} stopped at")
    expect(gaps).to_contain_text(f"no snapshot of the next log {stopped}-2 yet")
    timeline = card.get_by_test_id("tidb-pitr-timeline")
    expect(timeline.locator("[data-kind=gap]")).to_have_count(1)
    screenshot(page, "1-gap")
    card.get_by_role("button", name="last hour").click()  # a gap of seconds, seen up close
    expect(timeline).to_have_attribute("data-zoom", "hour")
    expect(timeline.locator("[data-kind=gap]")).to_have_count(1)
    screenshot(page, "2-last-hour")
    (ARTIFACTS / "tidb-pitr-api-clusters.json").write_text(json.dumps(stack.api.call("GET", "/tidb-pitr/api/clusters"),
                                                                     indent=2))


def test_a_dag_page_has_its_clusters_tab(page: Page, stack: Stack, screenshot: Shot) -> None:
    page.goto(stack.dag_url("restore"))
    page.get_by_role("link", name="TiDB PITR cluster").or_(page.get_by_role("tab", name="TiDB PITR cluster")) \
        .or_(page.get_by_role("button", name="TiDB PITR cluster")).first.click()
    card = page.get_by_role("article", name=f"cluster {CLUSTER_ID}")
    expect(card.get_by_role("region", name="Recoverable window")).to_contain_text("Earliest", timeout=30_000)
    screenshot(page, "1-dag-tab")


def test_a_restore_by_tso_shows_its_time_on_the_page_and_the_dag_tab(page: Page, stack: Stack,
                                                                       screenshot: Shot) -> None:
    """The state `make demo` leaves: the last restore was triggered with `restore_tso`. The page and the DAG's
    tab render the card (no "Invalid time value"), and the last restore shows the TSO's time (and, with "Show
    TSOs", the TSO), in light and dark mode. A dry run: it plans, checks the target and creates nothing."""
    from tidb_pitr.tso import tso_iso

    (entry,) = [c for c in stack.api.call("GET", "/tidb-pitr/api/clusters")["clusters"] if c["id"] == CLUSTER_ID]
    window = entry["status"]["window"]
    ts = (int(window["earliest"]["ts"]) + int(window["latest"]["ts"])) // 2
    restore = stack.dag_id("restore")
    run_id = stack.api.trigger(restore, {"restore_tso": str(ts), "target_cluster": f"{NAMESPACE}/{PAGE_TARGET}",
                                         "dry_run": True})
    state = stack.api.wait_run(restore, run_id, timeout=RESTORE_TIMEOUT)["state"]
    assert state in ("success", "failed"), f"dry run {run_id} ended {state}"  # a filled target is refused

    def last_restore_shows_the_time(card: Locator) -> None:
        last = card.get_by_role("region", name="Last restore")
        expect(last).to_contain_text(run_id)
        last.scroll_into_view_if_needed()  # Airflow scrolls its content pane: this puts it in the screenshot
        expect(last.locator(f'[title="{tso_iso(ts)} (UTC)"]')).to_be_visible()  # the TSO's time, to the ms
        expect(last).not_to_contain_text("unreadable")

    try:
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            card = open_status_page(page, stack)
            last_restore_shows_the_time(card)
            expect(page.get_by_text("Invalid time value")).to_have_count(0)
            page.get_by_label("Show TSOs").check()
            expect(card.get_by_role("region", name="Last restore")).to_contain_text(f"TSO {ts}")
            screenshot(page, f"1-page-{scheme}")

            page.goto(stack.dag_url("restore"))
            page.get_by_role("link", name="TiDB PITR cluster").or_(page.get_by_role("tab", name="TiDB PITR cluster")) \
                .or_(page.get_by_role("button", name="TiDB PITR cluster")).first.click()
            card = page.get_by_role("article", name=f"cluster {CLUSTER_ID}")
            expect(card.get_by_role("region", name="Recoverable window")).to_contain_text("Earliest", timeout=30_000)
            last_restore_shows_the_time(card)
            expect(page.get_by_text("Invalid time value")).to_have_count(0)
            expect(page.get_by_text(restore).first).to_be_visible()  # the DAG's own header stays
            screenshot(page, f"2-dag-tab-{scheme}")
    finally:
        page.emulate_media(color_scheme="light")
