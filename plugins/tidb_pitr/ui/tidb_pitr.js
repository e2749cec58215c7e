// @ts-check
// The TiDB PITR page, an Airflow 3.3 React app plugin. Plain JavaScript over the host's global React (no build
// step), type-checked by tsc (checkJs) against api_types.d.ts, the API's response model. An ES module: Airflow's UI
// `import()`s this file, which imports its pure helpers (tidb_pitr_helpers.js) from beside it, and renders
// globalThis["TiDB PITR"] (the nav page) or
// globalThis["TiDB PITR cluster"] (a DAG's tab, with props.dagId). It shows what the clusters' log backup guards
// published (GET tidb-pitr/api/clusters) and triggers restores through Airflow's REST API with the user's own
// session (the UI's _token cookie goes with every same-origin request).
import {
  LOCAL, UNREADABLE, ZOOMS, headline, inWindow, liveAge, local, parseUserTime, placeLabels, readable, said,
  secondsSince, span, ticks, typedValue, utc,
} from "./tidb_pitr_helpers.js";

(function () {
  "use strict";
  const React = globalThis.React;
  const h = React.createElement;
  const { useState, useEffect, useCallback } = React;
  // The API's types (api_types.d.ts, generated from ui/model.py) and the host's, for tsc's check.
  /** @typedef {import("./api_types").ClusterEntry} ClusterEntry */
  /** @typedef {import("./api_types").ClustersResponse} ClustersResponse */
  /** @typedef {import("./api_types").Status} Status */
  /** @typedef {import("./api_types").Point} Point */
  /** @typedef {import("./tidb_pitr_helpers.js").Zoom} Zoom */
  /** @typedef {import("react").ReactNode} Node */
  /** @typedef {{entry: ClusterEntry, showTso: boolean, nowMs?: number, reload?: () => void}} CardProps */
  /** @typedef {import("./api_types").RestoreTarget} RestoreTarget */
  /** @typedef {import("./api_types").MaintenancePause} MaintenancePauseInfo */

  // Colours from Airflow's theme: Chakra UI v3's CSS variables, which the host sets for its light and dark mode
  // (airflow-core/src/airflow/ui/src/theme: semantic tokens bg, fg, border and per palette solid/fg/muted/emphasized,
  // also per task state: success, failed, running). The fallback is for a host without them (and the node tests).
  const token = (/** @type {string} */ name, /** @type {string} */ fallback) =>
    `var(--chakra-colors-${name}, ${fallback})`;
  /** @type {Record<string, string>} */
  const COLORS = {
    ok: token("success-solid", "#2f855a"), warn: token("orange-solid", "#b7791f"),
    critical: token("failed-solid", "#c53030"), starting: token("blue-solid", "#2b6cb0"),
    coverage: token("gray-emphasized", "#cbd5e0"), restorable: token("green-emphasized", "#68d391"),
    gap: token("red-emphasized", "#fc8181"), truncation: token("purple-fg", "#805ad5"), now: token("fg", "#1a202c"),
    policy: token("fg-muted", "#4a5568"), complete: token("success-solid", "#2f855a"),
    failed: token("failed-solid", "#c53030"), running: token("orange-solid", "#dd6b20"),
    foreign: token("blue-solid", "#3182ce"),
    text: token("fg", "#1a202c"), muted: token("fg-muted", "#4a5568"), line: token("border-emphasized", "#a0aec0"),
    border: token("border", "#e2e8f0"), panel: token("bg-panel", "white"), subtle: token("bg-subtle", "#f7fafc"),
    accent: token("blue-solid", "#2b6cb0"), link: token("blue-fg", "#2b6cb0"), onSolid: token("blue-contrast", "white"),
    disabled: token("bg-muted", "#e2e8f0"), disabledText: token("fg-subtle", "#718096"),
  };
  const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

  /** @param {string} path */
  function url(path) {
    return new URL(path, document.baseURI).href;
  }

  /**
   * Trigger a run of `dagId` with `conf` through Airflow's REST API, with the user's own session (the UI's cookie
   * goes with a same-origin request): the new run's id, or an Error with what Airflow answered (status and detail).
   * @param {string} dagId
   * @param {Record<string, unknown>} conf
   * @returns {Promise<string>}
   */
  async function triggerRun(dagId, conf) {
    const response = await fetch(url(`api/v2/dags/${encodeURIComponent(dagId)}/dagRuns`), {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ logical_date: null, conf }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`${response.status}: ${JSON.stringify(body.detail || body)}`);
    return String(body.dag_run_id);
  }

  /** @typedef {{runId?: string, tag?: string, error?: string}} Triggered what the last trigger gave: a run or why not */

  /**
   * A form's trigger of a DAG run: `busy` while Airflow answers, then `triggered` (the run and the form's `tag` for
   * it, or Airflow's refusal), and `trigger(conf, tag)` to start one.
   * @param {string | undefined} dagId
   * @returns {{busy: boolean, triggered: Triggered | null, trigger: (conf: Record<string, unknown>, tag: string) => Promise<void>}}
   */
  function useTrigger(dagId) {
    const [busy, setBusy] = useState(false);
    const [triggered, setTriggered] = useState(/** @type {Triggered | null} */ (null));
    const trigger = async (/** @type {Record<string, unknown>} */ conf, /** @type {string} */ tag) => {
      setBusy(true);
      setTriggered(null);
      try {
        setTriggered({ runId: await triggerRun(String(dagId), conf), tag });
      } catch (error) {
        setTriggered({ error: String((error && error.message) || error) });
      } finally {
        setBusy(false);
      }
    };
    return { busy, triggered, trigger };
  }

  // -- time and durations: the user's timezone on screen, UTC on hover --------------------------------------------
  /** @param {{at: Point | string | null | undefined, showTso?: boolean}} props */
  function Time(props) {
    const at = props.at; // {ts, time} or an ISO string
    const iso = typeof at === "string" ? at : at && at.time;
    const ts = at && typeof at === "object" && at.ts;
    const tso = props.showTso && ts ? h("code", { style: { marginLeft: 6, fontSize: 12, color: COLORS.muted } }, "TSO " + ts)
      : null;
    if (!iso) return h("span", null, "—", tso);
    const date = readable(iso);
    if (!date) {
      return h("span", { className: "tidb-pitr-time", "data-unreadable": "true", title: String(iso) }, UNREADABLE, tso);
    }
    return h("span", { title: utc(iso), className: "tidb-pitr-time" }, LOCAL.format(date), tso);
  }

  // One part of the page that cannot be drawn (a field of an unexpected shape) shows what it is and why, and the
  // rest of the page stays: a React error boundary, written as a class over the host's React.
  /** @extends {React.Component<{what: string, children?: Node}, {error: Error | null}>} */
  class Boundary extends React.Component {
    /** @param {{what: string, children?: Node}} props */
    constructor(props) {
      super(props);
      this.state = { error: null };
    }

    /** @param {Error} error */
    static getDerivedStateFromError(error) {
      return { error };
    }

    /** @param {unknown} error */
    componentDidCatch(error) {
      console.error(`TiDB PITR: could not show ${this.props.what}:`, error);
    }

    render() {
      if (!this.state.error) return this.props.children === undefined ? null : this.props.children;
      const message = String((this.state.error && this.state.error.message) || this.state.error);
      return h("div", { role: "alert", "data-testid": "tidb-pitr-unreadable",
        style: { color: COLORS.critical, fontSize: 13, margin: "4px 0" } },
        `Could not show ${this.props.what}: ${message}`);
    }
  }

  // -- small pieces ------------------------------------------------------------------------------------------------
  /** @param {{title: string, children?: Node}} props */
  function Section(props) {
    return h("section", { "aria-label": props.title, style: { marginTop: 14 } },
      h("h3", { style: { fontSize: 15, fontWeight: 600, margin: "0 0 6px" } }, props.title),
      h(Boundary, { what: `"${props.title}"` }, props.children));
  }

  /** @param {{label: string, children?: Node}} props */
  function Row(props) {
    return h("div", { style: { display: "flex", gap: 8, margin: "2px 0", lineHeight: 1.5 } },
      h("span", { style: { minWidth: 130, flexShrink: 0, color: COLORS.muted } }, props.label), h("span", null, props.children));
  }

  /** @param {{level?: string | null, color: string, children?: Node}} props */
  function Badge(props) {
    return h("span", {
      className: "tidb-pitr-badge", "data-level": props.level,
      style: { background: props.color, color: COLORS.onSolid, borderRadius: 4, padding: "1px 7px", fontSize: 13,
        fontWeight: 600 },
    }, props.children);
  }

  // -- the timeline ------------------------------------------------------------------------------------------------
  const W = 1000, PAD = 10, BAND_Y = 64, BAND_H = 26, MARK_Y = 42, AXIS_Y = 110, H = 138;
  // The baselines of the vertical lines' labels, above the snapshot marks: 17px apart, as an 11px label's box is
  // 16px high in Chromium (the browser test measures it), so that two rows never touch.
  const LABEL_ROWS = [13, 30];
  const HIDDEN_LINE_Y = 35; // where a line whose label has no room starts: below the labels, so it crosses none

  /** @param {{status: Status, showTso: boolean, onPick: (d: Date) => void, zoom: Zoom}} props */
  function Timeline(props) {
    const { status, showTso, onPick, zoom } = props;
    const line = status.timeline;
    const [from, to] = span(line, zoom);
    const pos = (/** @type {number} */ ms) => PAD + (W - 2 * PAD) * (ms - from) / (to - from);
    const x = (/** @type {string} */ iso) => pos(Math.min(to, Math.max(from, Date.parse(iso))));
    const inRange = (/** @type {string | null} */ iso) => iso && Date.parse(iso) >= from && Date.parse(iso) <= to;
    const overlaps = (/** @type {string} */ a, /** @type {string} */ b) => Date.parse(b) > from && Date.parse(a) < to;
    const parts = [];

    // Ticks at a round step giving about ten labels, in the user's timezone.
    const { ticks: at, daily } = ticks(from, to, new Date(from).getTimezoneOffset() * 60000);
    for (const t of at) {
      const tx = pos(t);
      parts.push(h("line", { key: "tick" + t, x1: tx, x2: tx, y1: AXIS_Y - 4, y2: AXIS_Y, stroke: COLORS.line }));
      if (tx > 30 && tx < W - 30) {
        const d = new Date(t);
        parts.push(h("text", { key: "label" + t, x: tx, y: AXIS_Y + 14, fontSize: 11, textAnchor: "middle",
          fill: COLORS.muted }, daily ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" })
          : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })));
      }
    }
    parts.push(h("line", { key: "axis", x1: PAD, x2: W - PAD, y1: AXIS_Y, y2: AXIS_Y, stroke: COLORS.line }));

    // Log coverage: grey where the log has data, green where a restore can reach.
    line.coverage.forEach((seg, i) => {
      if (!overlaps(seg.from.time, seg.to.time)) return;
      parts.push(h("rect", { key: "cov" + i, "data-kind": "coverage", x: x(seg.from.time), y: BAND_Y,
        width: Math.max(1, x(seg.to.time) - x(seg.from.time)), height: BAND_H, fill: COLORS.coverage },
        h("title", null, `log backup ${said(seg.log)} (${said(seg.state)}): ${utc(seg.from.time)} to ${utc(seg.to.time)}`)));
      if (seg.restorable_from && overlaps(seg.restorable_from.time, seg.to.time)) {
        parts.push(h("rect", { key: "rest" + i, "data-kind": "restorable", x: x(seg.restorable_from.time), y: BAND_Y,
          width: Math.max(1, x(seg.to.time) - x(seg.restorable_from.time)), height: BAND_H, fill: COLORS.restorable,
          style: { cursor: "crosshair" } },
          h("title", null, "restorable: click to restore to this time")));
      }
    });
    // Gaps over the coverage (at least a few pixels wide, so a short one is seen): nothing here can be restored.
    line.gaps.forEach((gap, i) => {
      if (!overlaps(gap.from.time, gap.to.time)) return;
      parts.push(h("rect", { key: "gap" + i, "data-kind": "gap", "aria-label": "gap: " + said(gap.cause),
        x: x(gap.from.time), y: BAND_Y - 4, width: Math.max(4, x(gap.to.time) - x(gap.from.time)),
        height: BAND_H + 8, fill: COLORS.gap, opacity: 0.9 },
        h("title", null, `gap ${utc(gap.from.time)} to ${utc(gap.to.time)}: ${said(gap.cause)}`)));
    });
    // Now, the log's start or truncation point, the policy start: each label in a row where it overlaps no other
    // label and no other line (placeLabels), the lesser one left as its line's tooltip when none has room.
    /** @type {{key: string, iso: string | null, color: string, text: string, dash: string | null}[]} */
    const lines = [{ key: "now", iso: line.now.time, color: COLORS.now, text: "now", dash: null }];
    if (line.truncation) {
      lines.push({ key: "truncation", iso: line.truncation.time, color: COLORS.truncation,
        text: line.truncation.truncated ? "log truncated to" : "log start", dash: "2 2" });
    }
    lines.push({ key: "policy_start", iso: line.policy_start.time, color: COLORS.policy,
      text: "policy start (now − retention)", dash: "4 3" });
    const shown = lines.filter((l) => inRange(l.iso));
    const spots = placeLabels(shown.map((l, rank) => ({ key: l.key, x: x(l.iso), text: l.text, rank })), W,
      LABEL_ROWS.length);
    shown.forEach((l, i) => {
      const lx = x(l.iso), spot = spots[i];
      const y = spot.row === null ? null : LABEL_ROWS[spot.row];
      parts.push(h("g", { key: l.key, "data-kind": l.key, "data-label-row": spot.row === null ? "hidden" : spot.row },
        h("line", { x1: lx, x2: lx, y1: y === null ? HIDDEN_LINE_Y : y - 10, y2: AXIS_Y, stroke: l.color,
          strokeWidth: 2, strokeDasharray: l.dash }),
        y === null ? h("line", { x1: lx, x2: lx, y1: HIDDEN_LINE_Y, y2: AXIS_Y, stroke: "transparent",
          strokeWidth: 8 }) : h("text", { x: spot.anchor === "start" ? lx + 4 : lx - 4, y, fontSize: 11,
          fill: l.color, textAnchor: spot.anchor }, l.text), h("title", null, `${l.text}: ${utc(l.iso)}`)));
    });

    // Snapshot marks: filled = Complete and managed here, hollow = not managed here, red cross = Failed.
    line.marks.filter((m) => inRange(m.time)).forEach((m) => {
      const mx = x(m.time), title = `snapshot ${m.name}: ${said(m.state)}${m.managed ? "" :
        " — not managed here (" + said(m.not_managed_because) + ")"}, ${utc(m.time)}` + (showTso && m.ts ? `, TSO ${m.ts}` : "");
      let shape;
      if (m.state === "Failed" || m.state === "Invalid") {
        shape = h("path", { d: `M${mx - 5},${MARK_Y - 5}L${mx + 5},${MARK_Y + 5}M${mx + 5},${MARK_Y - 5}L${mx - 5},${MARK_Y + 5}`,
          stroke: COLORS.failed, strokeWidth: 2.5 });
      } else if (m.state === "Complete") {
        shape = h("circle", { cx: mx, cy: MARK_Y, r: 6, fill: m.managed ? COLORS.complete : COLORS.panel,
          stroke: m.managed ? COLORS.complete : COLORS.foreign, strokeWidth: 2 });
      } else {
        shape = h("rect", { x: mx - 5, y: MARK_Y - 5, width: 10, height: 10, fill: COLORS.running });
      }
      parts.push(h("g", { key: "mark" + m.name, "data-kind": "snapshot", "data-state": m.state,
        "data-managed": String(m.managed), "aria-label": "snapshot " + m.name },
        h("line", { x1: mx, x2: mx, y1: MARK_Y, y2: BAND_Y, stroke: COLORS.line }), shape, h("title", null, title)));
    });

    /** @param {import("react").MouseEvent<SVGSVGElement>} event */
    const click = (event) => {
      const svg = event.currentTarget, box = svg.getBoundingClientRect();
      const vx = (event.clientX - box.left) * W / box.width;
      onPick(new Date(from + (vx - PAD) / (W - 2 * PAD) * (to - from)));
    };
    return h("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "timeline " + status.cluster,
      "data-testid": "tidb-pitr-timeline", "data-zoom": zoom, style: { maxWidth: W, display: "block",
        fontFamily: FONT }, onClick: click }, parts);
  }

  /** @param {{zoom: Zoom, setZoom: (zoom: Zoom) => void}} props */
  function ZoomButtons(props) {
    return h("div", { role: "group", "aria-label": "timeline range", style: { display: "flex", gap: 4, margin: "4px 0" } },
      /** @type {[Zoom, string][]} */ (Object.entries(ZOOMS)).map(([key, label]) => h("button", { key, type: "button", "aria-pressed": props.zoom === key,
        onClick: () => props.setZoom(key), style: { border: `1px solid ${COLORS.line}`, borderRadius: 4, padding: "1px 8px",
          fontSize: 12, background: props.zoom === key ? COLORS.accent : COLORS.panel,
          color: props.zoom === key ? COLORS.onSolid : COLORS.text } }, label)));
  }

  function Legend() {
    const item = (/** @type {Node} */ shape, /** @type {string} */ text) => h("span", { style: { display: "inline-flex", alignItems: "center", gap: 4,
      marginRight: 14 } }, h("svg", { width: 16, height: 14 }, shape), text);
    return h("div", { style: { fontSize: 12, color: COLORS.muted, marginTop: 2 } },
      item(h("rect", { x: 0, y: 3, width: 16, height: 8, fill: COLORS.restorable }), "restorable"),
      item(h("rect", { x: 0, y: 3, width: 16, height: 8, fill: COLORS.coverage }), "log, no snapshot before"),
      item(h("rect", { x: 0, y: 3, width: 16, height: 8, fill: COLORS.gap }), "gap"),
      item(h("circle", { cx: 8, cy: 7, r: 5, fill: COLORS.complete }), "snapshot, managed here"),
      item(h("circle", { cx: 8, cy: 7, r: 5, fill: COLORS.panel, stroke: COLORS.foreign, strokeWidth: 2 }),
        "snapshot, not managed here"),
      item(h("path", { d: "M3,2L13,12M13,2L3,12", stroke: COLORS.failed, strokeWidth: 2.5 }), "failed snapshot"),
      item(h("rect", { x: 3, y: 2, width: 10, height: 10, fill: COLORS.running }), "running"),
      h("div", { style: { marginTop: 2 } }, "Click inside the green band to restore to that time; hover for details."));
  }

  // -- restore to here -----------------------------------------------------------------------------------------------
  /** @param {{entry: ClusterEntry, when: number, setWhen: (ms: number | null) => void, onRunEnded?: () => void}} props */
  function RestoreForm(props) {
    const { entry, when, setWhen, onRunEnded } = props;
    const targets = userTargets(entry);
    const [target, setTarget] = useState(entry.preselected_target || ""); // only one published as empty
    const [typed, setTyped] = useState(typedValue(when));
    const [verify, setVerify] = useState(/** @type {boolean | null} */ (null)); // null: the target's default (on where it can run)
    const [scope, setScope] = useState("whole"); // "whole": the whole cluster; "tables": only the filter's tables
    const [filter, setFilter] = useState(""); // BR table-filter rules, comma-separated
    const rules = scope === "tables" ? filter.split(",").map((r) => r.trim()).filter((r) => r) : [];
    const suggestions = (entry.status && entry.status.source_tables) || [];
    const dagId = entry.dag_ids.restore;
    const { busy, triggered: result, trigger: triggerWith } = useTrigger(dagId);
    useEffect(() => setTyped(typedValue(when)), [when]); // a new click on the timeline
    const parsed = parseUserTime(typed);
    const date = parsed.date || null;
    const problem = parsed.error || inWindow(entry.status && entry.status.window, date);
    const chosen = targets.find((t) => t.value === target);
    const canVerify = !!(chosen && chosen.verify);
    const verifying = canVerify && (verify === null ? true : verify);
    const trigger = (/** @type {boolean} */ dryRun) => date ? triggerWith({ restore_time: date.toISOString(),
      target_cluster: target, verify: verifying, dry_run: dryRun, tables: rules }, dryRun ? "dry run" : "restore")
      : undefined;
    const submit = (/** @type {import("react").FormEvent} */ event) => {
      event.preventDefault();
      trigger(false);
    };
    const field = { display: "flex", flexDirection: "column", gap: 3, fontSize: 13 };
    const input = { border: `1px solid ${COLORS.line}`, borderRadius: 4, padding: "4px 6px", fontSize: 14,
      background: COLORS.panel, color: COLORS.text };
    const blocked = busy || !!problem || !target || (scope === "tables" && !rules.length);
    const listId = `tables-${entry.id}`;
    const button = (/** @type {boolean} */ primary) => ({ ...input, fontWeight: 600, cursor: blocked ? "not-allowed" : "pointer",
      background: blocked ? COLORS.disabled : primary ? COLORS.accent : COLORS.panel,
      color: blocked ? COLORS.disabledText : primary ? COLORS.onSolid : COLORS.link });
    return h("form", { "aria-label": "Restore to here", onSubmit: submit,
      style: { border: `1px solid ${COLORS.line}`, borderRadius: 6, padding: 12, marginTop: 10,
        background: COLORS.subtle } },
      h("div", { style: { fontWeight: 600, marginBottom: 8 } }, `Restore ${entry.id} to a point in time`),
      h("div", { style: { display: "flex", gap: 16, flexWrap: "wrap", alignItems: "flex-end" } },
        h("label", { style: field }, "Restore to (with its timezone)",
          h("input", { type: "text", name: "restore_time", style: { ...input, width: 230 }, value: typed,
            placeholder: "2026-11-21T05:30:00Z", spellCheck: false, onChange: (e) => setTyped(e.target.value) })),
        h("fieldset", { style: { ...field, border: "none", padding: 0, margin: 0 } },
          h("legend", { style: { fontSize: 13, padding: 0 } }, "Restore"),
          ["whole", "tables"].map((value) => h("label", { key: value, style: { fontSize: 13 } },
            h("input", { type: "radio", name: "scope", value, checked: scope === value,
              onChange: () => setScope(value) }), value === "whole" ? " whole cluster" : " these tables"))),
        scope === "tables" ? h("label", { style: field, title: "BR table-filter rules: db.table, wildcards * ?, " +
          "'!' in front excludes; the target must not hold them and must run TiDB v8.5.5 or later" },
        "Tables (comma-separated)",
        h("input", { type: "text", name: "tables", list: listId, style: { ...input, width: 230 }, value: filter,
          placeholder: suggestions[0] || "shop.orders", spellCheck: false,
          onChange: (e) => setFilter(e.target.value) }),
        h("datalist", { id: listId }, suggestions.map((t) => h("option", { key: t, value: t })))) : null,
        h("label", { style: field }, "Target cluster",
          h("select", { name: "target_cluster", value: target, style: input,
            onChange: (/** @type {import("react").ChangeEvent<HTMLSelectElement>} */ e) => setTarget(e.target.value) },
            [h("option", { key: "", value: "" }, "choose a target…")].concat(targets.map((t) => h("option",
              { key: t.value, value: t.value }, `${t.label}: ${t.detail || t.state || "state unknown"}`))))),
        h("label", { style: { ...field, flexDirection: "row", alignItems: "center", color: canVerify ? undefined
          : COLORS.disabledText }, title: canVerify ? "compare every table with the source as of the restore time"
          : "verify needs sql_conn_id on the cluster and on this target (clusters.yaml)" },
        h("input", { type: "checkbox", name: "verify", checked: verifying, disabled: !canVerify,
          onChange: (e) => setVerify(e.target.checked) }), "Verify"),
        h("button", { type: "submit", disabled: blocked, style: button(true) }, busy ? "Triggering…" : "Trigger restore"),
        h("button", { type: "button", disabled: blocked, style: button(false), onClick: () => trigger(true) },
          "Dry run"),
        h("button", { type: "button", style: input, onClick: () => setWhen(null) }, "Close")),
      date ? h("div", { style: { fontSize: 13, marginTop: 6 } }, "That is ", h(Time, { at: date.toISOString() }),
        " in your time zone") : null,
      problem ? h("div", { role: "alert", style: { color: COLORS.critical, fontSize: 13, marginTop: 6 } },
        "Cannot restore: " + problem) : null,
      result && result.runId ? h(RunProgress, { key: result.runId, dagId, runId: result.runId,
        dryRun: result.tag === "dry run", onEnded: onRunEnded }) : null,
      result && result.error ? h("div", { role: "alert", style: { color: COLORS.critical, marginTop: 8 } },
        "Refused by Airflow: " + result.error) : null);
  }

  const TICK_MS = 5000; // how often the ages on the page move on
  const ENDED = ["success", "failed"];
  const POLL_MS = 3000;

  // A run just triggered from the page: its state and its tasks' while it runs, its note (the outcome) once it ends.
  /** @param {{dagId: string, runId: string, dryRun?: boolean, onEnded?: () => void, what?: string,
   *   order?: string[]}} props */
  function RunProgress(props) {
    const { dagId, runId, dryRun, onEnded, what } = props;
    const [run, setRun] = useState(/** @type {{state: string, note?: string | null} | null} */ (null));
    /** @type {{task_id: string, map_index: number, state: string | null}[]} */
    const noTasks = [];
    const [tasks, setTasks] = useState(noTasks);
    useEffect(() => {
      let stopped = false;
      const base = `api/v2/dags/${encodeURIComponent(dagId)}/dagRuns/${encodeURIComponent(runId)}`;
      const poll = async () => {
        try {
          const [r, t] = await Promise.all([fetch(url(base), { credentials: "same-origin" }),
            fetch(url(base + "/taskInstances"), { credentials: "same-origin" })]);
          const body = r.ok ? await r.json() : null;
          const list = t.ok ? (await t.json()).task_instances || [] : [];
          if (stopped) return;
          if (body) setRun(body);
          setTasks(list);
          if (body && ENDED.includes(body.state)) {
            if (onEnded) onEnded();
            return;
          }
        } catch (error) {
          console.error("TiDB PITR: could not read run " + runId, error);
        }
        if (!stopped) setTimeout(poll, POLL_MS);
      };
      poll();
      return () => { stopped = true; };
    }, [dagId, runId]);
    const state = run ? run.state : "queued";
    const ended = ENDED.includes(state);
    const order = props.order || ["plan", "proceed", "read_source_at_t", "wait_for_checkpoint",
      "wait_for_storage_checkpoint", "restore", "verify", "report"];
    const shown = tasks.filter((t) => order.includes(t.task_id) && t.map_index === -1)
      .sort((a, b) => order.indexOf(a.task_id) - order.indexOf(b.task_id));
    return h("div", { role: "status", "aria-label": "triggered run", "data-state": state, style: { marginTop: 8 } },
      what || (dryRun ? "Dry run " : "Restore "), h("a", { href: url(`dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`),
        style: { color: COLORS.link, textDecoration: "underline" } }, runId), ": ",
      h(Badge, { level: state, color: state === "success" ? COLORS.ok : state === "failed" ? COLORS.critical
        : COLORS.starting }, state),
      !ended && shown.length ? h("div", { style: { fontSize: 12, color: COLORS.muted, marginTop: 4 } },
        shown.map((t) => `${t.task_id} ${t.state || "waiting"}`).join(" · ")) : null,
      ended && run.note ? h("div", { "data-testid": "run-outcome", style: { marginTop: 4 } }, headline(run.note))
        : null);
  }

  /** @type {Record<string, string>} */
  const VERIFIED = { passed: "verified: every table equal to the source", "not verified": "NOT VERIFIED",
    failed: "FAILED: the target differs from the source", "not requested": "not verified (not asked)" };
  /** @type {Record<string, string>} */
  const KIND_COLORS = { "dry run": COLORS.starting, refused: COLORS.critical, running: COLORS.running,
    "stopped before the restore": COLORS.critical };

  /** @param {string} dagId @param {string} runId */
  function runLink(dagId, runId) {
    return h("a", { href: url(`dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`),
      style: { textDecoration: "underline" } }, runId);
  }

  /** @param {{entry: ClusterEntry, showTso: boolean}} props */
  function LastRestore(props) { // the last run that created a Restore CR and finished
    const { entry, showTso } = props;
    const last = entry.last_restore;
    if (!last) return "none yet: no run has created a Restore CR";
    return [
      h(Row, { key: "r", label: "Run" }, runLink(entry.dag_ids.restore, last.run_id)),
      h(Row, { key: "s", label: "Outcome" }, h(Badge, { level: last.state, color: last.state === "success" ? COLORS.ok
        : COLORS.critical }, last.state === "success" ? "restored" : "failed")),
      h(Row, { key: "t", label: "Restored to" }, h(Time, { at: { time: last.restore_time, ts: last.restore_ts },
        showTso })),
      h(Row, { key: "i", label: "Into" }, last.target_cluster || "—"),
      h(Row, { key: "w", label: "What" }, h("span", { "data-testid": "restored-tables" },
        last.tables && last.tables.length ? "tables " + last.tables.join(", ") : "the whole cluster")),
      h(Row, { key: "d", label: "Took" }, last.duration || "—"),
      h(Row, { key: "v", label: "Verified" }, h("span", { "data-verified": last.verified || "unknown" },
        VERIFIED[last.verified] || "—")),
      last.note ? h(Row, { key: "n", label: "Note" }, headline(last.note)) : null,
    ];
  }

  /** @param {{entry: ClusterEntry, showTso: boolean}} props */
  function LastAttempts(props) { // dry runs, refusals and runs still going, newest first
    const { entry, showTso } = props;
    const attempts = entry.last_attempts || [];
    if (!attempts.length) return "none";
    return h("ul", { "aria-label": "last attempts", style: { margin: 0, paddingLeft: 16 } },
      attempts.map((a) => h("li", { key: a.run_id, "data-kind": a.kind, style: { margin: "3px 0" } },
        h(Badge, { level: a.kind, color: KIND_COLORS[a.kind] || COLORS.policy }, a.kind), " ",
        runLink(entry.dag_ids.restore, a.run_id), " to ", h(Time, { at: { time: a.restore_time, ts: a.restore_ts },
          showTso }), a.target_cluster ? " into " + a.target_cluster : "",
        a.note ? h("div", { style: { fontSize: 12, color: COLORS.muted } }, headline(a.note)) : null)));
  }

  // -- restore targets and the log backup's maintenance controls ----------------------------------------------------
  /** @type {Record<string, string>} */
  const TARGET_COLORS = { empty: COLORS.ok, holds: COLORS.warn, restoring: COLORS.running, scratch: COLORS.policy,
    unknown: COLORS.policy };

  /** @param {ClusterEntry} entry */
  function userTargets(entry) { // the drill's scratch clusters are never offered for a user's restore
    return (entry.restore_targets || []).filter((t) => !t.scratch);
  }

  /** @param {{entry: ClusterEntry}} props */
  function Targets(props) { // each target's state as of the last publish
    const targets = props.entry.restore_targets || [];
    if (!targets.length) return "none listed (restore_targets in clusters.yaml)";
    return h("ul", { "aria-label": "restore targets", style: { margin: 0, paddingLeft: 16 } },
      targets.map((t) => h("li", { key: t.value, "data-target": t.value, "data-state": t.state,
        style: { margin: "3px 0" } }, h(Badge, { level: t.state, color: TARGET_COLORS[t.state] || COLORS.policy },
        t.state === "scratch" ? "scratch: drills only" : t.state), " ", t.value, t.detail && t.state !== "scratch"
        ? h("span", { style: { fontSize: 12, color: COLORS.muted } }, " — " + t.detail) : null)));
  }

  const CONTROL_ORDER = ["plan", "choose", "pause", "resume", "stop", "record"];

  // Pause for maintenance (bounded: the DAG's form and plan refuse more), resume or stop with the words typed,
  // through the cluster's log-control DAG; the run's progress and note below, the card reloaded when it ends.
  /** @param {{entry: ClusterEntry, onRunEnded?: () => void}} props */
  function LogControl(props) {
    const { entry, onRunEnded } = props;
    const dagId = entry.dag_ids.log_control;
    const [minutes, setMinutes] = useState("60");
    const [reason, setReason] = useState("");
    const [confirm, setConfirm] = useState("");
    const { busy, triggered: result, trigger: triggerWith } = useTrigger(dagId);
    if (!dagId) return null;
    const name = entry.name;
    const trigger = (/** @type {string} */ action) => triggerWith({ action, reason,
      confirm: action === "pause" ? "" : confirm, pause_minutes: action === "pause" ? Number(minutes) : 60 }, action);
    const input = { border: `1px solid ${COLORS.line}`, borderRadius: 4, padding: "3px 6px", fontSize: 13,
      background: COLORS.panel, color: COLORS.text };
    const typed = (/** @type {string} */ action) => confirm.trim() === `${action} ${name}'s log backup`;
    return h("div", { "aria-label": "log backup control", style: { marginTop: 8, fontSize: 13 } },
      h("div", { style: { display: "flex", gap: 8, flexWrap: "wrap", alignItems: "center" } },
        h("label", null, "Pause for ", h("input", { type: "number", name: "pause_minutes", min: 10, max: 1380,
          value: minutes, style: { ...input, width: 70 }, onChange: (e) => setMinutes(e.target.value) }), " min"),
        h("input", { type: "text", name: "reason", placeholder: "reason", value: reason, style: input,
          onChange: (e) => setReason(e.target.value) }),
        h("button", { type: "button", disabled: busy, style: input, onClick: () => trigger("pause") }, "Pause")),
      h("div", { style: { display: "flex", gap: 8, flexWrap: "wrap", alignItems: "center", marginTop: 4 } },
        h("input", { type: "text", name: "confirm", value: confirm, style: { ...input, width: 250 },
          placeholder: `type: resume ${name}'s log backup`, onChange: (e) => setConfirm(e.target.value) }),
        h("button", { type: "button", disabled: busy || !typed("resume"), style: input,
          onClick: () => trigger("resume") }, "Resume"),
        h("button", { type: "button", disabled: busy || !typed("stop"), style: { ...input, color: COLORS.critical },
          title: "final: a stopped log backup never runs again", onClick: () => trigger("stop") }, "Stop")),
      result && result.runId ? h(RunProgress, { key: result.runId, dagId, runId: result.runId, order: CONTROL_ORDER,
        what: `Log ${result.tag} `, onEnded: onRunEnded }) : null,
      result && result.error ? h("div", { role: "alert", style: { color: COLORS.critical, marginTop: 4 } },
        "Refused by Airflow: " + result.error) : null);
  }

  /** @param {{entry: ClusterEntry, held: MaintenancePauseInfo}} props */
  function MaintenancePause(props) { // a pause asked for by the log-control DAG: until when, by which run, why
    const { entry, held } = props;
    const runId = String(held.run || "").split("/").pop();
    return h("span", { "data-testid": "maintenance-pause", style: { color: held.active ? COLORS.warn : COLORS.muted } },
      held.active ? "paused for maintenance until " : "maintenance pause ended at ", h(Time, { at: held.until }),
      " by ", entry.dag_ids.log_control ? runLink(entry.dag_ids.log_control, runId) : runId,
      held.reason ? ": " + held.reason : "", held.active ? "" : " (the guard resumes it at its next run)");
  }

  // -- one cluster -----------------------------------------------------------------------------------------------------
  /** @param {CardProps} props */
  function ClusterCard(props) {
    const { entry, showTso, nowMs } = props;
    const [when, setWhen] = useState(/** @type {number | null} */ (null));
    const [zoom, setZoom] = useState(/** @type {Zoom} */ ("policy"));
    const status = entry.status;
    // Ages grow while the page is open: counted from the published times to the browser's clock.
    const age = secondsSince(status && status.generated_at, nowMs, entry.age_seconds);
    // The guard publishes every 10 minutes, and every DAG that changes what the card shows publishes at its end.
    const publisher = (entry.published && entry.published.dag_id) || entry.dag_ids.log_guard;
    const publisherKind = Object.keys(entry.dag_ids).find((k) => entry.dag_ids[k] === publisher) || "log_guard";
    const next = entry.next_runs || {};
    const paused = entry.paused_dags || [];
    const nextRun = (/** @type {string} */ kind) => paused.includes(kind) ? "— (its DAG is paused in Airflow: it does not run)"
      : h(Time, { at: next[kind] || null });
    const card = { border: `1px solid ${COLORS.border}`, borderRadius: 8, padding: 16, marginBottom: 18, fontFamily: FONT,
      fontSize: 14, background: COLORS.panel, color: COLORS.text };
    const header = h("div", { style: { display: "flex", justifyContent: "space-between", flexWrap: "wrap", gap: 8 } },
      h("h2", { style: { fontSize: 18, fontWeight: 700, margin: 0 } }, entry.id),
      h("span", { style: { fontSize: 13, color: age > 1800 ? COLORS.critical : COLORS.muted },
        "data-testid": "data-age" }, status ? ["Published by ",
          h("a", { href: url(`dags/${publisher}/runs/${encodeURIComponent(entry.published.run_id)}`),
            style: { textDecoration: "underline" } }, publisherKind === "log_guard" ? "the guard"
            : `the ${publisherKind.replace("_", "-")} run`),
          ` ${liveAge(age)} ago`, age > 1800 ? " — stale: is the guard DAG running?" : ""]
          : "Nothing published yet: run the guard DAG " + entry.dag_ids.log_guard));
    const unreadable = entry.status_error ? h("div", { role: "alert", style: { color: COLORS.critical, marginTop: 6 } },
      "Cannot show what the guard published: " + entry.status_error) : null;
    if (!status) return h("article", { style: card, "aria-label": "cluster " + entry.id }, header, unreadable);

    const win = status.window, rpo = status.rpo, last = status.last_snapshot, plan = status.retention_plan;
    const texts = entry.durations; // formatted by the API (tidb_pitr.units), as in the notes and logs
    return h("article", { style: card, "aria-label": "cluster " + entry.id, "data-cluster": entry.id }, header,
      h(Section, { title: "Recoverable window" },
        win.earliest.time ? [
          h(Row, { key: "e", label: "Earliest" }, h(Time, { at: win.earliest, showTso })),
          h(Row, { key: "l", label: "Latest" }, h(Time, { at: win.latest, showTso })),
          h(Row, { key: "s", label: "Span" }, texts.span || "—"),
        ] : h("div", { style: { color: COLORS.critical } }, "No recoverable window. " + win.notes.join("; ")),
        status.timeline.gaps.length ? h("ul", { "aria-label": "gaps", style: { margin: "6px 0 0 18px", padding: 0 } },
          status.timeline.gaps.map((g, i) => h("li", { key: i, style: { color: COLORS.critical } },
            h(Time, { at: g.from, showTso }), " to ", h(Time, { at: g.to, showTso }), ": ", g.cause)))
          : h("div", { style: { color: COLORS.muted, marginTop: 4 } }, "No gaps.")),
      h(Section, { title: "Timeline" },
        h(ZoomButtons, { zoom, setZoom }),
        h(Timeline, { status, showTso, zoom, onPick: (d) => setWhen(d.getTime()) }), h(Legend)),
      h("div", { style: { display: "flex", gap: 8, marginTop: 6 } },
        when ? null : h("button", { type: "button", onClick: () => setWhen(Date.parse(win.latest.time || status.generated_at)),
          style: { border: `1px solid ${COLORS.line}`, borderRadius: 4, padding: "3px 8px", background: COLORS.panel,
            color: COLORS.text } }, "Restore to a time…")),
      when ? h(RestoreForm, { entry, when, setWhen, onRunEnded: props.reload }) : null,
      h("div", { style: { display: "grid", gridTemplateColumns: "repeat(auto-fit, minmax(320px, 1fr))", gap: 12 } },
        h(Section, { title: "Log backup" },
          h(Row, { label: "Checkpoint lag" }, h(Badge, { level: rpo.level, color: COLORS[rpo.level] },
            rpo.lag_seconds === null ? rpo.level : said(texts.lag) + " · " + said(rpo.level)),
            h("span", { style: { color: COLORS.muted, marginLeft: 8, fontSize: 12 } },
              `warn ${said(texts.warn)}, critical ${said(texts.critical)}`)),
          h(Row, { label: "Checkpoint" }, h(Time, { at: rpo.checkpoint, showTso })),
          h(Row, { label: "Log backup" }, rpo.log_backup || "none running", rpo.log_phase ? ` (${rpo.log_phase})` : ""),
          rpo.maintenance_pause ? h(Row, { label: "Maintenance" }, h(MaintenancePause, { entry,
            held: rpo.maintenance_pause })) : null,
          h(LogControl, { entry, onRunEnded: props.reload }),
          rpo.cause ? h(Row, { label: "Why it lags" }, h("span", { style: { color: COLORS.critical } }, rpo.cause)) : null,
          h(Row, { label: "Log reaches back to" }, status.timeline.truncation ?
            [h(Time, { key: "t", at: status.timeline.truncation, showTso }),
              status.timeline.truncation.truncated ? " (truncated)" : " (its start)"] : "—")),
        h(Section, { title: "Last snapshot" }, last ? [
          h(Row, { key: "n", label: "Name" }, last.name, last.managed ? "" : " (not managed here)"),
          h(Row, { key: "s", label: "State" }, h(Badge, { color: last.state === "Complete" ? COLORS.ok :
            last.state === "Failed" ? COLORS.critical : COLORS.running }, last.state)),
          h(Row, { key: "a", label: "Taken" }, h(Time, { at: last.time }), " (data as of its commitTs, ",
            readable(last.time) && typeof nowMs === "number" ? liveAge(secondsSince(last.time, nowMs, null))
              : texts.last_snapshot_age || "—", " ago)"),
          h(Row, { key: "l", label: "Slot" }, last.slot ? [h(Time, { key: "t", at: last.slot }),
            " (the run it belongs to: the time in its name)"] : "— (not named by a snapshot run)"),
          h(Row, { key: "z", label: "Size" }, texts.last_snapshot_size || "—"),
        ] : "none", entry.dag_ids.snapshot ? h(Row, { label: "Next snapshot" }, nextRun("snapshot"))
          : null),
        h(Section, { title: plan.by === "backup_schedule" ? "Next BackupSchedule GC (dry run)" :
          "Next retention (dry run)" }, entry.dag_ids.retention ? h(Row, { label: "Runs at" },
          nextRun("retention")) : null, plan.held ? h("div", { style: { color: COLORS.warn } }, plan.held)
          : plan.refused ? h("div", { style: { color: COLORS.critical } }, plan.refused) : [
            h(Row, { key: "d", label: "Would delete" }, plan.delete.length ? h("ul", { style: { margin: 0,
              paddingLeft: 16 } }, plan.delete.map((d) => h("li", { key: d.name, title: d.commit_time ?
              "commitTs " + utc(d.commit_time) : "" }, d.name))) : "nothing"),
            h(Row, { key: "t", label: "Would truncate to" }, plan.truncate_until ?
              h(Time, { at: plan.truncate_until, showTso }) : "no truncate"),
            h(Row, { key: "b", label: "Base kept" }, plan.base ? plan.base.name : "—"),
            plan.by === "backup_schedule" ? h(Row, { key: "w", label: "Schedule" }, h("ul", { style: {
              margin: 0, paddingLeft: 16, color: plan.reasons.length > 1 ? COLORS.warn : undefined } },
              plan.reasons.map((r) => h("li", { key: r }, r)))) :
            !plan.delete.length && !plan.truncate_until && plan.reasons.length ?
              h(Row, { key: "w", label: "Why" }, plan.reasons[plan.reasons.length - 1]) : null,
          ]),
        h(Section, { title: "Restore targets" }, h(Targets, { entry })),
        h(Section, { title: "Last restore" }, h(LastRestore, { entry, showTso })),
        h(Section, { title: "Last attempts" }, h(LastAttempts, { entry, showTso })),
        h(Section, { title: "Last drill" }, !entry.dag_ids.drill ? "no drill configured" : entry.last_drill ? [
          h(Row, { key: "v", label: "Verdict" }, entry.last_drill.record.verdict),
          h(Row, { key: "s", label: "Summary" }, entry.last_drill.record.summary),
          h(Row, { key: "w", label: "Recorded" }, h(Time, { at: entry.last_drill.written })),
        ] : "none yet", entry.dag_ids.drill ? h(Row, { label: "Next drill" }, nextRun("drill"))
          : null),
        h(Section, { title: "Checks" }, h(CheckRows, { entry, nowMs }))));
  }

  /** @type {Record<string, string>} */
  const CHECK_COLORS = { OK: COLORS.ok, WARNING: COLORS.warn, FAILED: COLORS.critical };

  // The check DAG's newest rows (every assumption the DAGs make, verified read-only), the failed first, and their age.
  /** @param {{entry: ClusterEntry, nowMs?: number}} props */
  function CheckRows(props) {
    const { entry, nowMs } = props;
    const checks = entry.checks;
    if (!checks) return "not run yet: trigger the check DAG, or run python -m tidb_pitr check";
    const failed = checks.rows.filter((r) => r.status === "FAILED").length;
    const age = secondsSince(checks.at, nowMs, null);
    return h("div", null,
      h("div", { style: { fontSize: 13, color: failed ? COLORS.critical : COLORS.muted, marginBottom: 4 } },
        failed ? `${failed} FAILED` : "nothing FAILED", " · measured ", h(Time, { at: checks.at }),
        age !== null ? ` (${liveAge(age)} ago)` : "", " by ", runLink(entry.dag_ids.check, checks.run_id)),
      h("ul", { "aria-label": "check rows", style: { margin: 0, paddingLeft: 16 } },
        checks.rows.map((r, i) => h("li", { key: `${r.name}-${i}`, "data-check": r.name, "data-status": r.status,
          style: { margin: "3px 0" } }, h(Badge, { level: r.status, color: CHECK_COLORS[r.status] }, r.status), " ",
          h("strong", null, r.name), r.value ? ": " + r.value : "",
          r.action ? h("div", { style: { fontSize: 12, color: COLORS.muted } }, "What to do: " + r.action) : null))));
  }

  // -- the page ------------------------------------------------------------------------------------------------------
  /** @param {{dagId?: string} | undefined} props the host's: a DAG's tab passes its dagId */
  function TidbPitrPage(props) {
    const [data, setData] = useState(/** @type {ClustersResponse | null} */ (null));
    const [error, setError] = useState(/** @type {string | null} */ (null));
    const [showTso, setShowTso] = useState(false);
    const [nowMs, setNowMs] = useState(() => Date.now());
    useEffect(() => { // the clock the ages are counted to
      const tick = setInterval(() => setNowMs(Date.now()), TICK_MS);
      return () => clearInterval(tick);
    }, []);
    const load = useCallback(() => {
      fetch(url("tidb-pitr/api/clusters"), { credentials: "same-origin" })
        .then((r) => r.ok ? r.json() : r.text().then((t) => { throw new Error(`${r.status}: ${t}`); }))
        .then((d) => { setData(d); setError(null); }, (e) => setError(String(e.message || e)));
    }, []);
    useEffect(() => {
      load();
      const timer = setInterval(load, 60000);
      return () => clearInterval(timer);
    }, [load]);

    let clusters = data ? data.clusters : [];
    if (props && props.dagId) { // a DAG's tab: only the cluster that DAG belongs to
      clusters = clusters.filter((c) => Object.values(c.dag_ids).includes(props.dagId));
    }
    const page = { fontFamily: FONT, padding: 16, maxWidth: 1100, color: "inherit" };
    return h("div", { style: page, "data-testid": "tidb-pitr-page" },
      h("div", { style: { display: "flex", alignItems: "center", gap: 16, marginBottom: 12 } },
        h("h1", { style: { fontSize: 22, fontWeight: 700, margin: 0 } }, "TiDB PITR"),
        h("label", { style: { fontSize: 13 } }, h("input", { type: "checkbox", checked: showTso,
          onChange: (e) => setShowTso(e.target.checked), style: { marginRight: 4 } }), "Show TSOs"),
        h("button", { type: "button", onClick: load, style: { border: `1px solid ${COLORS.line}`, borderRadius: 4,
          padding: "2px 8px", fontSize: 13, background: COLORS.panel, color: COLORS.text } }, "Reload")),
      h("p", { style: { fontSize: 13, color: COLORS.muted, margin: "0 0 12px" } },
        "What each cluster's log backup guard published on its last run. Times in your time zone; hover for UTC."),
      error ? h("div", { role: "alert", style: { color: COLORS.critical } }, "Could not load: " + error) : null,
      !data && !error ? "Loading…" : null,
      data && !clusters.length ? h("div", null, props && props.dagId ? "This DAG is not a TiDB PITR DAG."
        : "No clusters configured (or none you may read).") : null,
      clusters.map((c) => h(CardBoundary, { key: c.id, entry: c, showTso, nowMs, reload: load })));
  }

  // Each cluster's card in its own boundary: a card that cannot be drawn says which cluster, the others stay.
  /** @param {CardProps} props */
  function CardBoundary(props) {
    const { entry } = props;
    return h(Boundary, { what: "the card of cluster " + (entry && entry.id) }, h(ClusterCard, props));
  }

  // The pure pieces, for the bundle's unit test under node (tests/pitr/unit/bundle_render.test.mjs).
  TidbPitrPage.parts = { utc, local, liveAge, readable, Time, Boundary, ClusterCard, CardBoundary, UNREADABLE,
    parseUserTime, headline, RestoreForm, LastRestore, LastAttempts, secondsSince, Targets, LogControl, userTargets,
    triggerRun };

  const host = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (globalThis)); // the loader's globals
  host["TiDB PITR"] = TidbPitrPage;
  host["TiDB PITR cluster"] = TidbPitrPage;
  host.AirflowPlugin = TidbPitrPage;
})();
