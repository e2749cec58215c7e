"""The page's bundle under node: bundle_render.test.mjs (`node --test`) renders its time helpers and a cluster's
card with unreadable times and fields, and checks it shows a placeholder or names the part instead of throwing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TEST = Path(__file__).with_name("bundle_render.test.mjs")


def test_the_bundle_renders_unreadable_times_as_placeholders_under_node():
    node = shutil.which("node")
    assert node, "node is needed to test the page's bundle (Debian: apt-get install nodejs)"
    out = subprocess.run([node, "--test", str(TEST)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "# fail 0" in out.stdout and "# pass 10" in out.stdout, out.stdout
