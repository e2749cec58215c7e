"""The sandbox's command line against the running sandbox: rows as of a TSO, faults, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _cli(sandbox, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "tidb_sandbox", *args, "--url", sandbox.url],
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_rows_now_and_as_of_a_tso(sandbox):
    before = sandbox.tso()
    as_of = _cli(sandbox, "rows", "test1/demo1", "--as-of", str(before))
    assert as_of["tso"] == before and as_of["count"] == len(as_of["rows"]) > 0
    summary = _cli(sandbox, "rows", "test1/demo1", "--as-of", str(before), "--summary")
    assert "rows" not in summary and summary["digest"] == as_of["digest"]
    # History does not change: the same TSO gives the same rows later, while "now" moves on.
    assert _cli(sandbox, "rows", "test1/demo1", "--as-of", str(before), "--summary")["digest"] == as_of["digest"]
    assert _cli(sandbox, "rows", "test1/demo1", "--summary")["tso"] > before


def test_faults_and_settings_at_run_time(sandbox):
    shown = _cli(sandbox, "fault", "patch_conflicts=2", "fail_next_restore=boom")
    assert shown["patch_conflicts"] == 2 and shown["fail_next_restore"] == "boom"
    cleared = _cli(sandbox, "fault", "patch_conflicts=0", "fail_next_restore=")
    assert cleared["patch_conflicts"] == 0 and cleared["fail_next_restore"] is None
    bad = subprocess.run([sys.executable, "-m", "tidb_sandbox", "fault", "no_such_fault=1", "--url", sandbox.url],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown fault 'no_such_fault'" in bad.stderr
    config = _cli(sandbox, "config")
    assert config["checkpoint_interval"] == 0.3


def test_config_shows_the_sql_endpoints_and_sql_settings(sandbox):
    config = _cli(sandbox, "config")
    assert config["gc_life_time"] == 600.0 and "checkpoint_interval" in config
    assert config["sql"]["test1/demo1"].startswith("mysql://root:") and "test1/demo1-restore" in config["sql"]
    bad = subprocess.run([sys.executable, "-m", "tidb_sandbox", "config", "nope=1", "--url", sandbox.url],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown setting 'nope'" in bad.stderr
    assert "gc_life_time" in bad.stderr and "backup_duration" in bad.stderr


def _cli_in(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TIDB_SANDBOX_URL"}
    return subprocess.run([sys.executable, "-m", "tidb_sandbox", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_rows_finds_a_running_make_demo_sandbox(sandbox, tmp_path):
    missing = _cli_in(tmp_path, "rows", "test1/demo1", "--summary")
    assert missing.returncode != 0
    assert ".sandbox/sandbox.env" in missing.stderr and ".demo/sandbox/sandbox.env" in missing.stderr
    # A stale .sandbox/ (its sandbox gone) does not hide the demo's.
    (tmp_path / ".sandbox").mkdir()
    (tmp_path / ".sandbox" / "sandbox.env").write_text("TIDB_SANDBOX_URL=http://127.0.0.1:9\n")
    (tmp_path / ".demo" / "sandbox").mkdir(parents=True)
    (tmp_path / ".demo" / "sandbox" / "sandbox.env").write_text(f"TIDB_SANDBOX_URL={sandbox.url}\n")
    found = _cli_in(tmp_path, "rows", "test1/demo1", "--summary")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["count"] > 0
