"""Dumpling `Backup` (`from:`) and Lightning `Restore` (`to:`), TiDB Operator v1: create or adopt, wait, report.

A retry adopts the CR its run made (deterministic name, run labels), whatever its phase: a Failed one fails the
retry again with its message, it is never replaced by a second CR. Failure messages are the operator's, with
the passwords it prints (Dumpling's and Lightning's command lines) masked.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ..cr.api import BACKUPS
from ..cr.logical import COMPONENT_LOGICAL, FLOW_LOGICAL_BACKUP, logical_backup_body, logical_name, redact
from ..cr.model import BackupView, RestoreView
from ..triggers.predicates import SUCCESS
from .base import TidbBaseOperator
from .labels import adoption_labels, owned_labels
from .restore import TidbRestoreOperator

_HINTS = {
    "ConnectTidbFailed": "the Job could not log in to TiDB at {where} (backup-manager retries for 30 minutes, "
                         "then fails with this message): check the host and port, and the password in Secret "
                         "{secret} (key 'password')",
    "GetTidbSecretFailed": "create the Secret {secret} with key 'password' in namespace {namespace}",
}


def failure_line(kind: str, namespace: str, event: dict[str, Any] | None, access_field: str) -> str:
    """One line: what failed, the operator's reason and message (passwords masked), and what to check."""
    event = event or {}
    obj = event.get("cr") or {}
    meta = obj.get("metadata") or {}
    view = (BackupView if kind == "Backup" else RestoreView).from_cr(obj) if obj else None
    name = meta.get("name") or event.get("name") or "?"
    reason = getattr(view, "reason", "") or ""
    message = redact(getattr(view, "message", "") or "") or redact(str(event.get("message") or "no message"))
    phase = getattr(view, "phase", "") or event.get("status")
    line = f"{kind} {namespace}/{name} {phase}: {reason + ': ' if reason else ''}{message}"
    access = (obj.get("spec") or {}).get(access_field) or {}
    hint = _HINTS.get(reason)
    if hint:
        where = f"{access.get('host')}:{access.get('port') or 4000} as {access.get('user') or 'root'}"
        line += " — " + hint.format(where=where, secret=access.get("secretName"), namespace=namespace)
    if view is None or (not reason and event.get("message")):  # a wait that ended without a verdict on the CR
        line = f"{kind} {namespace}/{name}: [{event.get('status')}] {redact(str(event.get('message')))}"
    return line


def _fail(context: Any, line: str) -> None:
    from ..runtime.notes import publish_note

    publish_note(context, f"Failed: {line}")
    raise AirflowFailException(line)


class TidbLogicalBackupOperator(TidbBaseOperator):
    """Create this run's Dumpling Backup `<cluster>-logical-<stamp>` (or adopt it) and wait for it to finish."""

    template_fields = ("namespace", "stamp")
    ui_color = "#e8f5d7"

    def __init__(self, *, pitr_cluster: str, tidb_cluster: str, stamp: str, spec: dict[str, Any],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pitr_cluster = pitr_cluster
        self.tidb_cluster = tidb_cluster
        self.stamp = stamp
        self.spec = spec  # logical_backup_body's arguments: access, storage, prefix, options, ...

    def execute(self, context: Any) -> dict[str, Any]:
        labels, annotations = owned_labels(context, cluster=self.tidb_cluster, component=COMPONENT_LOGICAL,
                                           pitr_cluster=self.pitr_cluster, flow=FLOW_LOGICAL_BACKUP)
        name = logical_name(self.pitr_cluster, self.stamp)
        body = logical_backup_body(name=name, namespace=self.namespace, labels=labels, annotations=annotations,
                                   **self.spec)
        obj, created = self.hook.create_or_adopt(BACKUPS, body, self.namespace, adoption_labels(labels))
        self.log.info("%s Dumpling Backup %s/%s (from %s:%s, into s3://%s/%s)", "Created" if created else "Adopted",
                      self.namespace, name, self.spec["access"]["host"], self.spec["access"]["port"],
                      self.spec["storage"]["s3"]["bucket"], self.spec["prefix"])
        event = self.wait_for(context, plural=BACKUPS, name=name, kind="terminal", current=obj)
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or event.get("status") != SUCCESS:
            _fail(context, failure_line("Backup", self.namespace, event, "from"))
        view = BackupView.from_cr(event["cr"])
        self.log.info("Dumpling Backup %s Complete: commitTs %s, %s bytes at %s", view.name, view.commit_ts,
                      view.backup_size, view.backup_path)
        return {"name": view.name, "namespace": view.namespace, "commit_ts": str(view.commit_ts or ""),
                "backup_path": view.backup_path, "backup_size": view.backup_size}


class TidbLogicalRestoreOperator(TidbRestoreOperator):
    """The planned Lightning Restore: created (or adopted) in the target's namespace and waited for."""

    template_fields = ("namespace", "body", "cluster")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or event.get("status") != SUCCESS:
            _fail(context, failure_line("Restore", self.namespace, event, "to"))
        return super().execute_complete(context, event)
