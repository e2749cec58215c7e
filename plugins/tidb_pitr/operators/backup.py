"""Snapshot backup: create the Backup CR (or adopt it on retry), wait for Complete, return what it made."""

from __future__ import annotations

from typing import Any

from ..api import BACKUPS, COMPONENT_SNAPSHOT, ApiGroup
from ..bodies import snapshot_backup
from ..model import BackupView
from ..tso import tso_to_dt
from .base import TidbBaseOperator
from .labels import adoption_labels, owned_labels


def snapshot_result(obj: dict[str, Any]) -> dict[str, Any]:
    view = BackupView.from_cr(obj)
    return {"name": view.name, "namespace": view.namespace, "commit_ts": view.commit_ts,
            "commit_time": tso_to_dt(view.commit_ts).isoformat() if view.commit_ts else None,
            "backup_path": view.backup_path, "backup_size": view.backup_size,
            "prefix": next(iter(view.storage.values()), {}).get("prefix") if view.storage else None}


class TidbSnapshotBackupOperator(TidbBaseOperator):
    """Take a snapshot backup of `cluster` into `storage` at `prefix`; returns commitTs, path and size."""

    template_fields = ("namespace", "backup_name", "cluster", "cluster_namespace", "prefix", "storage", "br")
    ui_color = "#d7f0ff"

    def __init__(self, *, backup_name: str, cluster: str, storage: dict[str, Any], prefix: str,
                 cluster_namespace: str | None = None, br: dict[str, Any] | None = None,
                 service_account: str | None = None, table_filter: list[str] | None = None,
                 clean_policy: str = "Delete", tool_image: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backup_name = backup_name
        self.cluster = cluster
        self.cluster_namespace = cluster_namespace
        self.storage = storage
        self.prefix = prefix
        self.br = br
        self.service_account = service_account
        self.table_filter = table_filter
        self.clean_policy = clean_policy
        self.tool_image = tool_image

    def execute(self, context: Any) -> dict[str, Any]:
        labels, annotations = owned_labels(context, cluster=self.cluster, component=COMPONENT_SNAPSHOT)
        body = snapshot_backup(
            ApiGroup(self.api_group), name=self.backup_name, namespace=self.namespace, cluster=self.cluster,
            cluster_namespace=self.cluster_namespace or self.namespace, storage=self.storage, prefix=self.prefix,
            labels=labels, annotations=annotations, br=self.br, service_account=self.service_account,
            table_filter=self.table_filter, clean_policy=self.clean_policy, tool_image=self.tool_image)
        obj, created = self.hook.create_or_adopt(BACKUPS, body, self.namespace, adoption_labels(labels))
        self.log.info("%s snapshot Backup %s/%s at prefix %s", "Created" if created else "Adopted",
                      self.namespace, self.backup_name, self.prefix)
        event = self.wait_for(context, plural=BACKUPS, name=self.backup_name, kind="terminal", current=obj)
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        result = snapshot_result(self.check_event(event)["cr"])
        self.log.info("Snapshot %s complete: commitTs %s, %s bytes at %s", result["name"], result["commit_ts"],
                      result["backup_size"], result["backup_path"])
        return result
