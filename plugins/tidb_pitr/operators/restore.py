"""Restore: create the Restore CR (pitr or snapshot) from a planned body, wait, report how it went."""

from __future__ import annotations

from typing import Any

from ..cr.api import COMPONENT_RESTORE, FLOW_RESTORE, RESTORES
from ..cr.model import RestoreView
from .base import TidbBaseOperator
from .labels import adoption_labels, owned_labels


class TidbRestoreOperator(TidbBaseOperator):
    """Create `body` (a Restore CR from the restore planner) into an empty target cluster and wait."""

    template_fields = ("namespace", "body")
    ui_color = "#ffe4e1"

    def __init__(self, *, body: dict[str, Any], pitr_cluster: str, cluster: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body = body
        self.pitr_cluster = pitr_cluster  # the configured source cluster (its ownership label)
        self.cluster = cluster

    def execute(self, context: Any) -> dict[str, Any]:
        body = dict(self.body)
        metadata = dict(body.get("metadata") or {})
        target = ((body.get("spec") or {}).get("br") or {}).get("cluster") or self.cluster
        labels, annotations = owned_labels(context, cluster=target, component=COMPONENT_RESTORE,
                                           pitr_cluster=self.pitr_cluster, flow=FLOW_RESTORE)
        metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
        body["metadata"] = metadata
        name = metadata["name"]
        obj, created = self.hook.create_or_adopt(RESTORES, body, self.namespace, adoption_labels(labels))
        self.log.info("%s Restore %s/%s", "Created" if created else "Adopted", self.namespace, name)
        event = self.wait_for(context, plural=RESTORES, name=name, kind="terminal", current=obj)
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        view = RestoreView.from_cr(self.check_event(event)["cr"])
        seconds = None
        if view.time_started and view.time_completed:
            seconds = (view.time_completed - view.time_started).total_seconds()
        self.log.info("Restore %s complete in %s s", view.name, seconds)
        return {"name": view.name, "namespace": view.namespace, "mode": view.mode,
                "pitr_restored_ts": view.pitr_restored_ts, "commit_ts": view.commit_ts,
                "time_started": view.time_started.isoformat() if view.time_started else None,
                "time_completed": view.time_completed.isoformat() if view.time_completed else None,
                "duration_seconds": seconds}
