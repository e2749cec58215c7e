"""include/rbac.yaml grants exactly what the product uses: every Kubernetes call made while the DAGs run
is allowed by the Role, and every verb the Role grants was used.

The sandbox's audit log records each API request. The DAGs run through `dag.test()` in this process,
so while this test runs only product code talks to the Kubernetes API.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from tidb_pitr.cr.model import BackupView
from tidb_pitr.hooks.kubernetes import TidbOperatorHook
from tidb_pitr.planning import recoverable_window

from .conftest import dag_id, load_dag

ROLE = Path(__file__).resolve().parents[3] / "include" / "rbac.yaml"
VERB_OF_CALL = {"get": "get", "list": "list", "watch": "watch", "create": "create", "patch": "patch",
                "update": "update", "delete": "delete", "deletecollection": "deletecollection"}


def granted() -> set[tuple[str, str, str]]:
    docs = [d for d in yaml.safe_load_all(ROLE.read_text()) if d]
    role = next(d for d in docs if d["kind"] == "Role")
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_role_has_nothing_on_secrets_and_no_wildcards():
    for group, resource, verb in granted():
        assert "*" not in (group, resource, verb)
        assert resource not in ("secrets", "pods/exec", "configmaps")


def _run(dag_id_: str, **kwargs: Any) -> None:
    run = load_dag(dag_id_).test(**kwargs)
    assert str(run.state) == "success", dag_id_


def test_every_call_is_granted_and_every_grant_is_used(sandbox, e2e_clusters, connections, monkeypatch):
    v1, v2 = e2e_clusters["rbac"], e2e_clusters["v2az"]
    sandbox.call("DELETE", "/audit")

    def flows(cluster: dict[str, Any]) -> None:
        # v2 has no CompactBackup controller, so no compaction DAG either.
        kinds = ("log_guard", "snapshot", "retention") + (("compaction",) if cluster["group"] == "pingcap.com" else ())
        for kind in kinds:
            _run(dag_id(cluster, kind))
        hook = TidbOperatorHook(connections["kubernetes"], api_group=cluster["group"])
        views = [BackupView.from_cr(o) for o in hook.list("backups", cluster["namespace"])]
        window = recoverable_window([v for v in views if v.mode == "snapshot"], [v for v in views if v.mode == "log"])
        target = f"{cluster['name']}-rb{random.randint(0, 10**6)}"
        sandbox.create_cluster(cluster["namespace"], target, api_group=cluster["group"])
        _run(dag_id(cluster, "restore"), run_conf={
            "restore_tso": str(random.randint(window.earliest_ts, window.latest_ts)), "target_cluster": target,
            "target_namespace": cluster["namespace"]})

    flows(v1)  # deferrable: list + watch
    monkeypatch.setenv("AIRFLOW__TIDB_PITR__DEFERRABLE", "False")
    flows(v2)  # poll mode: get
    _run(dag_id(e2e_clusters["rbac-poll"], "compaction"))  # v2 has none: poll a v1 CompactBackup too

    used = {(e["group"], e["resource"] + (f"/{e['subresource']}" if e["subresource"] else ""),
             VERB_OF_CALL[e["verb"]]) for e in sandbox.audit() if e["group"] != "" or e["resource"]}
    allowed = granted()
    assert used <= allowed, f"calls the Role does not allow: {sorted(used - allowed)}"
    # Both API groups serve the same code paths; compare per resource and verb.
    used_pairs = {(r, v) for _, r, v in used}
    unused = sorted({(r, v) for _, r, v in allowed} - used_pairs)
    assert not unused, f"granted but never used: {unused}"


@pytest.mark.parametrize("kind", ["ServiceAccount", "Role", "RoleBinding"])
def test_manifest_kinds(kind):
    docs = [d for d in yaml.safe_load_all(ROLE.read_text()) if d]
    assert any(d["kind"] == kind for d in docs)
