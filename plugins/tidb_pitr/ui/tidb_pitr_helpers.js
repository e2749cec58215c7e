// @ts-check
// The TiDB PITR page's pure helpers: data in, data out, no React and no DOM. Times and TSOs as the page shows
// them, live ages, a typed time read as the restore DAG reads it, a run note's headline, and the timeline's window
// maths. An ES module: the page's bundle (tidb_pitr.js) imports it by a relative URL, so Airflow's loader, which
// `import()`s the bundle, fetches it from the same FastAPI app under the same auth; `node --test` imports it as is
// (tests/pitr/unit/helpers.test.mjs).

/** @typedef {import("./api_types").IsoTime} IsoTime */
/** @typedef {import("./api_types").Window} Window */
/** @typedef {import("./api_types").Timeline} Timeline */

// -- time and durations: the user's timezone on screen, UTC on hover --------------------------------------------
export const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  timeZoneName: "short",
});

// What a time the API sent but no Date can hold is shown as (the API sends such a time as null; this is for
// a payload from another version): the page shows it instead of throwing "Invalid time value".
export const UNREADABLE = "unreadable time";

/**
 * A Date, or null for a missing or unreadable time.
 * @param {unknown} iso
 * @returns {Date | null}
 */
export function readable(iso) {
  if (typeof iso !== "string" || !iso) return null;
  const date = new Date(iso);
  return isNaN(date.getTime()) ? null : date;
}

/**
 * The time in UTC to the second, for a hover title; "" for no time, a placeholder naming it for one unreadable.
 * @param {unknown} iso
 * @returns {string}
 */
export function utc(iso) {
  if (!iso) return "";
  const date = readable(iso);
  return date ? date.toISOString().replace(".000Z", "Z") + " (UTC)" : UNREADABLE + " (" + String(iso) + ")";
}

/**
 * The user's timezone; "—" for no time, a placeholder for one that cannot be read.
 * @param {unknown} iso
 * @returns {string}
 */
export function local(iso) {
  if (!iso) return "—";
  const date = readable(iso);
  return date ? LOCAL.format(date) : UNREADABLE;
}

/**
 * The one duration the API cannot say for the page: how old something published is, which grows while the page
 * is open. Written like tidb_pitr.units.format_duration (`2d3h`, `1h30m`, `45s`); every other duration arrives
 * formatted by the API (`entry.durations`).
 * @param {number | null | undefined} seconds
 * @returns {string}
 */
export function liveAge(seconds) {
  if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
  let s = Math.max(0, Math.round(seconds));
  /** @type {string[]} */
  const parts = [];
  for (const [unit, size] of /** @type {const} */ ([["d", 86400], ["h", 3600], ["m", 60], ["s", 1]])) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n && parts.length < 2) parts.push(n + unit);
  }
  return parts.length ? parts.join("") : "0s";
}

/**
 * Seconds from an ISO time to the browser's clock (`nowMs`, ticking on the page); `fallback` (the server's
 * figure) when the time cannot be read or no clock was passed (the bundle's node test).
 * @template F
 * @param {unknown} iso
 * @param {number | undefined} nowMs
 * @param {F} fallback
 * @returns {number | F}
 */
export function secondsSince(iso, nowMs, fallback) {
  const date = readable(iso);
  return date && typeof nowMs === "number" ? Math.max(0, (nowMs - date.getTime()) / 1000) : fallback;
}

// A time the user types, read as tidb_pitr.tso.parse_user_time reads it (the same words): ISO-8601 with seconds
// and a zone (Z, +08:00, +0800). A time without a zone is refused with what to add, never guessed.
const TYPED = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(:\d{2})?(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$/;
const EXAMPLE = "2026-11-21T05:30:00Z or 2026-11-21 13:30:00+08:00";

/**
 * A typed time as a Date, or what is wrong with it in the words the restore DAG's plan uses.
 * @param {unknown} text
 * @returns {{date: Date, error?: undefined} | {error: string, date?: undefined}}
 */
export function parseUserTime(text) {
  const value = String(text === null || text === undefined ? "" : text).trim();
  if (!value) return { error: `type a date and time with its timezone, e.g. ${EXAMPLE}` };
  const m = TYPED.exec(value);
  if (!m) return { error: `cannot read "${value}"; write a time with a timezone such as ${EXAMPLE}` };
  const time = m[2] + (m[3] || ":00");
  const lacks = !m[5] ? "no timezone" : !m[3] ? "no seconds" : null; // the example adds the seconds too
  if (lacks) return { error: `"${value}" has ${lacks}; write it as ${m[1]}T${time}Z or ${m[1]} ${time}+08:00` };
  let zone = m[5].toUpperCase();
  if (zone !== "Z" && !zone.includes(":")) zone = zone.slice(0, 3) + ":" + zone.slice(3);
  const date = new Date(`${m[1]}T${time}${m[4] || ""}${zone}`);
  const [year, month, day] = m[1].split("-").map(Number); // Date rolls 2026-02-30 over to March: refuse it
  const check = new Date(Date.UTC(year, month - 1, day));
  if (isNaN(date.getTime()) || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    return { error: `"${value}" is not a valid time` };
  }
  return { date };
}

/**
 * What the time field shows for a picked time: UTC, to the second, with its Z.
 * @param {number} ms
 * @returns {string}
 */
export function typedValue(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A run note's own line: after what the user typed (`typed\n---\nours`), its first paragraph (the headline
 * Airflow shows in the run's header; planning/notes.py writes it).
 * @param {unknown} note
 * @returns {string}
 */
export function headline(note) {
  if (typeof note !== "string" || !note) return "";
  const ours = note.includes("\n---\n") ? note.split("\n---\n").pop() || "" : note;
  return ours.split("\n\n")[0];
}

/**
 * A published value inside a sentence: "—" where the API sent null (a field the model lets be null), never "null".
 * @param {unknown} value
 * @returns {string}
 */
export function said(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

// -- the timeline's window maths ---------------------------------------------------------------------------------
export const ZOOMS = { policy: "retention period", day: "last 24 hours", hour: "last hour" };
/** @typedef {keyof typeof ZOOMS} Zoom */
const STEPS = [60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 4 * 86400,
  7 * 86400].map((s) => s * 1000);

/**
 * [from, to] in ms: the published range, or the last day / hour before now. Throws when the timeline lacks the
 * times it needs (the page's section boundary names the part).
 * @param {Timeline} line
 * @param {Zoom} zoom
 * @returns {[number, number]}
 */
export function span(line, zoom) {
  const now = Date.parse(need(line.now, "timeline.now"));
  const to = Date.parse(need(line.range && line.range.to, "range.to"));
  if (zoom === "day") return [now - 86400000, now + 3600000];
  if (zoom === "hour") return [now - 3600000, now + 180000];
  const from = Date.parse(need(line.range && line.range.from, "range.from"));
  // At least a minute wide and in order, so that positions (divided by the width) are numbers, never NaN.
  return to - from >= 60000 ? [from, to] : [Math.min(from, to), Math.max(from, to, Math.min(from, to) + 60000)];
}

/**
 * A point's time, or an error naming the field when it has none.
 * @param {{time?: IsoTime} | null | undefined} point
 * @param {string} field
 * @returns {string}
 */
function need(point, field) {
  if (!point || !point.time) throw new Error(`the timeline has no ${field}`);
  return point.time;
}

/**
 * The axis ticks from `from` to `to` (ms): a round step giving about ten labels, aligned to the user's timezone
 * (`offsetMs`: Date#getTimezoneOffset in ms); `daily` when labels are dates rather than times.
 * @param {number} from
 * @param {number} to
 * @param {number} offsetMs
 * @returns {{ticks: number[], daily: boolean}}
 */
export function ticks(from, to, offsetMs) {
  // Past the longest round step (a retention of months or years), whole days: still about ten labels, never
  // thousands of ticks to draw.
  const step = STEPS.find((s) => (to - from) / s <= 12) || Math.ceil((to - from) / 12 / 86400000) * 86400000;
  const out = [];
  for (let t = Math.ceil((from - offsetMs) / step) * step + offsetMs; t < to; t += step) out.push(t);
  return { ticks: out, daily: step >= 86400000 };
}

/**
 * Why a restore to `date` cannot go ahead, or null when it is inside the window and outside its gaps.
 * @param {Window | null | undefined} window
 * @param {Date | null} date
 * @returns {string | null}
 */
export function inWindow(window, date) {
  if (!window || !window.earliest || !window.latest || !window.earliest.time || !window.latest.time) {
    return "there is no recoverable window";
  }
  if (!date) return "no time";
  const t = date.getTime();
  if (t < Date.parse(window.earliest.time) || t > Date.parse(window.latest.time)) {
    return `outside the recoverable window (${local(window.earliest.time)} to ${local(window.latest.time)})`;
  }
  const gap = (window.gaps || []).find((g) => g.from && g.to && g.from.time && g.to.time
    && t > Date.parse(g.from.time) && t < Date.parse(g.to.time));
  return gap ? "inside a gap: " + gap.cause : null;
}

// -- the timeline's labels: never on top of each other -----------------------------------------------------------
// An 11px system-ui label averages under 6px a character; estimated a little wide, so a label measured short in one
// browser's font still clears its neighbour.
export const LABEL_CHAR_PX = 6.5;
const LABEL_OFFSET = 4; // between a line and its label
const LABEL_GAP = 6; // between two labels in a row
const LINE_CLEARANCE = 2; // between a label and another label's line: less than LABEL_OFFSET, so two lines at one
// time can both be labelled, one row above the other

/** @typedef {{key: string, x: number, text: string, rank: number}} TimelineLabel rank 0 is the most important */
/** @typedef {{key: string, row: number | null, anchor: "start" | "end", from: number, to: number}} PlacedLabel */

/**
 * Where each vertical line's label goes on the timeline (`width` wide, `rows` rows of labels above the band), so
 * that no label lies on another, nor across another label's line (a line runs down from its label's row, through
 * the rows below it). The labels are placed most important first: each in the highest row where it fits, to the
 * right of its line, or to the left where the right has no room. A label that fits nowhere gets `row: null`: the
 * bundle draws its line below the rows, with the text as its tooltip. The first label is always shown (it fits
 * unless it is wider than the timeline), so "now" is never the one hidden.
 * @param {TimelineLabel[]} labels
 * @param {number} width
 * @param {number} rows
 * @returns {PlacedLabel[]} in the order given
 */
export function placeLabels(labels, width, rows) {
  const order = labels.map((label, i) => ({ label, i })).sort((a, b) => a.label.rank - b.label.rank || a.i - b.i);
  /** @type {(PlacedLabel & {x: number})[]} */
  const placed = [];
  /** @type {PlacedLabel[]} */
  const out = new Array(labels.length);
  for (const { label, i } of order) {
    const textWidth = label.text.length * LABEL_CHAR_PX;
    const right = { anchor: /** @type {const} */ ("start"), from: label.x + LABEL_OFFSET,
      to: label.x + LABEL_OFFSET + textWidth };
    const left = { anchor: /** @type {const} */ ("end"), from: label.x - LABEL_OFFSET - textWidth,
      to: label.x - LABEL_OFFSET };
    const sides = [right, left].filter((side) => side.from >= 0 && side.to <= width);
    let spot = null;
    for (let row = 0; row < rows && !spot; row++) {
      spot = sides.find((side) => placed.every((other) => other.row === null || (
        (other.row !== row || side.to + LABEL_GAP <= other.from || other.to + LABEL_GAP <= side.from) // text on text
        && (other.row > row || !crosses(side, other.x)) // its text across a line from a row above (or this one)
        && (other.row < row || !crosses(other, label.x))))); // its line down across a text in a row below (or this)
      if (spot) out[i] = { key: label.key, row, anchor: spot.anchor, from: spot.from, to: spot.to };
    }
    if (!spot) {
      const side = right.to <= width ? right : left;
      out[i] = { key: label.key, row: null, anchor: side.anchor, from: side.from, to: side.to };
    }
    placed.push({ ...out[i], x: label.x });
  }
  return out;
}

/**
 * Whether a line at `x` runs through a label's text (or within LINE_CLEARANCE of it).
 * @param {{from: number, to: number}} text
 * @param {number} x
 * @returns {boolean}
 */
function crosses(text, x) {
  return x > text.from - LINE_CLEARANCE && x < text.to + LINE_CLEARANCE;
}
