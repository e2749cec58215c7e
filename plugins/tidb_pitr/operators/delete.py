"""Delete an expired snapshot: its Backup CR (whose cleanPolicy removes the data), or the prefix itself.

When the CR is gone already, or its cleanPolicy keeps data (Retain), the data under the snapshot's
prefix is deleted through the storage hook, in batches, tolerating objects already gone.
"""

from __future__ import annotations

from typing import Any

from ..api import BACKUPS
from ..model import BackupView
from .base import TidbBaseOperator, WaitFailed


class TidbDeleteSnapshotOperator(TidbBaseOperator):
    template_fields = ("namespace", "backup_name", "prefix")
    ui_color = "#f5d5d5"

    def __init__(self, *, backup_name: str | None, prefix: str | None = None, storage_provider: str | None = None,
                 storage_conn_id: str | None = None, bucket: str | None = None, dry_run: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not backup_name and not prefix:
            raise ValueError("give backup_name (the snapshot's Backup CR) or prefix (its data), or both")
        self.backup_name = backup_name
        self.prefix = prefix
        self.storage_provider = storage_provider
        self.storage_conn_id = storage_conn_id
        self.bucket = bucket
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        obj = self.hook.get(BACKUPS, self.backup_name, self.namespace) if self.backup_name else None
        result: dict[str, Any] = {"name": self.backup_name, "prefix": self.prefix, "dry_run": self.dry_run,
                                  "cr_deleted": False, "objects_deleted": 0, "bytes_deleted": 0}
        if obj is not None:
            view = BackupView.from_cr(obj)
            if view.mode != "snapshot":
                raise WaitFailed(f"{self.namespace}/{self.backup_name} is a {view.mode} backup, not a snapshot")
            result["clean_policy"] = view.clean_policy
            if self.dry_run:
                self.log.info("Dry run: would delete Backup %s/%s (cleanPolicy %s)", self.namespace,
                              self.backup_name, view.clean_policy)
            else:
                self.hook.delete(BACKUPS, view.name, self.namespace)
                self.log.info("Deleted Backup %s/%s; waiting for its finalizer (cleanPolicy %s)", self.namespace,
                              view.name, view.clean_policy)
                event = self.wait_for(context, plural=BACKUPS, name=view.name, kind="gone",
                                      method_name="execute_complete")
                self.check_event(event)
                result["cr_deleted"] = True
            if view.clean_policy == "Delete":
                return result
        return self._delete_prefix(result)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        self.check_event(event)
        result = {"name": self.backup_name, "prefix": self.prefix, "dry_run": False, "cr_deleted": True,
                  "objects_deleted": 0, "bytes_deleted": 0}
        cr = (event or {}).get("cr") or {}
        policy = BackupView.from_cr(cr).clean_policy if cr else None
        return result if policy == "Delete" else self._delete_prefix(result)

    def _delete_prefix(self, result: dict[str, Any]) -> dict[str, Any]:
        if not (self.prefix and self.storage_provider and self.bucket):
            self.log.info("No storage prefix configured for %s; nothing more to delete", self.backup_name)
            return result
        from ..hooks.storage import BackupStorageHook

        hook = BackupStorageHook(self.storage_provider, conn_id=self.storage_conn_id, bucket=self.bucket)
        deleted = hook.delete_prefix(self.prefix, dry_run=self.dry_run)
        self.log.info("%s %d objects (%d bytes) under %s", "Would delete" if self.dry_run else "Deleted",
                      deleted.keys, deleted.bytes, self.prefix)
        return {**result, "objects_deleted": deleted.keys, "bytes_deleted": deleted.bytes}
