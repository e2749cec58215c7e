"""Snapshot backup: create the Backup CR (or adopt this run's), wait for Complete, return what it made.

A retry adopts the CR its run made while that one is pending, running or done. After it Failed, a retry
makes a new attempt, `<name>-a<n>` in a folder of its own (BR refuses a folder holding a half-written
backup), and leaves the failed CR for the record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..cr.api import (
    BACKUPS,
    COMPONENT_SNAPSHOT,
    FLOW_SNAPSHOT,
    LABEL_COMPONENT,
    LABEL_PITR_CLUSTER,
    LABEL_RUN,
    ApiGroup,
)
from ..cr.bodies import snapshot_backup
from ..cr.model import BackupView, State
from ..cr.names import snapshot_folder, snapshot_name
from ..tso import tso_label, tso_to_dt
from ..units import format_bytes
from .base import TidbBaseOperator
from .labels import adoption_labels, owned_labels


def snapshot_result(obj: dict[str, Any]) -> dict[str, Any]:
    view = BackupView.from_cr(obj)
    return {"name": view.name, "namespace": view.namespace, "commit_ts": view.commit_ts,
            "commit_time": tso_to_dt(view.commit_ts).isoformat() if view.commit_ts else None,
            "backup_path": view.backup_path, "backup_size": view.backup_size, "prefix": view.prefix}


class TidbSnapshotBackupOperator(TidbBaseOperator):
    """Take a full snapshot of `cluster` into `<root>/snapshot-<stamp>`; returns commitTs, path and size."""

    template_fields = ("namespace", "stamp", "cluster", "cluster_namespace", "root", "storage", "br")
    ui_color = "#d7f0ff"

    def __init__(self, *, pitr_cluster: str, stamp: str, cluster: str, storage: dict[str, Any], root: str,
                 cluster_namespace: str | None = None, br: dict[str, Any] | None = None,
                 service_account: str | None = None, clean_policy: str = "Delete", tool_image: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pitr_cluster = pitr_cluster  # the configured cluster: CR names and the ownership label
        self.stamp = stamp  # YYYYMMDDHHMMSS of the run
        self.cluster = cluster  # the TidbCluster / Cluster object
        self.cluster_namespace = cluster_namespace
        self.storage = storage  # the storage block without prefix
        self.root = root
        self.br = br
        self.service_account = service_account
        self.clean_policy = clean_policy
        self.tool_image = tool_image

    def _attempts(self, labels: dict[str, str]) -> list[BackupView]:
        selector = ",".join(f"{k}={labels[k]}" for k in (LABEL_RUN, LABEL_COMPONENT, LABEL_PITR_CLUSTER))
        found = [BackupView.from_cr(o) for o in self.hook.list(BACKUPS, self.namespace, label_selector=selector)]
        return sorted(found, key=lambda v: (v.created or datetime.min.replace(tzinfo=UTC), v.name))

    def execute(self, context: Any) -> dict[str, Any]:
        labels, annotations = owned_labels(context, cluster=self.cluster, component=COMPONENT_SNAPSHOT,
                                           pitr_cluster=self.pitr_cluster, flow=FLOW_SNAPSHOT)
        attempts = self._attempts(labels)
        going = [v for v in attempts if v.state not in (State.FAILED, State.INVALID) and not v.deleting]
        if going:
            view = going[-1]
            self.log.info("Adopting snapshot Backup %s/%s made earlier in this run (%s)", self.namespace, view.name,
                          view.phase or "no status yet")
            return self._wait(context, view.name, view.raw)
        number = len(attempts) + 1
        folder = snapshot_folder(self.stamp)
        if attempts:
            used = {v.prefix for v in attempts}
            stamp = max(datetime.now(UTC).strftime("%Y%m%d%H%M%S"), self.stamp)
            while f"{self.root}/{snapshot_folder(stamp)}" in used:
                stamp = str(int(stamp) + 1)
            folder = snapshot_folder(stamp)
            self.log.warning("Earlier attempts of this run failed (%s): attempt %d goes to %s/%s; the failed CRs "
                             "stay for the record", ", ".join(f"{v.name} {v.phase}" for v in attempts), number,
                             self.root, folder)
        name = snapshot_name(self.pitr_cluster, self.stamp, number)
        prefix = f"{self.root}/{folder}"
        body = snapshot_backup(
            ApiGroup(self.api_group), name=name, namespace=self.namespace, cluster=self.cluster,
            cluster_namespace=self.cluster_namespace or self.namespace, storage=self.storage, prefix=prefix,
            labels=labels, annotations=annotations, br=self.br, service_account=self.service_account,
            clean_policy=self.clean_policy, tool_image=self.tool_image)
        obj, created = self.hook.create_or_adopt(BACKUPS, body, self.namespace, adoption_labels(labels))
        self.log.info("%s snapshot Backup %s/%s at prefix %s", "Created" if created else "Adopted",
                      self.namespace, name, prefix)
        return self._wait(context, name, obj)

    def _wait(self, context: Any, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = self.wait_for(context, plural=BACKUPS, name=name, kind="terminal", current=obj)
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        result = snapshot_result(self.check_event(event)["cr"])
        self.log.info("Snapshot %s complete: commitTs %s, %s at %s", result["name"],
                      tso_label(int(result["commit_ts"])) if result["commit_ts"] else "none",
                      format_bytes(result["backup_size"]) if result["backup_size"] is not None else "size unknown",
                      result["backup_path"])
        return result
