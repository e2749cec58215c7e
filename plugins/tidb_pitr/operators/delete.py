"""Delete an expired snapshot: its Backup CR (whose cleanPolicy removes the data), or the prefix itself.

Only what this project made: the CR is read again here and must carry this cluster's ownership labels and
live at `<root>/snapshot-<14 digits>` of the configured storage, or nothing is deleted. The storage prefix
deleted is always that verified one (or, for a folder whose CR is gone, one the storage hook itself checks
against the same rule): a location is never taken from a CR someone else made.
"""

from __future__ import annotations

from typing import Any

from ..cr.api import BACKUPS
from ..cr.model import BackupView
from ..cr.ownership import snapshot_problem
from .base import TidbBaseOperator, WaitFailed


class NotManagedHere(WaitFailed):
    """The CR is not this project's to delete; nothing was deleted."""


class TidbDeleteSnapshotOperator(TidbBaseOperator):
    template_fields = ("namespace", "backup_name", "prefix")
    ui_color = "#f5d5d5"

    def __init__(self, *, backup_name: str | None, prefix: str | None = None, cluster_name: str,
                 storage: dict[str, Any], root: str, storage_provider: str | None = None,
                 storage_conn_id: str | None = None, bucket: str | None = None, dry_run: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not backup_name and not prefix:
            raise ValueError("give backup_name (the snapshot's Backup CR) or prefix (its data), or both")
        self.backup_name = backup_name
        self.prefix = prefix
        self.cluster_name = cluster_name
        self.storage = storage  # the cluster's storage block, without prefix
        self.root = root
        self.storage_provider = storage_provider
        self.storage_conn_id = storage_conn_id
        self.bucket = bucket
        self.dry_run = dry_run

    def _verified(self, obj: dict[str, Any]) -> BackupView:
        view = BackupView.from_cr(obj)
        where = f"{self.namespace}/{view.name}"
        if view.mode != "snapshot":
            raise NotManagedHere(f"{where} is a {view.mode} backup, not a snapshot: not deleted")
        problem = snapshot_problem(view, cluster_name=self.cluster_name, storage=self.storage, root=self.root)
        if problem is not None:
            raise NotManagedHere(f"{where} is not managed here ({problem}): neither it nor its data is deleted")
        if self.prefix and view.prefix and view.prefix.strip("/") != self.prefix.strip("/"):
            raise NotManagedHere(f"{where} is at {view.prefix!r}, not the planned {self.prefix!r}: not deleted")
        return view

    def execute(self, context: Any) -> dict[str, Any]:
        obj = self.hook.get(BACKUPS, self.backup_name, self.namespace) if self.backup_name else None
        result: dict[str, Any] = {"name": self.backup_name, "prefix": self.prefix, "dry_run": self.dry_run,
                                  "cr_deleted": False, "objects_deleted": 0, "bytes_deleted": 0}
        if obj is not None:
            view = self._verified(obj)
            result["clean_policy"] = view.clean_policy
            result["prefix"] = view.prefix
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
        if cr:
            self._verified(cr)  # the last version seen before it went: still ours (it was before the delete)
        policy = BackupView.from_cr(cr).clean_policy if cr else None
        return result if policy == "Delete" else self._delete_prefix(result)

    def _delete_prefix(self, result: dict[str, Any]) -> dict[str, Any]:
        prefix = result.get("prefix") or self.prefix
        if not (prefix and self.storage_provider and self.bucket):
            self.log.info("No storage prefix configured for %s; nothing more to delete", self.backup_name)
            return result
        from ..hooks.storage import BackupStorageHook

        hook = BackupStorageHook(self.storage_provider, conn_id=self.storage_conn_id, bucket=self.bucket,
                                 managed_root=self.root)
        deleted = hook.delete_prefix(prefix, dry_run=self.dry_run)
        self.log.info("%s %d objects (%d bytes) under %s", "Would delete" if self.dry_run else "Deleted",
                      deleted.keys, deleted.bytes, prefix)
        return {**result, "objects_deleted": deleted.keys, "bytes_deleted": deleted.bytes}
