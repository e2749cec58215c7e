"""Plan checks of a restore target and a dump's volume that need no cluster: the PVC a dump needs, and the warning
for a target reached as another user than root (a full restore replaces its accounts)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.config import ClusterConfig
from tidb_pitr.flows.tasks.restore import target_account_note
from tidb_pitr.planning.dump_volume import dump_volume_warning, quantity_bytes

UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


@given(size=st.integers(min_value=1, max_value=10**13), amount=st.integers(min_value=1, max_value=5000),
       unit=st.sampled_from(sorted(UNITS)))
def test_a_dump_warns_exactly_when_twice_its_size_exceeds_the_pvc(size: int, amount: int, unit: str):
    warning = dump_volume_warning("dump-1", size, f"{amount}{unit}")
    assert (warning is not None) == (2 * size > amount * UNITS[unit])
    if warning:
        assert warning.startswith("WARNING: dump dump-1 is ") and f"storage_size is {amount}{unit}" in warning


def test_an_unknown_size_never_warns_and_a_bad_quantity_names_the_field():
    assert dump_volume_warning("dump-1", None, "1Ki") is None
    with pytest.raises(ValueError, match=r"storage_size must be a Kubernetes quantity such as '10Gi'; got '10GB'"):
        quantity_bytes("10GB")


def _cluster(monkeypatch: pytest.MonkeyPatch, login: str) -> ClusterConfig:
    monkeypatch.setenv("AIRFLOW_CONN_TARGET_SQL", json.dumps(
        {"conn_type": "mysql", "host": "127.0.0.1", "port": 4000, "login": login, "password": "x"}))
    raw: dict[str, Any] = {"name": "demo1", "namespace": "test1", "api_group": "pingcap.com",
                           "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1",
                                       "conn_id": "s3"},
                           "restore_targets": [{"name": "scratch", "sql_conn_id": "target_sql"}]}
    return ClusterConfig.model_validate(raw)


def test_a_target_reached_as_another_user_than_root_is_warned_about_its_accounts(monkeypatch: pytest.MonkeyPatch):
    note = target_account_note(_cluster(monkeypatch, "app"), "test1", "scratch")
    assert note is not None and note.startswith("WARNING: target test1/scratch is reached through 'target_sql' as "
                                                "user 'app', not root: a full restore replaces the target's accounts")
    assert target_account_note(_cluster(monkeypatch, "root"), "test1", "scratch") is None


def test_a_drill_into_a_scratch_target_reached_as_another_user_is_refused_before_anything(
        monkeypatch: pytest.MonkeyPatch):
    from tidb_pitr.flows.tasks.drill import plan_drill
    from tidb_pitr.flows.tasks.restore import RestoreRefused

    def drill_cluster(login: str) -> ClusterConfig:
        raw = _cluster(monkeypatch, login).model_dump(mode="json", exclude_none=True)
        raw["restore_targets"][0]["scratch"] = True
        raw["sql_conn_id"] = "source_sql"
        raw["drill"] = {"target": "scratch"}
        return ClusterConfig.model_validate(raw)

    with pytest.raises(RestoreRefused, match=r"scratch target test1/scratch is read through 'target_sql' as user "
                                             r"'app': a full restore replaces every account of the target except "
                                             r"cloud_admin, root with the source's"):
        plan_drill(drill_cluster("app"), {}, run="r", run_hash="h")
    # root passes this check and goes on to read the source's GC (no source here: refused for that instead)
    with pytest.raises(RestoreRefused) as refused:
        plan_drill(drill_cluster("root"), {}, run="r", run_hash="h")
    assert "as user" not in str(refused.value)
