"""CompactBackup: compact log backup data between two TSOs (TiDB >= v8.5.5 / v9), wait for Complete."""

from __future__ import annotations

from typing import Any

from ..cr.api import COMPACT_BACKUPS, COMPONENT_COMPACT, FLOW_COMPACTION, ApiGroup
from ..cr.bodies import compact_backup
from ..cr.model import CompactView
from ..cr.names import compact_name
from ..tso import tso_label
from .base import TidbBaseOperator
from .labels import adoption_labels, owned_labels


class TidbCompactBackupOperator(TidbBaseOperator):
    template_fields = ("namespace", "compact_name", "stamp", "cluster", "log_storage", "start_ts", "end_ts")
    ui_color = "#efe4ff"

    def __init__(self, *, cluster: str, log_storage: dict[str, Any], start_ts: int | str, compact_name: str = "",
                 stamp: str = "",
                 end_ts: int | str, concurrency: int = 4, max_retry_times: int = 6,
                 cluster_namespace: str | None = None, pitr_cluster: str = "", service_account: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pitr_cluster = pitr_cluster
        self.service_account = service_account
        if not compact_name and not (stamp and pitr_cluster):
            raise ValueError("give compact_name, or stamp and pitr_cluster to name the CompactBackup after them")
        self.compact_name = compact_name
        self.stamp = stamp
        self.cluster = cluster
        self.cluster_namespace = cluster_namespace
        self.log_storage = log_storage
        self.start_ts = start_ts
        self.end_ts = end_ts
        self.concurrency = concurrency
        self.max_retry_times = max_retry_times

    def execute(self, context: Any) -> dict[str, Any]:
        self.compact_name = self.compact_name or compact_name(self.pitr_cluster, self.stamp)
        labels, annotations = owned_labels(context, cluster=self.cluster, component=COMPONENT_COMPACT,
                                           pitr_cluster=self.pitr_cluster, flow=FLOW_COMPACTION)
        body = compact_backup(ApiGroup(self.api_group), name=self.compact_name, namespace=self.namespace,
                              cluster=self.cluster, cluster_namespace=self.cluster_namespace or self.namespace,
                              log_storage=self.log_storage, start_ts=int(self.start_ts), end_ts=int(self.end_ts),
                              concurrency=self.concurrency, max_retry_times=self.max_retry_times, labels=labels,
                              annotations=annotations, service_account=self.service_account)
        obj, created = self.hook.create_or_adopt(COMPACT_BACKUPS, body, self.namespace, adoption_labels(labels))
        self.log.info("%s CompactBackup %s/%s over [%s, %s]", "Created" if created else "Adopted", self.namespace,
                      self.compact_name, tso_label(int(self.start_ts)), tso_label(int(self.end_ts)))
        event = self.wait_for(context, plural=COMPACT_BACKUPS, name=self.compact_name, kind="terminal", current=obj)
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        view = CompactView.from_cr(self.check_event(event)["cr"])
        return {"name": view.name, "namespace": view.namespace, "progress": view.progress,
                "end_ts": view.status_end_ts or view.end_ts}
