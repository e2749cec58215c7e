// Renders every cluster card of a batch of API payloads with the page's bundle, for test_ui_property.py: reads
// {"payloads": [ClustersResponse, ...]} from the file named first, prints one JSON line per card: what a user would
// read, or what was thrown past the page's error boundaries. The restore form is rendered too, as a click opens it.
import { readFileSync } from "node:fs";
import process from "node:process";

import { React, load, render } from "./bundle_harness.mjs";

const parts = await load();
const { payloads } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const h = React.createElement;
payloads.forEach((payload, index) => {
  const nowMs = Date.parse(payload.now);
  payload.clusters.forEach((entry, card) => {
    const shown = { index, card, id: entry.id };
    try {
      const props = { entry, showTso: card % 2 === 0, nowMs: isNaN(nowMs) ? undefined : nowMs };
      shown.text = render(h(parts.CardBoundary, props));
      shown.form = render(h(parts.Boundary, { what: "the restore form" }, h(parts.RestoreForm, {
        entry, when: isNaN(nowMs) ? 0 : nowMs, setWhen: () => {} })));
    } catch (error) {
      shown.thrown = String((error && error.stack) || error);
    }
    process.stdout.write(JSON.stringify(shown) + "\n");
  });
});
