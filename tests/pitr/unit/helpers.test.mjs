// The TiDB PITR page's pure helpers (plugins/tidb_pitr/ui/tidb_pitr_helpers.js) under node: ages, the timeline's
// window and ticks, whether a picked time can be restored to, a note's headline. The time formatting and typed
// times are also rendered through the card in bundle_render.test.mjs. Run by test_ui_bundle.py (`node --test`).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  headline, inWindow, liveAge, local, readable, said, secondsSince, span, ticks, typedValue, utc,
} from "../../../plugins/tidb_pitr/ui/tidb_pitr_helpers.js";

const HOUR = 3600000, DAY = 24 * HOUR;

test("ages are said in at most two units, like tidb_pitr.units.format_duration", () => {
  const cases = [[0, "0s"], [0.4, "0s"], [45, "45s"], [90, "1m30s"], [3600, "1h"], [5400, "1h30m"],
    [3 * 86400 + 3 * 3600 + 59, "3d3h"], [-5, "0s"], [null, "—"], [undefined, "—"], [NaN, "—"]];
  for (const [seconds, text] of cases) assert.equal(liveAge(seconds), text, String(seconds));
});

test("a time no Date can hold is null, never an Invalid Date that throws on toISOString", () => {
  for (const bad of ["436562003524714497", "2026-13-45T99:00:00Z", "", null, 17, {}]) {
    assert.equal(readable(bad), null, String(bad));
  }
  assert.equal(readable("2026-11-21T05:30:00+08:00").toISOString(), "2026-11-20T21:30:00.000Z");
  assert.equal(utc(""), "");
  assert.equal(utc("2026-11-21T05:30:00.250Z"), "2026-11-21T05:30:00.250Z (UTC)");
  assert.equal(local(undefined), "—");
  assert.equal(typedValue(Date.parse("2026-11-21T05:30:00.999Z")), "2026-11-21T05:30:00Z");
});

test("ages count to the browser's clock, the server's figure when there is no clock or time", () => {
  const now = Date.parse("2026-11-21T01:00:00Z");
  assert.equal(secondsSince("2026-11-21T00:00:00Z", now, 5), 3600);
  assert.equal(secondsSince("2026-11-21T02:00:00Z", now, 5), 0); // a clock behind the server's: not negative
  assert.equal(secondsSince("2026-11-21T00:00:00Z", undefined, 5), 5);
  assert.equal(secondsSince(null, now, null), null);
});

test("the timeline spans the published range, or the last day or hour before now", () => {
  const at = (time) => ({ ts: "1", time });
  const line = { range: { from: at("2026-11-13T00:00:00Z"), to: at("2026-11-21T01:00:00Z") },
    now: at("2026-11-21T00:00:00Z"), coverage: [], gaps: [], marks: [] };
  const now = Date.parse("2026-11-21T00:00:00Z");
  assert.deepEqual(span(line, "policy"), [Date.parse("2026-11-13T00:00:00Z"), Date.parse("2026-11-21T01:00:00Z")]);
  assert.deepEqual(span(line, "day"), [now - DAY, now + HOUR]);
  assert.deepEqual(span(line, "hour"), [now - HOUR, now + 180000]);
  const instant = { from: at("2026-11-21T00:00:00Z"), to: at("2026-11-21T00:00:00Z") }; // one moment, or reversed
  assert.deepEqual(span({ ...line, range: instant }, "policy"), [now, now + 60000]);
  assert.deepEqual(span({ ...line, range: { from: line.range.to, to: line.range.from } }, "policy"),
    span(line, "policy"));
  assert.throws(() => span({ ...line, range: null }, "policy"), /the timeline has no range\.to/);
  assert.throws(() => span({ ...line, now: { ts: null, time: null } }, "day"), /the timeline has no timeline\.now/);
});

test("ticks fall on round steps in the user's timezone, about ten of them, dates when a step is a day", () => {
  const from = Date.parse("2026-11-13T00:00:00Z"), to = Date.parse("2026-11-21T01:00:00Z");
  const { ticks: days, daily } = ticks(from, to, 0);
  assert.ok(daily && days.length >= 4 && days.length <= 12, String(days.length));
  assert.ok(days.every((t) => t >= from && t < to && t % DAY === 0));
  const inTokyo = ticks(from, from + 3 * HOUR, -9 * HOUR); // UTC+9: getTimezoneOffset is -540 minutes
  assert.ok(!inTokyo.daily && inTokyo.ticks.every((t) => (t + 9 * HOUR) % (15 * 60000) === 0));
  for (const width of [60000, HOUR, DAY, 30 * DAY, 400 * DAY, 200 * 365 * DAY]) {
    const { ticks: at, daily: byDay } = ticks(from, from + width, 0);
    assert.ok(at.length <= 12 && (width < HOUR || at.length >= 4), `${at.length} ticks over ${width} ms`);
    assert.equal(byDay, width > 6 * DAY, String(width)); // twelve half days at most, then dates
  }
});

test("a picked time is refused outside the window, inside a gap, or with no window; allowed inside", () => {
  const at = (time) => ({ ts: "1", time });
  const window = { earliest: at("2026-11-14T00:00:00Z"), latest: at("2026-11-21T00:00:00Z"), notes: [],
    gaps: [{ from: at("2026-11-16T00:00:00Z"), to: at("2026-11-17T00:00:00Z"), cause: "log backup stopped" }] };
  assert.equal(inWindow(window, new Date("2026-11-20T00:00:00Z")), null);
  assert.match(inWindow(window, new Date("2026-11-13T00:00:00Z")), /^outside the recoverable window \(/);
  assert.equal(inWindow(window, new Date("2026-11-16T12:00:00Z")), "inside a gap: log backup stopped");
  assert.equal(inWindow({ ...window, earliest: at(null) }, new Date()), "there is no recoverable window");
  assert.equal(inWindow(null, new Date()), "there is no recoverable window");
});

test("a note's headline is its first paragraph after what the user typed", () => {
  assert.equal(headline("Refused: before the window | window a to b\n\ndetails"),
    "Refused: before the window | window a to b");
  assert.equal(headline("my words\n---\nDry run: restore x\n\nmore"), "Dry run: restore x");
  assert.equal(headline(null), "");
});

test("a published value inside a sentence is a dash where the API sent nothing", () => {
  assert.deepEqual([null, undefined, "", "x", 0, false].map(said), ["—", "—", "—", "x", "0", "false"]);
});
