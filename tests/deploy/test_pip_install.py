"""`pip install '.[all]' -c constraints.txt` into a fresh virtualenv works as the README says: Airflow lists the
`tidb_pitr` plugin (from the installed package's entry point, not from plugins/), and the DAG file imports with
the example config and builds its DAGs.

Slow (a whole Airflow install, a few minutes with pip's cache warm), so it runs in the deploy lane with the stack
tests (marker `stack`). pip's cache is left on: a second run reuses the wheels the first one built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]

# What the DAG file builds for the example config: each DAG of each cluster, named tidb_<ns>_<name>_<kind>.
PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dag_ids)}))
"""


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=1500)
    output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{output}"
    return done.stdout


def test_the_package_installs_with_its_extras_and_airflow_finds_the_plugin_and_the_dags(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    home = tmp_path / "airflow"
    (home / "plugins").mkdir(parents=True)  # empty: the plugin must come from the installed package
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "TIDB_PITR"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),
               AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               TIDB_PITR_CONFIG=str(ROOT / "include" / "clusters.yaml"))
    # From a copy of what the package is built from: setuptools writes build/ and *.egg-info beside its sources,
    # and a build/ left from an older tree would put modules that are gone into the wheel.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "plugins", source / "plugins", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    # Not the checkout's working directory, so nothing is imported from plugins/ by accident. --no-compile: pip
    # would byte-compile every file of Airflow and its providers; Python compiles what the test imports anyway.
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", f"{source}[all]",
          "-c", str(ROOT / "constraints.txt")], env, tmp_path)

    listed = json.loads(_run([str(target / "bin" / "airflow"), "plugins", "--output", "json"], env, tmp_path))
    assert "tidb_pitr" in [plugin["name"] for plugin in listed]

    found = json.loads(_run([str(python), "-c", PARSE, str(ROOT / "dags")], env, tmp_path).splitlines()[-1])
    assert found["errors"] == {}
    assert {"tidb_test1_demo1_log_guard", "tidb_test1_demo1_restore", "tidb_test1_demo1_snapshot"} <= set(
        found["dag_ids"])
    # The extras are there: the SQL checks' and the webhook notifier's providers import.
    _run([str(python), "-c", "import airflow.providers.mysql.hooks.mysql, airflow.providers.http.notifications"],
         env, tmp_path)
