"""TidbOperatorHook: TiDB Operator's backup CRs over Airflow's Kubernetes connection, sync and async.

The sync hook runs on workers (create, adopt, patch, delete); the async one runs in the triggerer
(get, list, watch). Both take the API group from configuration, so one code path serves TiDB Operator
v1 (`pingcap.com`) and v2 (`br.pingcap.com`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.sdk import BaseHook
from kubernetes.client.exceptions import ApiException

from ..api import LABEL_MANAGED_BY, ApiGroup

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
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
    """Sync access to Backup/Restore/CompactBackup CRs through `KubernetesHook`'s custom object client."""

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    conn_type = "kubernetes"
    hook_name = "TiDB Operator (Kubernetes)"

    def __init__(self, kubernetes_conn_id: str = default_conn_name, *, api_group: ApiGroup | str = "pingcap.com",
                 api_retries: int = 5, retry_delay: float = 1.0) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api_group = api_group if isinstance(api_group, ApiGroup) else ApiGroup(api_group)
        self.api_retries = api_retries
        self.retry_delay = retry_delay

    @cached_property
    def kube(self) -> KubernetesHook:
        return KubernetesHook(conn_id=self.kubernetes_conn_id)

    @cached_property
    def api(self) -> Any:
        return self.kube.custom_object_client

    def _args(self, plural: str) -> tuple[str, str, str]:
        return self.api_group.group, self.api_group.version, plural

    def _retrying(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Idempotent calls retry transient answers (429, 5xx) with backoff; others raise at once."""
        for attempt in range(self.api_retries + 1):
            try:
                return call(*args, **kwargs)
            except ApiException as exc:
                if exc.status not in TRANSIENT_STATUS or attempt == self.api_retries:
                    raise
                self.log.warning("Kubernetes API answered %s; retrying (%d/%d)", exc.status, attempt + 1,
                                 self.api_retries)
                time.sleep(min(self.retry_delay * 2 ** attempt, 15.0))
        raise AssertionError("unreachable")

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, plural: str, name: str, namespace: str) -> dict[str, Any] | None:
        group, version, _ = self._args(plural)
        try:
            return self._retrying(self.api.get_namespaced_custom_object, group, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

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
        group, version, _ = self._args(plural)
        kwargs = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        result = self._retrying(self.api.list_namespaced_custom_object, group, version, namespace, plural, **kwargs)
        return result.get("items") or [], (result.get("metadata") or {}).get("resourceVersion", "")

    # -- writes ------------------------------------------------------------------------------------------
    def create_or_adopt(self, plural: str, body: dict[str, Any], namespace: str,
                        expected_labels: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """Create the CR; if its (deterministic) name exists, adopt it when it is ours for this run.

        Create is not retried on 409: a conflict means "it exists", which is answered by reading it.
        """
        group, version, _ = self._args(plural)
        body = {**body, "apiVersion": self.api_group.api_version, "kind": KINDS[plural]}
        name = body["metadata"]["name"]
        try:
            return self.api.create_namespaced_custom_object(group, version, namespace, plural, body), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = self.require(plural, name, namespace)
        check_ours(existing, expected_labels, describe(plural, name, namespace, group))
        self.log.info("Adopting %s, created earlier for this run", describe(plural, name, namespace, group))
        return existing, False

    def merge_patch(self, plural: str, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of spec or metadata (never a full update: that could clobber v1 status)."""
        group, version, _ = self._args(plural)
        try:
            return self._retrying(self.api.patch_namespaced_custom_object, group, version, namespace, plural, name,
                                  patch)
        except ApiException as exc:
            if exc.status == 404:
                raise CrNotFound(f"{describe(plural, name, namespace, group)} not found") from exc
            if exc.status == 409:  # a patch without resourceVersion only conflicts transiently
                time.sleep(self.retry_delay)
                return self.api.patch_namespaced_custom_object(group, version, namespace, plural, name, patch)
            raise

    def delete(self, plural: str, name: str, namespace: str) -> bool:
        """Delete the CR; False when it was already gone. Finalizers may keep it a while."""
        group, version, _ = self._args(plural)
        try:
            self._retrying(self.api.delete_namespaced_custom_object, group, version, namespace, plural, name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.list("backups", self.kube.get_namespace() or "default")
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

    async def watch_one(self, api_client: Any, plural: str, name: str, namespace: str, resource_version: str,
                        timeout_seconds: int) -> AsyncIterator[dict[str, Any]]:
        """Events for one CR from `resource_version`; ends when the server ends the watch."""
        from kubernetes_asyncio import watch

        stream = watch.Watch()
        try:
            async for event in stream.stream(
                    self.objects(api_client).list_namespaced_custom_object, self.api_group.group,
                    self.api_group.version, namespace, plural, field_selector=f"metadata.name={name}",
                    resource_version=resource_version, timeout_seconds=timeout_seconds,
                    allow_watch_bookmarks=True,
                    # The hook's client caps requests at 60 s unless told otherwise; a watch outlives that.
                    _request_timeout=timeout_seconds + 15):
                yield event
        finally:
            stream.stop()
            await stream.close()


