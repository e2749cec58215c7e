"""The restore DAG's trigger form offers the targets a user may restore into, never the drill's scratch cluster,
and its plan refuses a scratch target by name before anything is read or made (the drill may use it)."""

from __future__ import annotations

import pytest
from tidb_pitr.config import ClusterConfig
from tidb_pitr.flows import restore
from tidb_pitr.flows.tasks.restore import RestoreRefused, _refuse_scratch

CLUSTER = ClusterConfig.model_validate({
    "name": "demo1", "namespace": "test1", "api_group": "pingcap.com", "sql_conn_id": "src",
    "storage": {"provider": "s3", "bucket": "b", "root": "demo1", "region": "us-west-1", "conn_id": "s3"},
    "restore_targets": [{"name": "demo1-scratch", "scratch": True, "sql_conn_id": "sc"}, "demo1-restore"],
    "drill": {"target": "demo1-scratch"}})


def test_the_form_lists_user_targets_only_and_says_which_are_scratch():
    param = restore.build(CLUSTER).params.get_param("target_cluster")
    assert param.schema["enum"] == ["test1/demo1-restore"] and param.value == "test1/demo1-restore"
    assert "Not listed: test1/demo1-scratch (scratch: the drill's" in param.description
    assert "preselected without being checked" in param.description


def test_a_user_restore_into_the_scratch_cluster_is_refused_naming_the_allowed_ones():
    with pytest.raises(RestoreRefused, match=r"target_cluster test1/demo1-scratch is a scratch cluster: drills only "
                                             r".*allowed: test1/demo1-restore"):
        _refuse_scratch(CLUSTER, {"target_cluster": "test1/demo1-scratch"})
    _refuse_scratch(CLUSTER, {"target_cluster": "test1/demo1-restore"})  # a user target passes
