// The TiDB PITR page's pure helpers (plugins/tidb_pitr/ui/tidb_pitr_helpers.js) under node: ages, the timeline's
// window, ticks and labels, whether a picked time can be restored to, a note's headline. The time formatting and typed
// times are also rendered through the card in bundle_render.test.mjs. Run by test_ui_bundle.py (`node --test`).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  LABEL_CHAR_PX, headline, inWindow, liveAge, local, placeLabels, readable, said, secondsSince, span, ticks,
  typedValue, utc,
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

// -- the timeline's labels, over generated close times -------------------------------------------------------------
const WIDTH = 1000, ROWS = 2;
const TEXTS = { now: "now", truncation: "log start", truncated: "log truncated to",
  policy_start: "policy start (now − retention)" };

/** A small seeded generator (mulberry32), so a failing case is the same on every run and can be printed. */
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a user would see wrong: labels on each other (or closer than 6px), a label across a line (or within 2px of
 * it), a label off the timeline. */
function overlaps(labels, spots) {
  const problems = [];
  const seen = spots.map((spot, i) => ({ ...spot, x: labels[i].x })).filter((s) => s.row !== null);
  for (const a of seen) {
    if (a.from < 0 || a.to > WIDTH) problems.push(`${a.key} off the timeline`);
    if (a.to - a.from < labels.find((l) => l.key === a.key).text.length * LABEL_CHAR_PX) problems.push(`${a.key} squeezed`);
    for (const b of seen) {
      if (a === b) continue;
      if (a.row === b.row && a.from < b.to + 6 && b.from < a.to + 6) problems.push(`${a.key} on ${b.key}`);
      // b's line runs down from b's row: through a's text when a is in that row or below
      if (b.row <= a.row && b.x > a.from - 2 && b.x < a.to + 2) problems.push(`${b.key}'s line through ${a.key}`);
    }
  }
  return problems;
}

test("now and log start a moment apart: both labelled, one above the other, neither on the other", () => {
  for (const gap of [0, 1, 5, 20]) {
    const labels = [{ key: "now", x: 985, text: "now", rank: 0 },
      { key: "truncation", x: 985 - gap, text: "log start", rank: 1 }];
    const spots = placeLabels(labels, WIDTH, ROWS);
    assert.deepEqual(overlaps(labels, spots), [], `${gap}px apart`);
    assert.deepEqual(spots.map((s) => s.row), [0, 1], `${gap}px apart`);
    assert.deepEqual(spots.map((s) => s.key), ["now", "truncation"]);
  }
  const apart = placeLabels([{ key: "now", x: 900, text: "now", rank: 0 },
    { key: "policy_start", x: 100, text: TEXTS.policy_start, rank: 1 }], WIDTH, ROWS);
  assert.deepEqual(apart.map((s) => [s.row, s.anchor]), [[0, "start"], [0, "start"]]); // far apart: one row
});

test("generated close times: no label on another or across a line, now always shown, two in the middle both", () => {
  const random = generator(20261207);
  for (let n = 0; n < 3000; n++) {
    const keys = ["now", random() < 0.5 ? "truncation" : "truncated", "policy_start"].slice(0, 1 + Math.floor(random() * 3));
    const base = random() * WIDTH, spread = [0, 3, 30, 120][Math.floor(random() * 4)]; // same time, pixels, close
    const labels = keys.map((key, rank) => ({ key, text: TEXTS[key], rank,
      x: Math.min(WIDTH - 10, Math.max(10, base + (random() - 0.5) * 2 * spread)) }));
    const spots = placeLabels(labels, WIDTH, ROWS);
    const seenAs = JSON.stringify(labels);
    assert.deepEqual(overlaps(labels, spots), [], seenAs);
    assert.deepEqual(spots.map((s) => s.key), keys, seenAs);
    assert.notEqual(spots[0].row, null, "now hidden: " + seenAs);
    if (labels.length === 2 && labels.every((l) => l.x >= 220 && l.x <= WIDTH - 220)) {
      assert.ok(spots.every((s) => s.row !== null), "two labels, one hidden: " + seenAs);
    }
    // a hidden label is only hidden because every row and side was taken
    spots.forEach((spot, i) => {
      if (spot.row !== null) return;
      for (let row = 0; row < ROWS; row++) {
        for (const anchor of ["start", "end"]) {
          const w = labels[i].text.length * LABEL_CHAR_PX;
          const from = anchor === "start" ? labels[i].x + 4 : labels[i].x - 4 - w;
          const trial = spots.map((s, j) => j === i ? { ...s, row, anchor, from, to: from + w } : s);
          assert.notDeepEqual(overlaps(labels, trial), [], `${spot.key} hidden with room in row ${row}: ${seenAs}`);
        }
      }
    });
  }
});
