"""Test session setup shared by every test folder.

Airflow reads its configuration when first imported, so its home, metadata DB (SQLite) and settings
are set here, before any test module imports it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="tidb-pitr-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "plugins")
# dag.test() runs triggers in its own loop, with no executor whose late "success" could race them (see
# CustomResourceTrigger.run): no minimum deferral here. The browser tests' Airflow keeps the default.
os.environ["AIRFLOW__TIDB_PITR__MIN_DEFERRAL_SECONDS"] = "0"

pytest_plugins = ["tidb_sandbox.testing"]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB of the session's own (`dag.test()` needs one): a copy of the one migrated
    once for every lane and stack (scripts/airflow_stack.py)."""
    from airflow_stack import copy_migrated_db

    copy_migrated_db(_AIRFLOW_HOME / "airflow.db")
    return _AIRFLOW_HOME
