"""TidbOperatorHook against the sandbox: create and adopt, foreign CRs, patch, delete, both API groups."""

from __future__ import annotations

import pytest
from tidb_pitr.cr.api import LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY
from tidb_pitr.hooks.kubernetes import CrNotFound, ForeignResource, TidbOperatorHook

from ..conftest import s3_block, unique


def _body(name: str, cluster: str, labels: dict[str, str]) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"backupType": "full", "br": {"cluster": cluster},
                     "s3": {**s3_block()["s3"], "prefix": f"{cluster}/{name}"}}}


@pytest.mark.parametrize("group", ["pingcap.com", "br.pingcap.com"])
def test_create_then_adopt_then_refuse_foreign(connections, fresh_cluster, group):
    ns, cluster = fresh_cluster(api_group=group)
    hook = TidbOperatorHook(connections["kubernetes"], api_group=group)
    ours = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_RUN: "run-a"}
    name = unique("snap")
    created, was_created = hook.create_or_adopt("backups", _body(name, cluster, ours), ns, ours)
    assert was_created and created["metadata"]["name"] == name
    assert created["apiVersion"] == f"{group}/v1alpha1"
    adopted, was_created = hook.create_or_adopt("backups", _body(name, cluster, ours), ns, ours)
    assert not was_created and adopted["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(ForeignResource) as foreign:
        hook.create_or_adopt("backups", _body(name, cluster, ours), ns, {**ours, LABEL_RUN: "run-b"})
    assert "not ours to adopt" in str(foreign.value) and "tidb-pitr-airflow" in str(foreign.value)

    someone_else = unique("snap")
    hook.create_or_adopt("backups", _body(someone_else, cluster, {LABEL_MANAGED_BY: "backup-schedule-operator"}),
                         ns, {})
    with pytest.raises(ForeignResource) as other:
        hook.create_or_adopt("backups", _body(someone_else, cluster, ours), ns, ours)
    assert "backup-schedule-operator" in str(other.value)


def test_get_list_patch_delete_and_missing(connections, fresh_cluster):
    ns, cluster = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"])
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_RUN: "r1"}
    name = unique("snap")
    hook.create_or_adopt("backups", _body(name, cluster, labels), ns, labels)
    assert [o["metadata"]["name"] for o in hook.list("backups", ns, label_selector=f"{LABEL_RUN}=r1")] == [name]
    patched = hook.merge_patch("backups", name, ns, {"metadata": {"annotations": {"note": "kept"}}})
    assert patched["metadata"]["annotations"]["note"] == "kept"
    assert hook.delete("backups", name, ns) is True
    with pytest.raises(CrNotFound) as missing:
        hook.require("backups", "nope", ns)
    assert f"Backup {ns}/nope" in str(missing.value)
    assert hook.get("backups", "nope", ns) is None
    assert hook.delete("backups", "nope", ns) is False


def test_transient_errors_are_retried_for_reads(sandbox, connections, fresh_cluster):
    ns, _ = fresh_cluster()
    hook = TidbOperatorHook(connections["kubernetes"], max_attempts=30, retry_delay=0.001, max_retry_delay=0.01)
    sandbox.set_faults(api_error_rate=0.5, api_error_codes=[503])
    try:
        for _ in range(5):
            assert hook.list("backups", ns) == []
    finally:
        # clear_faults leaves the error codes as set; put back the sandbox's defaults for later tests.
        sandbox.clear_faults()
        sandbox.set_faults(api_error_codes=[500, 503])


def test_connection_test_lists_backups(connections):
    ok, message = TidbOperatorHook(connections["kubernetes"]).test_connection()
    assert ok, message
    assert message == "Listed backups.pingcap.com"
