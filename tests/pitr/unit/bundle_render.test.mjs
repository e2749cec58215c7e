// The TiDB PITR page's bundle (plugins/tidb_pitr/ui/tidb_pitr.js) under node: its time helpers and a cluster's
// card with times no Date can hold, rendered to text by bundle_harness.mjs. Run by test_ui_bundle.py (`node --test`).
import assert from "node:assert/strict";
import { test } from "node:test";

import { React, load, render } from "./bundle_harness.mjs";

const parts = await load();
const BAD = ["436562003524714497", "2026-13-45T99:00:00Z", "yesterday", "Invalid Date"];

test("the time helpers say a time cannot be read instead of throwing", () => {
  for (const bad of BAD) {
    assert.equal(parts.local(bad), parts.UNREADABLE);
    assert.match(parts.utc(bad), /^unreadable time/);
    assert.doesNotThrow(() => render(React.createElement(parts.Time, { at: { time: bad, ts: "1" }, showTso: true })));
    assert.match(render(React.createElement(parts.Time, { at: bad })), /unreadable time/);
  }
  assert.equal(parts.local(null), "—");
  assert.equal(parts.utc("2026-11-21T05:30:00.000Z"), "2026-11-21T05:30:00Z (UTC)");
  assert.match(parts.local("2026-11-21T05:30:00Z"), /2026/);
});

function entry(overrides) {
  const point = (time) => ({ ts: "436562003524714497", time });
  const status = {
    cluster: "test1/demo1", generated_at: "2026-11-21T00:00:00Z",
    window: { earliest: point("2026-11-14T00:00:00Z"), latest: point("2026-11-21T00:00:00Z"), gaps: [], notes: [] },
    timeline: {
      range: { from: point("2026-11-13T00:00:00Z"), to: point("2026-11-21T01:00:00Z") },
      now: point("2026-11-21T00:00:00Z"), policy_start: point("2026-11-14T00:00:00Z"),
      coverage: [], gaps: [], marks: [], truncation: null,
    },
    rpo: { checkpoint: point("2026-11-21T00:00:00Z"), lag_seconds: 1, level: "ok" },
    last_snapshot: { name: "s2", state: "Complete", time: "2026-11-19T00:00:00Z", managed: true },
    retention_plan: { delete: [], truncate_until: null, reasons: [], base: null },
  };
  return {
    name: "demo1", namespace: "test1", id: "test1/demo1", dag_ids: { log_guard: "g", restore: "r" },
    restore_targets: [], status, published: { run_id: "p" }, age_seconds: 5, durations: {},
    last_restore: { run_id: "manual__1", state: "success", restore_time: "2026-11-20T00:00:00.000Z",
      restore_ts: "436562003524714497", target_cluster: "test1/demo1-restore" },
    last_drill: null, ...overrides,
  };
}

test("a restore by TSO shows its time, and its TSO with Show TSOs", () => {
  const text = render(React.createElement(parts.CardBoundary, { entry: entry({}), showTso: true }));
  assert.match(text, /\[title=2026-11-20T00:00:00Z \(UTC\)\]/);
  assert.match(text, /TSO 436562003524714497/);
  assert.doesNotMatch(text, /Could not show|unreadable/);
});

test("a card with a time no Date can hold renders, and says which time", () => {
  const bad = entry({ last_restore: { run_id: "manual__1", state: "success", restore_time: "436562003524714497" } });
  let text;
  assert.doesNotThrow(() => { text = render(React.createElement(parts.CardBoundary, { entry: bad, showTso: false })); });
  assert.match(text, /Restored to.*unreadable time/);
  assert.match(text, /Recoverable window/);
});

test("a field of another shape is named by its section, and the rest of the card stays", () => {
  const broken = entry({});
  broken.status.timeline.range = null; // the timeline cannot be drawn
  const text = render(React.createElement(parts.CardBoundary, { entry: broken, showTso: false }));
  assert.match(text, /Could not show "Timeline"/);
  assert.match(text, /Last restore/);
});

test("a card that cannot be drawn at all says which cluster, instead of blanking the page", () => {
  const broken = entry({});
  broken.status.window = null;
  const text = render(React.createElement(parts.CardBoundary, { entry: broken, showTso: false }));
  assert.match(text, /Could not show the card of cluster test1\/demo1/);
});

test("a typed time without a timezone gets what to add, with an example, as the run's plan says it", () => {
  assert.equal(parts.parseUserTime("2026-11-21 05:30").error, '"2026-11-21 05:30" has no timezone; ' +
    "write it as 2026-11-21T05:30:00Z or 2026-11-21 05:30:00+08:00");
  assert.match(parts.parseUserTime("2026-11-21T05:30Z").error, /has no seconds; write it as 2026-11-21T05:30:00Z/);
  assert.equal(parts.parseUserTime("2026-11-21T05:30:15").error,
    '"2026-11-21T05:30:15" has no timezone; write it as 2026-11-21T05:30:15Z or 2026-11-21 05:30:15+08:00');
  assert.match(parts.parseUserTime("").error, /with its timezone, e\.g\. 2026-11-21T05:30:00Z/);
  assert.match(parts.parseUserTime("yesterday").error, /^cannot read "yesterday"; write a time with a timezone/);
  assert.match(parts.parseUserTime("2026-02-30T00:00:00Z").error, /is not a valid time/);
  for (const [typed, iso] of [["2026-11-21T05:30:00Z", "2026-11-21T05:30:00.000Z"],
    ["2026-11-21 13:30:00+08:00", "2026-11-21T05:30:00.000Z"], ["2026-11-21 13:30:00+0800", "2026-11-21T05:30:00.000Z"],
    ["2026-11-21t05:30:00.25z", "2026-11-21T05:30:00.250Z"]]) {
    assert.equal(parts.parseUserTime(typed).date.toISOString(), iso, typed);
  }
});

test("the restore form says what a time without a timezone lacks, and offers Verify and a dry run", () => {
  const withTargets = entry({ restore_targets: [{ value: "test1/demo1-restore", label: "demo1-restore", verify: true }] });
  const text = render(React.createElement(parts.RestoreForm, { entry: withTargets, when: Date.parse("2026-11-20T00:00:00Z"),
    setWhen: () => {} }));
  assert.match(text, /Verify/);
  assert.match(text, /Dry run/);
  assert.doesNotMatch(text, /Cannot restore/); // a picked time inside the window
  const naive = parts.parseUserTime("2026-11-20 00:00:00");
  assert.match(naive.error, /has no timezone; write it as 2026-11-20T00:00:00Z/);
});

test("the last restore is the real one with its outcome, duration and verification; attempts are listed apart", () => {
  const shown = entry({
    last_restore: { run_id: "manual__1", state: "success", kind: "restore", restore_time: "2026-11-20T00:00:00.000Z",
      restore_ts: "1", target_cluster: "test1/demo1-restore", duration: "1m35s", verified: "not requested",
      note: "Restored to 2026-11-20 00:00:00Z into test1/demo1-restore in 1m35s\n\nRestored test1/demo1 to …" },
    last_attempts: [
      { run_id: "manual__3", state: "failed", kind: "refused", restore_time: null, restore_ts: null,
        note: "Refused: 2025-01-01T00:00:00.000Z is before the earliest restorable time | window a to b\n\nthe rest" },
      { run_id: "manual__2", state: "success", kind: "dry run", restore_time: "2026-11-19T00:00:00.000Z",
        restore_ts: "1", target_cluster: "test1/demo1-restore-ui", note: "Dry run: restore test1/demo1 …" }],
  });
  const text = render(React.createElement(parts.CardBoundary, { entry: shown, showTso: false }));
  const last = text.slice(text.indexOf("Last restore"), text.indexOf("Last attempts"));
  assert.match(last, /manual__1.*restored.*Restored to.*Into.*test1\/demo1-restore.*Took.*1m35s/);
  assert.match(last, /Verified.*not verified \(not asked\)/);
  assert.doesNotMatch(last, /manual__[23]|the rest|Restored test1\/demo1 to/); // the note's headline only
  const attempts = text.slice(text.indexOf("Last attempts"));
  assert.match(attempts, /refused.*manual__3.*is before the earliest restorable time \| window a to b/);
  assert.match(attempts, /dry run.*manual__2.*into test1\/demo1-restore-ui/);
  assert.doesNotMatch(text, /Could not show/);
});

test("the form offers the whole cluster or these tables; the last restore says which it restored", () => {
  const withTargets = entry({ restore_targets: [{ value: "test1/demo1-restore", label: "demo1-restore", verify: true }] });
  const form = render(React.createElement(parts.RestoreForm, { entry: withTargets, when: Date.parse("2026-11-20T00:00:00Z"),
    setWhen: () => {} }));
  assert.match(form, /whole cluster.*these tables/);
  const restored = (tables) => render(React.createElement(parts.CardBoundary, { showTso: false, entry: entry({
    last_restore: { run_id: "manual__1", state: "success", kind: "restore", restore_time: "2026-11-20T00:00:00.000Z",
      restore_ts: "1", target_cluster: "test1/demo1-restore", duration: "9s", verified: "passed", tables } }) }));
  assert.match(restored(["shop.orders", "crm.*"]), /What.*tables shop\.orders, crm\.\*/);
  assert.match(restored([]), /What.*the whole cluster/);
});

test("ages are counted to the browser's clock, so they grow while the page is open", () => {
  const shown = entry({ age_seconds: 5 }); // what the server said at its now
  const later = Date.parse("2026-11-21T00:42:00Z"); // 42 minutes after the guard published
  const text = render(React.createElement(parts.CardBoundary, { entry: shown, showTso: false, nowMs: later }));
  assert.match(text, /Published by .*the guard 42m ago — stale: is the guard DAG running\?/);
  assert.match(text, /Taken.*2026.*\(data as of its commitTs, 2d42m ago\)/); // taken 2026-11-19T00:00:00Z
  assert.match(render(React.createElement(parts.CardBoundary, { entry: shown, showTso: false })), /the guard 5s ago/);
  assert.equal(parts.secondsSince("not a time", later, 7), 7);
});

test("targets show their state, the form offers no scratch one, a maintenance pause says until when and why", () => {
  const targets = [
    { value: "test1/demo1-scratch", label: "demo1-scratch", scratch: true, state: "scratch", detail: "drills only" },
    { value: "test1/demo1-restore", label: "demo1-restore", scratch: false, state: "holds", detail: "holds 2 databases" },
    { value: "test1/demo1-restore-ui", label: "demo1-restore-ui", scratch: false, state: "empty", detail: "empty" }];
  const held = { until: "2026-11-21T02:00:00Z", at: "2026-11-21T00:00:00Z", run: "tidb_c/manual__9",
    reason: "upgrade TiKV", active: true };
  const shown = entry({ restore_targets: targets, preselected_target: "test1/demo1-restore-ui",
    dag_ids: { log_guard: "g", restore: "r", log_control: "c", snapshot: "s", retention: "t" },
    published: { run_id: "manual__9", dag_id: "c" }, next_runs: { snapshot: "2026-11-22T00:00:00Z" },
    paused_dags: ["retention"] });
  shown.status.rpo = { ...shown.status.rpo, log_backup: "demo1-log", log_phase: "Paused", maintenance_pause: held };
  shown.status.last_snapshot = { ...shown.status.last_snapshot, slot: "2026-11-18T22:00:00Z", size_bytes: 5 };
  shown.durations = { last_snapshot_size: "5 B" };
  const text = render(React.createElement(parts.CardBoundary, { entry: shown, showTso: false }));
  assert.match(text, /Published by the log-control run/);
  assert.match(text, /demo1-log \(Paused\)Maintenancepaused for maintenance until .*2026.* by manual__9: upgrade TiKV/);
  assert.match(text, /Restore targetsscratch: drills only test1\/demo1-scratchholds test1\/demo1-restore — holds 2/);
  assert.match(text, /Slot.*2026-11-18T22:00:00Z.*the time in its name\)Size5 BNext snapshot\[title=2026-11-22/);
  assert.match(text, /Runs at— \(its DAG is paused in Airflow: it does not run\)/);
  assert.doesNotMatch(text, /Could not show/);
  const form = render(React.createElement(parts.RestoreForm, { entry: shown, when: Date.parse(
    "2026-11-20T00:00:00Z"), setWhen: () => {} }));
  assert.doesNotMatch(form, /demo1-scratch/); // drills only
  assert.match(form, /choose a target…demo1-restore: holds 2 databasesdemo1-restore-ui: empty/);
  assert.deepEqual(parts.userTargets(shown).map((t) => t.value), ["test1/demo1-restore", "test1/demo1-restore-ui"]);
});

test("the checks show the failed rows first with what to do, when they were measured, and by which run", () => {
  const checks = { run_id: "manual__check", run_state: "failed", at: "2026-11-21T00:00:00Z", rows: [
    { name: "rbac backups", status: "FAILED", value: "delete not granted", action: "grant delete on backups" },
    { name: "storage probe", status: "OK", value: "written, read back, deleted", action: "" }] };
  const text = render(React.createElement(parts.CardBoundary, {
    entry: entry({ dag_ids: { log_guard: "g", restore: "r", check: "c" }, checks }), showTso: false,
    nowMs: Date.parse("2026-11-21T00:10:00Z") }));
  assert.match(text, /1 FAILED/);
  assert.match(text, /FAILED.*rbac backups: delete not granted.*What to do: grant delete on backups/s);
  assert.match(text, /\(10m ago\)/);
  assert.match(text, /manual__check/);
  const never = render(React.createElement(parts.CardBoundary, { entry: entry({}), showTso: false }));
  assert.match(never, /Checks.*not run yet/s);
});

test("a DAG run is triggered by one POST to Airflow's REST API, in one place; a refusal says what Airflow said", async () => {
  const calls = [];
  const answered = globalThis.fetch;
  try {
    globalThis.fetch = async (href, init) => {
      calls.push([href, init]);
      return { ok: true, status: 200, json: async () => ({ dag_run_id: "manual__7" }) };
    };
    assert.equal(await parts.triggerRun("tidb_test1 demo1_log_control", { action: "pause", pause_minutes: 30 }),
      "manual__7");
    assert.equal(calls[0][0], "http://airflow.test/api/v2/dags/tidb_test1%20demo1_log_control/dagRuns");
    assert.equal(calls[0][1].method, "POST");
    assert.equal(calls[0][1].credentials, "same-origin"); // the user's own session, never a token of the plugin's
    assert.deepEqual(JSON.parse(calls[0][1].body), { logical_date: null, conf: { action: "pause", pause_minutes: 30 } });
    globalThis.fetch = async () => ({ ok: false, status: 400,
      json: async () => ({ detail: "pause_minutes: 5 is less than the minimum of 10" }) });
    await assert.rejects(parts.triggerRun("d", {}), { message: '400: "pause_minutes: 5 is less than the minimum of 10"' });
    globalThis.fetch = async () => ({ ok: false, status: 502, json: async () => { throw new SyntaxError("html"); } });
    await assert.rejects(parts.triggerRun("d", {}), { message: "502: {}" }); // a proxy's page: the status at least
  } finally {
    globalThis.fetch = answered;
  }
  const { readFile } = await import("node:fs/promises");
  const bundle = await readFile(new URL("../../../plugins/tidb_pitr/ui/tidb_pitr.js", import.meta.url), "utf8");
  assert.equal(bundle.match(/method: "POST"/g).length, 1, "every trigger goes through triggerRun");
});
