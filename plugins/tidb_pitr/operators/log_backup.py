"""Log backup control: start, pause, resume, stop. Idempotent: a CR already in the asked state is left alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from airflow.sdk.exceptions import AirflowFailException

from ..cr.api import BACKUPS, COMPONENT_LOG, FLOW_LOG_GUARD, LABEL_MANAGED_BY, MANAGED_BY, ApiGroup
from ..cr.bodies import log_backup, log_control_patch
from ..cr.inventory import inventory_of
from ..cr.model import BackupView, State
from ..planning.pause import PAUSE_GC_TTL, dead_pause_cause, maintenance_pause, resume_refused_by_gc
from ..tso import tso_label
from ..units import format_duration
from .base import TidbBaseOperator, WaitFailed, require_cr
from .labels import adoption_labels, owned_labels

Action = Literal["start", "pause", "resume", "stop"]
ACTIONS = ("start", "pause", "resume", "stop")
# action -> (whole phase it ends in, sub-command whose failure ends the wait)
TARGETS = {"pause": ("Paused", "log-pause"), "resume": ("Running", "log-resume"), "stop": ("Stopped", "log-stop")}


def log_result(obj: dict[str, Any]) -> dict[str, Any]:
    view = BackupView.from_cr(obj)
    return {"name": view.name, "namespace": view.namespace, "phase": view.phase, "state": str(view.state),
            "commit_ts": view.commit_ts, "checkpoint_ts": view.checkpoint_ts, "backup_path": view.backup_path}


class TidbLogBackupOperator(TidbBaseOperator):
    """Start (create), pause, resume or stop the cluster's log backup task (one per cluster, as BR allows)."""

    template_fields = ("namespace", "backup_name", "cluster", "cluster_namespace", "prefix", "storage", "br",
                       "replaces", "annotations")
    ui_color = "#e4f7e4"

    def __init__(self, *, action: Action, backup_name: str, cluster: str | None = None,
                 storage: dict[str, Any] | None = None, prefix: str | None = None,
                 cluster_namespace: str | None = None, br: dict[str, Any] | None = None,
                 service_account: str | None = None, legacy_log_stop: bool = False, pitr_cluster: str = "",
                 replaces: str = "", annotations: dict[str, str | None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
        if action == "start" and not (cluster and storage and prefix):
            raise ValueError("action 'start' needs cluster, storage and prefix to create the log Backup CR")
        self.action = action
        self.backup_name = backup_name
        self.cluster = cluster
        self.cluster_namespace = cluster_namespace
        self.storage = storage
        self.prefix = prefix
        self.br = br
        self.service_account = service_account
        self.pitr_cluster = pitr_cluster  # the configured cluster (its ownership label)
        # action 'start': a dead log backup of ours (its resume refused for good) to stop before the new one starts
        self.replaces = replaces
        # pause, resume, stop: annotations written in the same patch as the sub-command (None removes one), so
        # the CR never says "paused for maintenance" without being asked to pause, nor the reverse
        self.annotations = annotations
        self.group = ApiGroup(self.api_group, legacy_log_stop=legacy_log_stop)

    def execute(self, context: Any) -> dict[str, Any]:
        if self.action == "start":
            return self._start(context)
        obj = require_cr(self.hook, BACKUPS, self.backup_name, self.namespace)
        view = BackupView.from_cr(obj)
        phase, command = TARGETS[self.action]
        if view.phase == phase and not view.error_paused:
            self.log.info("Log backup %s/%s is already %s", self.namespace, self.backup_name, phase)
            return log_result(obj)
        if view.state == State.STOPPED:
            raise WaitFailed(f"log backup {self.namespace}/{self.backup_name} is Stopped, which is terminal; "
                             "to back up logs again, create a new log Backup CR with a new name and prefix")
        patch = log_control_patch(self.group, self.action)
        if self.annotations:
            patch["metadata"] = {"annotations": dict(self.annotations)}
        obj = self.hook.merge_patch(BACKUPS, self.backup_name, self.namespace, patch)
        self.log.info("Asked log backup %s/%s to %s", self.namespace, self.backup_name, self.action)
        if self.action == "pause":
            self.log.warning("Resume log backup %s/%s within %s (BR's pause GC TTL): after that the GC may pass its "
                             "checkpoint, the resume then fails for good and only a new log backup (with a gap) "
                             "recovers", self.namespace, self.backup_name, format_duration(PAUSE_GC_TTL))
        event = self.wait_for(context, plural=BACKUPS, name=self.backup_name, kind="log_phase",
                              args={"phase": phase, "command": command})
        return self.execute_complete(context, event)

    def _start(self, context: Any) -> dict[str, Any]:
        obj = self.hook.get(BACKUPS, self.backup_name, self.namespace)
        if obj is None and self.replaces:
            old = self.hook.get(BACKUPS, self.replaces, self.namespace)
            if old is not None and BackupView.from_cr(old).state != State.STOPPED:
                return self._stop_replaced(context, old)
        if obj is None:
            self._refuse_a_second_task()
            labels, annotations = owned_labels(context, cluster=self.cluster or "", component=COMPONENT_LOG,
                                               pitr_cluster=self.pitr_cluster, flow=FLOW_LOG_GUARD)
            body = log_backup(self.group, name=self.backup_name, namespace=self.namespace,
                              cluster=self.cluster or "", cluster_namespace=self.cluster_namespace or self.namespace,
                              storage=self.storage or {}, prefix=self.prefix or "", labels=labels,
                              annotations=annotations, br=self.br, service_account=self.service_account)
            obj, _ = self.hook.create_or_adopt(BACKUPS, body, self.namespace, adoption_labels(labels))
            self.log.info("Created log Backup %s/%s at prefix %s", self.namespace, self.backup_name, self.prefix)
        else:
            view = BackupView.from_cr(obj)
            if view.state == State.STOPPED:
                raise WaitFailed(f"log backup {self.namespace}/{self.backup_name} is Stopped, which is terminal; "
                                 "create a new log Backup CR with a new name and prefix")
            if view.error_paused:
                raise WaitFailed(
                    f"log backup {self.namespace}/{self.backup_name} was paused by an error in TiKV: {view.message}. "
                    "Fix the cause (see `br log status`), then pause and resume it (logSubcommand log-pause, then "
                    "log-start); its checkpoint does not move until then")
            refusal = resume_refused_by_gc(view)
            if refusal:  # asking again would fail the same, and the operator would not even run it
                raise WaitFailed(f"{dead_pause_cause(view)}. BR said: {refusal}. Stop it and start a new log "
                                 "backup (the guard's start_new_log_backup does both)")
            held = maintenance_pause(view)
            if held is not None and held.active(datetime.now(UTC)):
                self.log.info("Log backup %s/%s is paused for maintenance until %s (run %s: %s); leaving it paused",
                              self.namespace, self.backup_name, held.to_dict()["until"], held.run,
                              held.reason or "no reason given")
                return log_result(obj)
            if view.state == State.PAUSED:
                self.log.info("Log backup %s/%s is paused; resuming it", self.namespace, self.backup_name)
                obj = self.hook.merge_patch(BACKUPS, self.backup_name, self.namespace,
                                            log_control_patch(self.group, "resume"))
                event = self.wait_for(context, plural=BACKUPS, name=self.backup_name, kind="log_phase",
                                      args={"phase": "Running", "command": "log-resume"})
                return self.execute_complete(context, event)
        event = self.wait_for(context, plural=BACKUPS, name=self.backup_name, kind="log_started", current=obj)
        return self.execute_complete(context, event)

    def _stop_replaced(self, context: Any, old: dict[str, Any]) -> dict[str, Any]:
        """Stop the log backup this one replaces (it still holds the cluster's one task), then start anew."""
        view = BackupView.from_cr(old)
        if view.label(LABEL_MANAGED_BY) != MANAGED_BY:
            raise AirflowFailException(f"refusing to stop log backup {self.namespace}/{self.replaces}: it was not "
                                       "made by this project; stop it yourself (logSubcommand: log-stop)")
        if view.log_subcommand != "log-stop" and not view.log_stop:
            old = self.hook.merge_patch(BACKUPS, self.replaces, self.namespace, log_control_patch(self.group, "stop"))
            self.log.warning("Stopping log backup %s/%s before starting %s in its place", self.namespace,
                             self.replaces, self.backup_name)
        event = self.wait_for(context, plural=BACKUPS, name=self.replaces, kind="log_phase",
                              args={"phase": "Stopped", "command": "log-stop"}, method_name="replaced_stopped",
                              current=old)
        return self.replaced_stopped(context, event)

    def replaced_stopped(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The replaced log backup is Stopped (or its stop failed, which fails here, leaving both CRs as they
        are): now create this one."""
        self.check_event(event)
        self.log.info("Log backup %s/%s is Stopped; starting %s", self.namespace, self.replaces, self.backup_name)
        return self._start(context)

    def _refuse_a_second_task(self) -> None:
        """TiDB runs one log backup task per cluster: never start one while another CR has it or is taking it."""
        namespace = self.cluster_namespace or self.namespace
        inventory = inventory_of(self.hook.list(BACKUPS, self.namespace), self.cluster or "", namespace)
        others = inventory.log_tasks_besides(self.backup_name)
        if others:
            held = "; ".join(f"log backup {v.namespace}/{v.name} ({v.phase or 'no status yet'}, made by "
                             f"{v.label(LABEL_MANAGED_BY) or 'someone else'})" for v in others)
            raise AirflowFailException(
                f"refusing to start log backup {self.namespace}/{self.backup_name}: {held} already holds the log "
                f"task of {namespace}/{self.cluster}. TiDB runs one log backup per cluster: stop that one "
                "(logSubcommand: log-stop) or let this project use it")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        result = log_result(self.check_event(event)["cr"])
        checkpoint = result["checkpoint_ts"]
        self.log.info("Log backup %s is %s (checkpoint %s)", result["name"], result["phase"],
                      tso_label(int(checkpoint)) if checkpoint else "none yet")
        return result
