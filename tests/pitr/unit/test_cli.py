"""`python -m tidb_pitr check`: what it says and exits with before it measures anything (bad arguments, a config
that does not load, a cluster it does not know). The measured rows are tested end to end (e2e/test_check.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from tidb_pitr.__main__ import UNKNOWN, main

CLUSTER = {"name": "demo1", "namespace": "test1", "api_group": "pingcap.com",
           "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "secret_name": "s",
                       "conn_id": "aws"}}


def _config(tmp_path: Path, *clusters: dict) -> str:
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": list(clusters)}))
    return str(path)


def test_an_unknown_cluster_is_refused_naming_the_ones_there_are(tmp_path, capsys):
    assert main(["check", "--cluster", "test1/nope", "--config", _config(tmp_path, CLUSTER)]) == UNKNOWN
    err = capsys.readouterr().err
    assert "--cluster 'test1/nope': no such cluster" in err and "allowed: test1/demo1" in err


def test_a_broken_config_is_refused_with_the_loaders_message(tmp_path, capsys):
    broken = {**CLUSTER, "retention": "1h"}
    assert main(["check", "--cluster", "test1/demo1", "--config", _config(tmp_path, broken)]) == UNKNOWN
    err = capsys.readouterr().err
    assert err.startswith("cannot read the config:") and "retention" in err


def test_a_negative_watch_is_refused(tmp_path, capsys):
    code = main(["check", "--cluster", "test1/demo1", "--config", _config(tmp_path, CLUSTER),
                 "--observe-seconds", "-1"])
    assert code == UNKNOWN and "--observe-seconds must be 0 or more" in capsys.readouterr().err


def test_the_module_runs_as_a_command():
    # As a worker has it: the package on the path (pip-installed, or Airflow's plugins folder).
    plugins = Path(__file__).resolve().parents[3] / "plugins"
    env = {**os.environ, "PYTHONPATH": str(plugins)}
    done = subprocess.run([sys.executable, "-m", "tidb_pitr", "check", "--help"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and "--cluster" in done.stdout and "--json" in done.stdout
