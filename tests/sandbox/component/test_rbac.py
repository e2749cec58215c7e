"""RBAC as kube-apiserver answers it: the Role-bound token gets 403 with the apiserver's message for what
include/rbac.yaml does not grant, SelfSubjectAccessReview agrees with what the requests meet, a test can take a
verb away, and PD's clock can be put off the workers' (the TSO skew route)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tidb_sandbox.client import sql_params

from .conftest import VERSION, unique

ROLE_FILE = Path(__file__).resolve().parents[3] / "include" / "rbac.yaml"
SA_USER = "system:serviceaccount:airflow:tidb-pitr-airflow"


def role_rules() -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(ROLE_FILE.read_text()) if d]
    return next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "tidb-pitr-airflow")["rules"]


def client_for(sandbox: Any, context: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(sandbox.kubeconfig), context=context)


def kubeconfig_with_token(sandbox: Any, tmp_path: Path, token: str) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "s", "cluster": {"server": sandbox.url}}],
           "users": [{"name": "u", "user": {"token": token}}],
           "contexts": [{"name": "c", "context": {"cluster": "s", "user": "u"}}], "current-context": "c"}
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def role_api(sandbox: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(client_for(sandbox, "tidb-pitr-airflow"))


@pytest.fixture(scope="module")
def namespace(core: Any) -> str:
    name = unique("rbac")
    core.create_namespace({"metadata": {"name": name}})
    return name


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def test_a_verb_the_role_lacks_is_403_with_the_apiservers_message(role_api, namespace):
    assert role_api.list_namespaced_custom_object("pingcap.com", VERSION, namespace, "backups")["items"] == []
    with pytest.raises(ApiException) as denied:
        role_api.delete_namespaced_custom_object("pingcap.com", VERSION, namespace, "restores", "r1")
    body = _status(denied.value)
    assert denied.value.status == 403
    assert body["reason"] == "Forbidden" and body["code"] == 403 and body["kind"] == "Status"
    assert body["message"] == (
        f'restores.pingcap.com "r1" is forbidden: User "{SA_USER}" cannot delete resource "restores" in API group '
        f'"pingcap.com" in the namespace "{namespace}"')
    assert body["details"] == {"name": "r1", "group": "pingcap.com", "kind": "restores"}
    # A Role grants nothing at the cluster scope; the core group is named "".
    with pytest.raises(ApiException) as everywhere:
        role_api.list_cluster_custom_object("pingcap.com", VERSION, "backups")
    assert _status(everywhere.value)["message"] == (
        f'backups.pingcap.com is forbidden: User "{SA_USER}" cannot list resource "backups" in API group '
        '"pingcap.com" at the cluster scope')
    core = client.CoreV1Api(role_api.api_client)
    with pytest.raises(ApiException) as secrets:
        core.read_namespaced_secret("s3-secret", namespace)
    assert 'cannot get resource "secrets" in API group "" in the namespace' in _status(secrets.value)["message"]


def _review(api_client: client.ApiClient, namespace: str, verb: str, group: str, resource: str) -> bool:
    review = client.AuthorizationV1Api(api_client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                         "resource": resource}}})
    return bool(review.status.allowed)


@pytest.mark.parametrize("resource", ["backups", "restores", "secrets"])
def test_access_reviews_agree_with_the_requests(role_api, namespace, resource):
    group = "" if resource == "secrets" else "pingcap.com"
    api_client = role_api.api_client
    for verb in ("get", "list", "create", "patch", "delete"):
        path = f"/api/v1/namespaces/{namespace}/{resource}" if not group else \
            f"/apis/{group}/{VERSION}/namespaces/{namespace}/{resource}"
        method, suffix = {"get": ("GET", "/x"), "list": ("GET", ""), "create": ("POST", ""),
                          "patch": ("PATCH", "/x"), "delete": ("DELETE", "/x")}[verb]
        try:
            api_client.call_api(path + suffix, method, body={"metadata": {"name": "x"}}, auth_settings=["BearerToken"],
                                header_params={"Content-Type": "application/merge-patch+json" if verb == "patch"
                                               else "application/json"}, _preload_content=False)
            code = 200
        except ApiException as exc:
            code = exc.status
        granted = _review(api_client, namespace, verb, group, resource)
        assert granted == (code != 403), (verb, resource, code)
        expected = any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
                       for r in role_rules())
        assert granted == expected, (verb, resource)


def test_a_test_can_take_a_verb_away_and_the_admin_may_do_anything(sandbox, namespace, tmp_path):
    token = unique("no-delete")
    rules = [{**r, "verbs": [v for v in r["verbs"] if v != "delete"]} if "backups" in r["resources"] else r
             for r in role_rules()]
    sandbox.call("PUT", f"/rbac/{token}", {"rules": rules})
    try:
        api = client.CustomObjectsApi(config.new_client_from_config(
            config_file=str(kubeconfig_with_token(sandbox, tmp_path, token))))
        assert not _review(api.api_client, namespace, "delete", "pingcap.com", "backups")
        with pytest.raises(ApiException) as denied:
            api.delete_namespaced_custom_object("pingcap.com", VERSION, namespace, "backups", "b1")
        assert denied.value.status == 403
        assert 'cannot delete resource "backups"' in _status(denied.value)["message"]
        assert _review(api.api_client, namespace, "get", "pingcap.com", "backups")
    finally:
        sandbox.call("DELETE", f"/rbac/{token}")
    admin = client_for(sandbox, "tidb-sandbox")
    assert _review(admin, namespace, "delete", "", "secrets")
    with pytest.raises(ApiException) as missing:  # allowed, so the answer is the object's absence
        client.CustomObjectsApi(admin).delete_namespaced_custom_object("pingcap.com", VERSION, namespace,
                                                                       "backups", "b1")
    assert missing.value.status == 404


def test_pd_clock_skew_moves_tidb_current_tso(manual_sandbox):
    """On the manual clock, so the TSOs the skew carried ahead are behind us again once time is advanced past it
    (PD never hands out a smaller TSO: after the skew is undone they stand still until the clock catches up)."""
    env = manual_sandbox.env
    url = manual_sandbox.sql_url(env["TIDB_SANDBOX_NAMESPACE"], env["TIDB_SANDBOX_CLUSTER"])

    def skew_seen() -> float:
        with pymysql.connect(**sql_params(url), connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT TIDB_CURRENT_TSO()")
            tso = int(cur.fetchone()[0])
        return (tso >> 18) / 1000 - manual_sandbox.clock()["time"]

    assert abs(skew_seen()) < 1
    manual_sandbox.call("PUT", "/tso/skew", {"seconds": 120})
    try:
        assert 119 < skew_seen() < 121
    finally:
        manual_sandbox.call("PUT", "/tso/skew", {"seconds": 0})
    assert 119 < skew_seen() < 121  # not back in time
    manual_sandbox.advance(121)
    assert abs(skew_seen()) < 1
    with pytest.raises(AssertionError, match="seconds must be a number"):
        manual_sandbox.call("PUT", "/tso/skew", {"seconds": "2m"})
