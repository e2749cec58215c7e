"""TidbOperatorHook: TiDB Operator's backup CRs over Airflow's Kubernetes connection, sync and async.

The sync hook runs on workers (create, adopt, patch, delete); the async one runs in the triggerer
(get, list, watch). Both take the API group from configuration, so one code path serves TiDB Operator
v1 (`pingcap.com`) and v2 (`br.pingcap.com`).

Every call of the sync hook retries transient failures (429, 5xx, cut connections) with backoff, within
a bound of attempts and time per call, so that an API hiccup never fails a task. A task whose own retry
would be unsafe (a create) gets this inner retry too: a create that may have reached the server is read
back and adopted by its labels, never sent blindly twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.sdk import BaseHook
from kubernetes.client.exceptions import ApiException

from ..cr.api import LABEL_MANAGED_BY, ApiGroup
from .retry import TRANSIENT_STATUS, Budget, RetryPolicy

if TYPE_CHECKING:
    from ..config import ClusterConfig

KINDS = {"backups": "Backup", "restores": "Restore", "compactbackups": "CompactBackup"}


class CrNotFound(LookupError):
    """The CR is not there; the message names it and its namespace."""


class ForeignResource(RuntimeError):
    """A CR with our deterministic name exists but was not made by this project for this run."""


def describe(plural: str, name: str, namespace: str, group: str) -> str:
    return f"{KINDS.get(plural, plural)} {namespace}/{name} ({plural}.{group})"


def check_ours(existing: dict[str, Any], expected_labels: dict[str, str], what: str) -> None:
    """Adopt only what this project made for this run: every expected label must match."""
    labels = (existing.get("metadata") or {}).get("labels") or {}
    mismatched = {k: labels.get(k) for k, v in expected_labels.items() if labels.get(k) != v}
    if mismatched:
        owner = labels.get(LABEL_MANAGED_BY) or "no app.kubernetes.io/managed-by label"
        raise ForeignResource(
            f"{what} already exists and is not ours to adopt (managed by: {owner}; labels that differ: "
            f"{mismatched}); delete or rename it, or choose another name")


class TidbOperatorHook(BaseHook):
    """Sync access to Backup/Restore/CompactBackup CRs (and, for planning, any custom object) through
    `KubernetesHook`'s client; every call retries transient failures within `RetryPolicy` bounds."""

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    conn_type = "kubernetes"
    hook_name = "TiDB Operator (Kubernetes)"

    def __init__(self, kubernetes_conn_id: str = default_conn_name, *, api_group: ApiGroup | str = "pingcap.com",
                 max_attempts: int = 10, retry_budget: float = 120.0, retry_delay: float = 0.5,
                 max_retry_delay: float = 10.0, max_retry_after: float = 30.0) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api_group = api_group if isinstance(api_group, ApiGroup) else ApiGroup(api_group)
        self.retry_policy = RetryPolicy(max_attempts=max_attempts, budget=retry_budget, base_delay=retry_delay,
                                        max_delay=max_retry_delay, max_retry_after=max_retry_after)

    @cached_property
    def kube(self) -> KubernetesHook:
        return KubernetesHook(conn_id=self.kubernetes_conn_id)

    @cached_property
    def api(self) -> Any:
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.rest import RESTClientObject

        api_client = self.kube.api_client
        # urllib3 on its own resends a GET or DELETE at once after a cut connection (3 times): that skips the
        # backoff and hides whether a DELETE reached the server. Every retry happens in this hook instead.
        # The configuration is the client's own copy, so nothing else sees the change.
        api_client.configuration.retries = False
        api_client.rest_client = RESTClientObject(api_client.configuration)
        return CustomObjectsApi(api_client=api_client)

    def _args(self, plural: str) -> tuple[str, str, str]:
        return self.api_group.group, self.api_group.version, plural

    def _budget(self, what: str) -> Budget:
        return Budget(self.retry_policy, what, self.log)

    @staticmethod
    def _call(budget: Budget, call: Callable[..., Any], *args: Any, _step: str = "", **kwargs: Any) -> Any:
        """Run one request, retrying it within `budget`; for requests that are safe to repeat."""
        for attempt in budget.attempts(step=_step):
            with attempt:
                return call(*args, **kwargs)
        raise AssertionError("unreachable: tenacity returns the result or raises")

    # -- reads -------------------------------------------------------------------------------------------
    def get_object(self, group: str, version: str, plural: str, name: str,
                   namespace: str) -> dict[str, Any] | None:
        """Any namespaced custom object (a TidbCluster, a v2 Cluster), or None when it is not there."""
        budget = self._budget(f"get {describe(plural, name, namespace, group)}")
        return self._get(budget, group, version, plural, name, namespace)

    def _get(self, budget: Budget, group: str, version: str, plural: str, name: str, namespace: str,
             step: str = "") -> dict[str, Any] | None:
        try:
            return self._call(budget, self.api.get_namespaced_custom_object, group, version, namespace, plural,
                              name, _step=step)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(self, group: str, version: str, plural: str, namespace: str, *,
                     label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        """Any namespaced custom objects, e.g. the TidbClusters of a namespace."""
        return self._list(group, version, plural, namespace, label_selector, field_selector)[0]

    def _list(self, group: str, version: str, plural: str, namespace: str, label_selector: str | None,
              field_selector: str | None) -> tuple[list[dict[str, Any]], str]:
        kwargs = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        budget = self._budget(f"list {plural}.{group} in {namespace}")
        result = self._call(budget, self.api.list_namespaced_custom_object, group, version, namespace, plural,
                            **kwargs)
        return result.get("items") or [], (result.get("metadata") or {}).get("resourceVersion", "")

    def get(self, plural: str, name: str, namespace: str) -> dict[str, Any] | None:
        return self.get_object(*self._args(plural)[:2], plural, name, namespace)

    def require(self, plural: str, name: str, namespace: str) -> dict[str, Any]:
        obj = self.get(plural, name, namespace)
        if obj is None:
            raise CrNotFound(f"{describe(plural, name, namespace, self.api_group.group)} not found")
        return obj

    def list(self, plural: str, namespace: str, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        return self.list_with_version(plural, namespace, label_selector=label_selector,
                                      field_selector=field_selector)[0]

    def list_with_version(self, plural: str, namespace: str, *, label_selector: str | None = None,
                          field_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        return self._list(*self._args(plural), namespace, label_selector, field_selector)

    # -- writes ------------------------------------------------------------------------------------------
    def create_or_adopt(self, plural: str, body: dict[str, Any], namespace: str,
                        expected_labels: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """Create the CR; if its (deterministic) name exists, adopt it when it is ours for this run.

        Returns (the CR, created). `created` is True when this call's create reached the server: answered
        201, or answered with an error that may have come after the write, after which the object turned up
        carrying `expected_labels`. It is False when the name was already taken by an earlier try of this run
        (a 409 with no uncertain attempt before it). Only used for logging by the operators.

        A create is never sent again blindly: after an error that may have been applied, the object is read
        back by name and adopted when `check_ours` passes (or ForeignResource raised); only when it is not
        there is the create sent again, all within one retry budget. A 409 means "the name exists", answered
        the same way. `expected_labels={}` adopts any object of that name.
        """
        group, version, _ = self._args(plural)
        body = {**body, "apiVersion": self.api_group.api_version, "kind": KINDS[plural]}
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("create_or_adopt needs metadata.name: an object with a generated name cannot be "
                             "found again after an error, so a retry could create it twice")
        what = describe(plural, name, namespace, group)
        budget = self._budget(f"create {what}")
        try:
            for attempt in budget.attempts():
                # After a fault that may have been applied, read back before sending the create again (outside
                # the attempt: an error of the read-back ends the call). A fault refused before it was sent or
                # handled (a 429, a refused connection) sends it again at once.
                if budget.fault is not None and budget.fault.maybe_applied:
                    existing = self._get(budget, group, version, plural, name, namespace, step="read back")
                    if existing is not None:
                        break
                with attempt:
                    return self.api.create_namespaced_custom_object(group, version, namespace, plural, body), True
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = self._get(budget, group, version, plural, name, namespace, step="read back")
            if existing is None:  # answered "exists" and then gone: someone else is replacing it; do not race them
                raise CrNotFound(f"{what} answered 409 AlreadyExists to the create, then was not found") from None
        check_ours(existing, expected_labels, what)
        if budget.maybe_applied:
            self.log.info("Adopting %s: ours for this run, most likely made by this create before its error", what)
        else:
            self.log.info("Adopting %s, created earlier for this run", what)
        return existing, budget.maybe_applied

    def merge_patch(self, plural: str, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of spec or metadata (never a full update: that could clobber v1 status).

        A merge patch is idempotent, so it is retried even after an error that came after the write. A patch
        without resourceVersion conflicts (409) only transiently, so a 409 is retried within the budget too.
        """
        group, version, _ = self._args(plural)
        what = describe(plural, name, namespace, group)
        budget = self._budget(f"patch {what}")
        try:
            for attempt in budget.attempts(TRANSIENT_STATUS | {409}):
                with attempt:
                    return self.api.patch_namespaced_custom_object(group, version, namespace, plural, name, patch)
        except ApiException as exc:
            if exc.status == 404:
                raise CrNotFound(f"{what} not found") from exc
            raise
        raise AssertionError("unreachable: tenacity returns the result or raises")

    def delete(self, plural: str, name: str, namespace: str) -> bool:
        """Delete the CR; False when it was already gone. Finalizers may keep it a while.

        A 404 after an attempt that may have reached the server means that attempt deleted it: True.
        """
        group, version, _ = self._args(plural)
        budget = self._budget(f"delete {describe(plural, name, namespace, group)}")
        try:
            self._call(budget, self.api.delete_namespaced_custom_object, group, version, namespace, plural, name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return budget.maybe_applied
            raise

    # -- what `check` asks: the server, the served schemas, and the identity's rights -------------------------
    def server_version(self) -> str:
        """The API server's gitVersion (GET /version): the connection answers, whoever the identity is."""
        from kubernetes.client import VersionApi

        info = self._call(self._budget("get the API server's version"), VersionApi(self.api.api_client).get_code)
        return str(info.git_version)

    def served_schemas(self, group: str, version: str) -> dict[str, Any] | None:
        """Kind -> its OpenAPI v3 schema as served (/openapi/v3/apis/<group>/<version>), None when the group
        version is not served. Readable by every authenticated identity (the `system:discovery` ClusterRole)."""
        budget = self._budget(f"get the OpenAPI document of {group}/{version}")
        try:
            doc = self._call(budget, self.api.api_client.call_api, f"/openapi/v3/apis/{group}/{version}", "GET",
                             response_types_map={200: "object"}, auth_settings=["BearerToken"],
                             _return_http_data_only=True)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        out = {}
        for schema in ((doc or {}).get("components") or {}).get("schemas", {}).values():
            for gvk in schema.get("x-kubernetes-group-version-kind") or []:
                if gvk.get("group") == group and gvk.get("version") == version:
                    out[gvk["kind"]] = schema
        return out

    def secret_keys(self, name: str, namespace: str) -> set[str] | None:
        """The names of a Secret's non-empty keys (never their values), None when it is not there."""
        from kubernetes.client import CoreV1Api

        try:
            secret = self._call(self._budget(f"get {describe('secrets', name, namespace, '')}"),
                                CoreV1Api(self.api.api_client).read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {key for key, value in ((secret.data or {}) | (secret.string_data or {})).items() if value}

    def may(self, verb: str, group: str, resource: str, namespace: str) -> bool:
        """A SelfSubjectAccessReview: may this connection's identity do `verb` on `resource` in `namespace`?"""
        from kubernetes.client import AuthorizationV1Api

        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                                "resource": resource}}}
        review = self._call(self._budget(f"review {verb} {resource}.{group}"),
                            AuthorizationV1Api(self.api.api_client).create_self_subject_access_review, body)
        return bool(review.status.allowed)

    def test_connection(self) -> tuple[bool, str]:
        try:
            group, version, plural = self._args("backups")
            # A short budget: the UI waits for the answer.
            policy = replace(self.retry_policy, max_attempts=min(3, self.retry_policy.max_attempts),
                             budget=min(10.0, self.retry_policy.budget))
            quick = Budget(policy, "list backups (connection test)", self.log)
            self._call(quick, self.api.list_namespaced_custom_object, group, version,
                       self.kube.get_namespace() or "default", plural)
            return True, f"Listed backups.{self.api_group.group}"
        except Exception as exc:  # the UI shows the message
            return False, str(exc)


class AsyncTidbOperatorHook:
    """Async access for triggers: get, list and watch, over `AsyncKubernetesHook` / `kubernetes_asyncio`.

    Configure the kubeconfig through the connection (`kube_config_path` or `kube_config` extras):
    `AsyncKubernetesHook` ignores a `config_file` argument (reference: airflow-anchors 3.1).
    """

    def __init__(self, kubernetes_conn_id: str = TidbOperatorHook.default_conn_name, *,
                 api_group: ApiGroup | str = "pingcap.com") -> None:
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api_group = api_group if isinstance(api_group, ApiGroup) else ApiGroup(api_group)
        self._hook = AsyncKubernetesHook(conn_id=kubernetes_conn_id)

    def connection(self) -> Any:
        """`async with hook.connection() as api:` gives a kubernetes_asyncio ApiClient."""
        return self._hook.get_conn()

    @staticmethod
    def objects(api_client: Any) -> Any:
        from kubernetes_asyncio import client as k8s

        return k8s.CustomObjectsApi(api_client)

    async def list_one(self, api_client: Any, plural: str, name: str, namespace: str) -> tuple[dict | None, str]:
        """The CR (or None) and the list's resourceVersion, the point a watch resumes from."""
        result = await self.objects(api_client).list_namespaced_custom_object(
            self.api_group.group, self.api_group.version, namespace, plural,
            field_selector=f"metadata.name={name}")
        items = result.get("items") or []
        return (items[0] if items else None), (result.get("metadata") or {}).get("resourceVersion", "")

    async def get(self, api_client: Any, plural: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The CR, or None when it is not there (404)."""
        from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

        try:
            return await self.objects(api_client).get_namespaced_custom_object(
                self.api_group.group, self.api_group.version, namespace, plural, name)
        except AsyncApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list_all(self, api_client: Any, plural: str, namespace: str) -> tuple[list[dict[str, Any]], str]:
        """Every CR of `plural` in the namespace, and the list's resourceVersion (for `watch`)."""
        result = await self.objects(api_client).list_namespaced_custom_object(
            self.api_group.group, self.api_group.version, namespace, plural)
        return list(result.get("items") or []), (result.get("metadata") or {}).get("resourceVersion", "")

    async def watch_one(self, api_client: Any, plural: str, name: str, namespace: str, resource_version: str,
                        timeout_seconds: int) -> AsyncIterator[dict[str, Any]]:
        """Events for one CR from `resource_version`; ends when the server ends the watch."""
        async for event in self.watch(api_client, plural, namespace, resource_version, timeout_seconds,
                                      field_selector=f"metadata.name={name}"):
            yield event

    async def watch(self, api_client: Any, plural: str, namespace: str, resource_version: str,
                    timeout_seconds: int, *, field_selector: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Events for the namespace's CRs of `plural` (or those `field_selector` picks) from `resource_version`;
        ends when the server ends the watch."""
        from kubernetes_asyncio import watch

        selector = {"field_selector": field_selector} if field_selector else {}
        stream = watch.Watch()
        try:
            async for event in stream.stream(
                    self.objects(api_client).list_namespaced_custom_object, self.api_group.group,
                    self.api_group.version, namespace, plural, resource_version=resource_version,
                    timeout_seconds=timeout_seconds, allow_watch_bookmarks=True,
                    # The hook's client caps requests at 60 s unless told otherwise; a watch outlives that.
                    _request_timeout=timeout_seconds + 15, **selector):
                yield event
        finally:
            stream.stop()
            await stream.close()


def hook_for(cluster: ClusterConfig) -> TidbOperatorHook:
    """The sync hook for one configured cluster: its connection and API group."""
    return TidbOperatorHook(cluster.kubernetes_conn_id, api_group=cluster.group())
