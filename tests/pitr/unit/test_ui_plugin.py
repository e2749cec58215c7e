"""The TiDB PITR page's registration: where it appears, what it loads, and that loading the plugin stays cheap."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tidb_pitr.plugin import BUNDLE_URL, URL_PREFIX, TidbPitrPlugin

BUNDLE = Path(__file__).resolve().parents[3] / "plugins" / "tidb_pitr" / "ui" / "tidb_pitr.js"


def test_the_page_is_in_the_nav_and_on_dag_pages_from_one_bundle():
    apps = {a["name"]: a for a in TidbPitrPlugin.react_apps}
    assert apps["TiDB PITR"]["destination"] == "nav" and apps["TiDB PITR cluster"]["destination"] == "dag"
    assert {a["bundle_url"] for a in apps.values()} == {BUNDLE_URL} and BUNDLE_URL.startswith(URL_PREFIX + "/")
    assert len({a["url_route"] for a in apps.values()}) == 2  # Airflow drops a react app whose route repeats
    (mounted,) = TidbPitrPlugin.fastapi_apps
    assert mounted["url_prefix"] == URL_PREFIX and not URL_PREFIX.startswith(("/api/v2", "/ui", "/auth"))
    text = BUNDLE.read_text()
    for name in apps:  # the host renders globalThis[<name>]
        assert f'host["{name}"] = TidbPitrPage' in text and "const host = /** @type" in text
    # An ES module over the host's React: it imports nothing but its helpers, by a URL relative to its own, which
    # the plugin's app serves beside it (tidb_pitr.ui.app.STATIC).
    assert "require(" not in text and re.findall(r'^import [^;]*? from "([^"]*)";$', text, re.M) == [
        "./tidb_pitr_helpers.js"] and BUNDLE.with_name("tidb_pitr_helpers.js").is_file()


def test_loading_the_plugin_imports_neither_fastapi_nor_the_app():
    """Nor the app's response model and payload builder: only the api-server needs them."""
    probe = ("import sys, tidb_pitr.plugin; "
             "print(sorted(m for m in ('fastapi', 'tidb_pitr.ui.app', 'tidb_pitr.ui.model', 'tidb_pitr.ui.payload') "
             "if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BUNDLE.parents[2]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_api_says_the_published_durations_the_way_the_notes_do():
    """The page formats only the ages that grow while it is open (of what was published, of the last snapshot, of
    the checks' rows);
    every other duration comes from the API, said by tidb_pitr.units.format_duration like the run notes and logs."""
    from tidb_pitr.ui.app import durations
    from tidb_pitr.units import format_bytes

    status = {"window": {"span_seconds": 90000.0}, "last_snapshot": {"age_seconds": 5400, "size_bytes": 3 << 30},
              "rpo": {"lag_seconds": 2.53, "warn_seconds": 600.0, "critical_seconds": 1800.0}}
    assert durations(status) == {"span": "1d1h", "lag": "2.5s", "warn": "10m", "critical": "30m",
                                 "last_snapshot_age": "1h30m", "last_snapshot_size": format_bytes(3 << 30)}
    assert set(durations(None).values()) == {None}
    bundle = BUNDLE.read_text(encoding="utf-8")
    helpers = BUNDLE.with_name("tidb_pitr_helpers.js").read_text(encoding="utf-8")
    assert "entry.durations" in bundle and bundle.count("liveAge(") == 3  # the three ages
    assert "export function liveAge(" in helpers


def test_the_page_takes_its_colours_from_airflow_s_theme():
    """Every colour in the bundle is one of the host theme's CSS variables (they follow light and dark mode); a
    literal colour is only a fallback inside token(...), for a host without them. A white card on Airflow's dark
    background was the bug this keeps out."""
    bundle = BUNDLE.read_text(encoding="utf-8")
    literal = re.compile(r'"(#[0-9a-fA-F]{3,8}|white|black)"|\b(rgb|hsl|oklch)\(')
    outside = [line.strip() for line in bundle.splitlines() if literal.search(line) and "token(" not in line]
    assert outside == []
    tokens = re.findall(r'token\("([a-z]+(?:-[a-z]+)*)", "([^"]+)"\)', bundle)
    assert len(tokens) > 10 and {"fg", "fg-muted", "bg-panel", "border"} <= {name for name, _ in tokens}
