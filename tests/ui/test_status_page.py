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
from airflow_stack import CLUSTER, NAMESPACE, TARGET, Stack, window_times
from playwright.sync_api import Locator, Page, expect

from .conftest import PAGE_TARGET, TABLES_TARGET
from .conftest import SCREENSHOTS as ARTIFACTS

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


def test_right_after_retention_the_card_shows_the_new_earliest_time_and_the_next_plan(
        page: Page, stack: Stack, screenshot: Shot) -> None:
    """Retention deletes the snapshots beyond the 30-day policy and truncates the log; its run republishes at its
    end, so the card opened right after shows the window's new earliest time and a next plan that deletes none
    of what is gone (before, the page kept the old window for up to 10 minutes). First in the module: the log
    backup is still the one the history was written by (the gap test replaces it, and a window that no longer
    reaches the checkpoint makes retention's own check refuse, as it should)."""
    api, retention = stack.api, stack.dag_id("retention")
    api.wait_dags([retention])
    api.unpause(retention)  # the scheduler starts its latest slot (catchup=False); trigger only when none passed
    run_id = api.wait_scheduled_run(retention) or api.trigger(retention)
    assert api.wait_run(retention, run_id, timeout=RESTORE_TIMEOUT)["state"] == "success", f"retention {run_id}"
    plan = api.xcom(retention, run_id, "plan") or {}
    deleted = [d.get("backup_name") or d.get("prefix") for d in plan.get("deletions", [])]
    assert deleted, f"the stack's 40 days hold snapshots beyond the 30-day policy: {plan}"
    times = window_times(api.xcom(retention, run_id, "finish"))
    assert times, "retention's finish gives the window after it"
    card = open_status_page(page, stack)
    earliest = f"{times[0]:%Y-%m-%dT%H:%M:%SZ} (UTC)"  # the Time element's title, as the bundle's utc() writes it
    window = card.get_by_role("region", name="Recoverable window")
    expect(window.locator(".tidb-pitr-time").first).to_have_attribute("title", earliest, timeout=30_000)
    next_plan = card.get_by_role("region", name="Next retention (dry run)")
    for name in deleted:
        expect(next_plan).not_to_contain_text(name)
    window.scroll_into_view_if_needed()
    screenshot(page, "1-after-retention")


def test_restore_to_a_point_clicked_on_the_timeline(page: Page, stack: Stack, screenshot: Shot) -> None:
    card = open_status_page(page, stack)
    screenshot(page, "1-page")
    timeline = card.get_by_test_id("tidb-pitr-timeline")
    expect(timeline.locator("[data-kind=snapshot][data-state=Complete]").first).to_be_attached()
    expect(card.get_by_text("No gaps.")).to_be_visible()

    # A time minutes ago, in the last hour's view: a short replay, and inside the source's GC life time, so that
    # verify (on by default here) can compare every table.
    card.get_by_role("button", name="last hour").click()
    expect(timeline).to_have_attribute("data-zoom", "hour")
    band = timeline.locator("[data-kind=restorable]").last
    box = band.bounding_box()
    assert box is not None
    band.click(position={"x": box["width"] * 0.95, "y": box["height"] / 2})
    form = card.get_by_role("form", name="Restore to here")
    expect(form).to_be_visible()
    expect(form.get_by_role("alert")).to_have_count(0)  # inside the window
    form.get_by_label("Target cluster").select_option(f"{NAMESPACE}/{PAGE_TARGET}")
    expect(form.get_by_label("Verify")).to_be_checked()  # the cluster and the target have sql_conn_id
    screenshot(page, "2-form")
    form.get_by_role("button", name="Trigger restore").click()
    # The run's progress, then its outcome, on the page itself.
    progress = form.get_by_role("status", name="triggered run")
    link = progress.get_by_role("link")
    expect(link).to_be_visible()
    run_id = link.inner_text()
    expect(progress).to_have_attribute("data-state", re.compile("^(success|failed)$"), timeout=RESTORE_TIMEOUT * 1000)
    progress.scroll_into_view_if_needed()
    screenshot(page, "3-finished")
    restore = stack.dag_id("restore")
    assert stack.api.run(restore, run_id)["state"] == "success", f"restore run {run_id} failed"
    expect(progress.get_by_test_id("run-outcome")).to_contain_text(
        re.compile(rf"^Restored to 20.* into {NAMESPACE}/{PAGE_TARGET} in .*, verified$"))
    conf = stack.api.run(restore, run_id)["conf"]
    assert conf["target_cluster"] == f"{NAMESPACE}/{PAGE_TARGET}" and conf["restore_time"].endswith("Z")
    assert conf["verify"] is True and conf["dry_run"] is False
    assert stack.api.xcom(restore, run_id, "report")["verify"] == "passed"

    # The card reloaded when the run ended: that restore is the last one, verified.
    last = card.get_by_role("region", name="Last restore")
    expect(last).to_contain_text(run_id)
    expect(last).to_contain_text("verified: every table equal to the source")
    last.scroll_into_view_if_needed()
    screenshot(page, "4-last-restore")


def test_restore_one_table_to_a_point_clicked_on_the_timeline(page: Page, stack: Stack, screenshot: Shot) -> None:
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("AIRFLOW_CONN_")})
    from tidb_pitr.hooks.kubernetes import TidbOperatorHook

    # A target on TiDB v8.5.5, the first whose BR restores chosen tables to a point in time.
    hook = TidbOperatorHook(stack.cluster.kubernetes_conn_id, api_group=stack.cluster.group())
    hook.api.patch_namespaced_custom_object("pingcap.com", "v1alpha1", NAMESPACE, "tidbclusters", TABLES_TARGET,
                                            {"spec": {"version": "v8.5.5"}})
    card = open_status_page(page, stack)
    card.get_by_role("button", name="last hour").click()
    band = card.get_by_test_id("tidb-pitr-timeline").locator("[data-kind=restorable]").last
    box = band.bounding_box()
    assert box is not None
    band.click(position={"x": box["width"] * 0.95, "y": box["height"] / 2})
    form = card.get_by_role("form", name="Restore to here")
    form.get_by_label("these tables").check()
    tables = form.get_by_label("Tables (comma-separated)")
    # The source's tables, published by the guard over SQL, are the field's suggestions.
    expect(form.locator("datalist option[value='shop.orders']")).to_have_count(1)
    tables.fill("shop.orders")
    form.get_by_label("Target cluster").select_option(f"{NAMESPACE}/{TABLES_TARGET}")
    screenshot(page, "1-form")
    form.get_by_role("button", name="Trigger restore").click()
    progress = form.get_by_role("status", name="triggered run")
    run_id = progress.get_by_role("link").inner_text()
    expect(progress).to_have_attribute("data-state", re.compile("^(success|failed)$"), timeout=RESTORE_TIMEOUT * 1000)
    restore = stack.dag_id("restore")
    assert stack.api.run(restore, run_id)["state"] == "success", f"restore run {run_id} failed"
    assert stack.api.run(restore, run_id)["conf"]["tables"] == ["shop.orders"]
    assert stack.api.xcom(restore, run_id, "report")["tables"] == ["shop.orders"]
    expect(form).to_contain_text(re.compile(
        rf"Restored tables shop\.orders to 20[-\d]+ [:\d]+Z into {NAMESPACE}/{TABLES_TARGET} in .*, verified"))
    last = card.get_by_role("region", name="Last restore")
    expect(last).to_contain_text(run_id)
    expect(last.get_by_test_id("restored-tables")).to_have_text("tables shop.orders")
    screenshot(page, "2-last-restore")


def lightness(css: str) -> float:
    """A computed CSS colour's lightness, 0 (black) to 1 (white): Airflow's theme gives oklch(L C H), a fallback rgb."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    if css.startswith("oklch("):
        return numbers[0] / 100 if "%" in css.split()[0] else numbers[0]
    assert css.startswith("rgb"), css
    return sum(numbers[:3]) / 765


def reads_in(scheme: str, page: Page, card: Locator) -> None:
    """The card follows Airflow's colour mode (its theme's CSS variables): dark on dark, light on light."""
    assert ("dark" in (page.locator("html").get_attribute("class") or "").split()) == (scheme == "dark")
    background, text, muted = card.evaluate("""e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color,
        getComputedStyle(e.querySelector("[data-testid=data-age]")).color]""")
    shade = {name: lightness(css) for name, css in (("background", background), ("text", text), ("muted", muted))}
    # Every theme colour the bundle names is one the host defines (a misspelt one would fall back silently).
    bundle = (Path(__file__).parents[2] / "plugins" / "tidb_pitr" / "ui" / "tidb_pitr.js").read_text(encoding="utf-8")
    names = sorted(set(re.findall(r'token\("([a-z-]+)"', bundle)))
    undefined = page.evaluate("""names => names.filter(n => !getComputedStyle(document.documentElement)
        .getPropertyValue("--chakra-colors-" + n).trim())""", names)
    assert len(names) > 10 and undefined == [], undefined
    if scheme == "dark":
        assert shade["background"] < 0.35 and shade["text"] > 0.75 and shade["muted"] > 0.5, (background, text, muted)
    else:
        assert shade["background"] > 0.9 and shade["text"] < 0.4 and shade["muted"] < 0.6, (background, text, muted)


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


def labels_apart(timeline: Locator) -> None:
    """The timeline's line labels (now, log start, policy start) as the browser drew them, in its fonts: no two
    overlap (placeLabels lays them out from an estimated width)."""
    boxes = timeline.evaluate("""svg => [...svg.querySelectorAll("g[data-label-row] text")].map(t => {
        const b = t.getBBox(); return [t.textContent, b.x, b.y, b.x + b.width, b.y + b.height]; })""")
    for i, (a, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for b, bx0, by0, bx1, by1 in boxes[i + 1:]:
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, f"{a!r} overlaps {b!r}: {boxes}"


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
    labels_apart(timeline)
    card.get_by_role("button", name="last hour").click()  # a gap of seconds, seen up close
    expect(timeline).to_have_attribute("data-zoom", "hour")
    expect(timeline.locator("[data-kind=gap]")).to_have_count(1)
    labels_apart(timeline)
    screenshot(page, "2-last-hour")
    try:
        page.emulate_media(color_scheme="dark")
        timeline.scroll_into_view_if_needed()
        screenshot(page, "3-last-hour-dark")
    finally:
        page.emulate_media(color_scheme="light")
    (ARTIFACTS / "tidb-pitr-api-clusters.json").write_text(json.dumps(stack.api.call("GET", "/tidb-pitr/api/clusters"),
                                                                     indent=2))


def test_a_dag_page_has_its_clusters_tab(page: Page, stack: Stack, screenshot: Shot) -> None:
    page.goto(stack.dag_url("restore"))
    page.get_by_role("link", name="TiDB PITR cluster").or_(page.get_by_role("tab", name="TiDB PITR cluster")) \
        .or_(page.get_by_role("button", name="TiDB PITR cluster")).first.click()
    card = page.get_by_role("article", name=f"cluster {CLUSTER_ID}")
    expect(card.get_by_role("region", name="Recoverable window")).to_contain_text("Earliest", timeout=30_000)
    screenshot(page, "1-dag-tab")


def test_dry_runs_and_refusals_are_attempts_and_the_last_restore_stays_the_real_one(
        page: Page, stack: Stack, screenshot: Shot) -> None:
    """The state `make demo` leaves, and after: a dry run by TSO, then a refused run, after a real restore (the
    first test's). The page and the DAG's tab render the card (no "Invalid time value"); "Last restore" is still
    the real one; the dry run (its TSO's time, and the TSO with "Show TSOs") and the refusal (its reason and the
    window) are listed as attempts, in light and dark mode, each readable (the card takes the theme's colours)."""
    from tidb_pitr.tso import tso_iso

    (entry,) = [c for c in stack.api.call("GET", "/tidb-pitr/api/clusters")["clusters"] if c["id"] == CLUSTER_ID]
    window = entry["status"]["window"]
    ts = (int(window["earliest"]["ts"]) + int(window["latest"]["ts"])) // 2
    restore = stack.dag_id("restore")
    real = entry["last_restore"]
    # Into the demo's own target, which no browser test restores into (UI_TARGET holds the form test's restore,
    # and a dry run into a target that holds data is refused, as it should be).
    dry = stack.api.trigger(restore, {"restore_tso": str(ts), "target_cluster": f"{NAMESPACE}/{TARGET}",
                                      "dry_run": True})
    assert stack.api.wait_run(restore, dry, timeout=RESTORE_TIMEOUT)["state"] == "success", f"dry run {dry}"
    refused = stack.api.trigger(restore, {"restore_time": "2020-01-01T00:00:00Z",
                                          "target_cluster": f"{NAMESPACE}/{TARGET}"})
    assert stack.api.wait_run(restore, refused, timeout=RESTORE_TIMEOUT)["state"] == "failed", f"run {refused}"

    def shows_the_restore_and_the_attempts(card: Locator) -> None:
        last = card.get_by_role("region", name="Last restore")
        if real is not None:  # the first test's restore (this test alone on a fresh stack has none)
            expect(last).to_contain_text(real["run_id"])
        expect(last).not_to_contain_text(dry)
        expect(last).not_to_contain_text(refused)
        attempts = card.get_by_role("list", name="last attempts")
        attempts.scroll_into_view_if_needed()  # Airflow scrolls its content pane: this puts it in the screenshot
        first, second = attempts.get_by_role("listitem").nth(0), attempts.get_by_role("listitem").nth(1)
        expect(first).to_contain_text(f"refused {refused}")
        expect(first).to_contain_text("Refused: 2020-01-01T00:00:00.000Z is before the earliest restorable time "
                                      "| window 20")
        expect(second).to_contain_text(f"dry run {dry}")
        expect(second.locator(f'[title="{tso_iso(ts)} (UTC)"]')).to_be_visible()  # the TSO's time, to the ms
        expect(card).not_to_contain_text("unreadable")
        expect(card.page.get_by_text("Invalid time value")).to_have_count(0)

    try:
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            card = open_status_page(page, stack)
            shows_the_restore_and_the_attempts(card)
            reads_in(scheme, page, card)
            page.get_by_label("Show TSOs").check()
            expect(card.get_by_role("list", name="last attempts")).to_contain_text(f"TSO {ts}")
            screenshot(page, f"1-page-{scheme}")

            page.goto(stack.dag_url("restore"))
            page.get_by_role("link", name="TiDB PITR cluster").or_(page.get_by_role("tab", name="TiDB PITR cluster")) \
                .or_(page.get_by_role("button", name="TiDB PITR cluster")).first.click()
            card = page.get_by_role("article", name=f"cluster {CLUSTER_ID}")
            expect(card.get_by_role("region", name="Recoverable window")).to_contain_text("Earliest", timeout=30_000)
            shows_the_restore_and_the_attempts(card)
            expect(page.get_by_text(restore).first).to_be_visible()  # the DAG's own header stays
            screenshot(page, f"2-dag-tab-{scheme}")
    finally:
        page.emulate_media(color_scheme="light")


def test_a_maintenance_pause_from_the_page_and_the_targets_a_user_may_pick(
        page: Page, stack: Stack, screenshot: Shot) -> None:
    """Pause the log backup for maintenance from the card (the log-control DAG runs; the card then says until when,
    by which run, and why), in light and dark mode; every restore target is listed with its state, the drill's
    scratch cluster as "drills only", and "Restore to here" does not offer it."""
    api, control = stack.api, stack.dag_id("log_control")
    api.wait_dags([control])
    api.unpause(control)
    card = open_status_page(page, stack)
    targets = card.get_by_role("list", name="restore targets")
    expect(targets.locator(f'[data-target="{NAMESPACE}/demo1-scratch"]')).to_contain_text("scratch: drills only")
    for item in targets.get_by_role("listitem").all():
        assert item.get_attribute("data-state") in ("scratch", "restoring", "holds", "empty", "unknown")
    card.get_by_role("button", name="Restore to a time…").click()
    choices = card.get_by_role("form", name="Restore to here").get_by_label("Target cluster")
    assert f"{NAMESPACE}/demo1-scratch" not in [o.get_attribute("value") for o in choices.locator("option").all()]

    controls = card.get_by_label("log backup control")
    controls.locator("input[name=pause_minutes]").fill("30")
    controls.locator("input[name=reason]").fill("browser test maintenance")
    controls.get_by_role("button", name="Pause").click()
    progress = controls.get_by_role("status", name="triggered run")
    expect(progress).to_have_attribute("data-state", "success", timeout=RESTORE_TIMEOUT * 1000)
    try:
        paused = card.get_by_test_id("maintenance-pause")  # the card reloaded when the run ended
        expect(paused).to_contain_text("paused for maintenance until", timeout=30_000)
        expect(paused).to_contain_text("browser test maintenance")
        expect(card.get_by_role("region", name="Log backup")).to_contain_text("(Paused)")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            paused.scroll_into_view_if_needed()
            screenshot(page, f"1-paused-{scheme}")
    finally:
        page.emulate_media(color_scheme="light")
        resumed = api.trigger(control, {"action": "resume", "confirm": f"resume {CLUSTER}'s log backup"})
        assert api.wait_run(control, resumed, timeout=RESTORE_TIMEOUT)["state"] == "success", f"resume {resumed}"
