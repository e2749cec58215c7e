"""The restore DAG's trigger form offers the targets a user may restore into, chooses none of them for the user, and
says in its label which are scratch (never offered); its plan refuses an empty or scratch target by name, with the
targets allowed, before anything is read or made (the drill may use a scratch one)."""

from __future__ import annotations

import pytest
from tidb_pitr.config import ClusterConfig
from tidb_pitr.flows import restore
from tidb_pitr.flows.tasks.restore import RestoreRefused, _refuse_scratch, _target

CLUSTER = ClusterConfig.model_validate({
    "name": "demo1", "namespace": "test1", "api_group": "pingcap.com", "sql_conn_id": "src",
    "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "conn_id": "s3"},
    "restore_targets": [{"name": "demo1-scratch", "scratch": True, "sql_conn_id": "sc"}, "demo1-restore"],
    "drill": {"target": "demo1-scratch"}})


def test_the_form_lists_user_targets_only_chooses_none_and_says_which_are_scratch():
    params = restore.build(CLUSTER).params
    param = params.get_param("target_cluster")
    assert param.schema["enum"] == [None, "test1/demo1-restore"]
    assert param.value is None  # not the first listed: the demo (or a user) may have filled it
    assert param.schema["values_display"][None] == restore.CHOOSE_TARGET
    assert param.schema["title"] == "Target cluster (not demo1-scratch: scratch, drills only)"
    assert "Not listed: test1/demo1-scratch (scratch: the drill's" in param.description
    # Airflow takes the run as the form leaves it (no JSON-schema dump); plan refuses it, as below.
    params["restore_time"] = "2026-11-21T05:30:00Z"
    assert params.validate()["target_cluster"] is None


@pytest.mark.parametrize("left", [None, "", "  "])
def test_a_restore_with_no_target_is_refused_naming_the_field_and_the_allowed_targets(left):
    with pytest.raises(RestoreRefused) as refused:
        _target(CLUSTER, {"target_cluster": left})
    assert str(refused.value) == ("target_cluster is empty: choose the empty cluster to restore into; allowed: "
                                  "test1/demo1-restore (not test1/demo1-scratch: scratch, drills only)")


def test_with_no_targets_listed_the_form_takes_a_name_and_an_empty_one_is_refused_saying_what_to_give():
    free = CLUSTER.model_copy(update={"restore_targets": [], "drill": None})
    param = restore.build(free).params.get_param("target_cluster")
    assert param.value is None and "enum" not in param.schema and param.schema["title"] == "Target cluster"
    with pytest.raises(RestoreRefused, match=r"^target_cluster is empty: .*allowed: any empty TidbCluster other "
                                             r"than test1/demo1, as a name in namespace test1 or namespace/name$"):
        _target(free, {})


def test_a_user_restore_into_the_scratch_cluster_is_refused_naming_the_allowed_ones():
    with pytest.raises(RestoreRefused, match=r"target_cluster test1/demo1-scratch is a scratch cluster: drills only "
                                             r".*allowed: test1/demo1-restore"):
        _refuse_scratch(CLUSTER, {"target_cluster": "test1/demo1-scratch"})
    _refuse_scratch(CLUSTER, {"target_cluster": "test1/demo1-restore"})  # a user target passes
