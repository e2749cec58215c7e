"""The page's types (plugins/tidb_pitr/ui/api_types.d.ts), which tsc checks the bundle against, are the API's response
model (ui/model.py) as scripts/ui_types.py writes them: a model changed without regenerating them fails here."""

from __future__ import annotations

import ui_types


def test_the_checked_in_types_are_the_response_model_s():
    assert ui_types.TARGET.read_text(encoding="utf-8") == ui_types.render(ui_types.schema()), (
        "api_types.d.ts is stale: run `.venv/bin/python scripts/ui_types.py` after changing ui/model.py")


def test_the_types_say_what_the_page_reads_and_let_published_keys_through():
    text = ui_types.render(ui_types.schema())
    assert "export interface ClustersResponse {\n  now: string | null;\n  clusters: ClusterEntry[];\n}" in text
    assert '  kind: "restore" | "dry run" | "refused" | "running" | "stopped before the restore";' in text
    assert "  from: Point | null;" in text and "from_" not in text  # by alias, as the API dumps it
    status = text[text.index("export interface Status {"):]
    assert "  [key: string]: unknown;" in status.split("}")[0]  # extra="allow": other keys pass through
