"""The page's bundle under node (`node --test`): bundle_render.test.mjs renders its time helpers and a cluster's card
with unreadable times and fields, and checks it shows a placeholder or names the part instead of throwing;
helpers.test.mjs tests the pure helpers module (ages, the timeline's window and ticks, a note's headline)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

TESTS = sorted(Path(__file__).parent.glob("*.test.mjs"))


def test_the_bundle_and_its_helpers_pass_their_node_tests():
    node = shutil.which("node")
    assert node, "node is needed to test the page's bundle (Debian: apt-get install nodejs)"
    out = subprocess.run([node, "--test", *map(str, TESTS)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    declared = sum(len(re.findall(r"^test\(", t.read_text(encoding="utf-8"), re.M)) for t in TESTS)
    assert declared >= 16 and "# fail 0" in out.stdout and f"# pass {declared}\n" in out.stdout, out.stdout
