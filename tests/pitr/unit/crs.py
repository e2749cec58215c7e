"""Builders of Backup CR dicts shaped like what TiDB Operator writes, and views of them, for the unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidb_pitr.cr.api import V1_GROUP, V2_GROUP
from tidb_pitr.cr.model import BackupView
from tidb_pitr.tso import tso_to_dt

S3 = {"provider": "aws", "region": "us-west-1", "bucket": "my-bucket", "secretName": "s3-secret"}
_PATHS = {
    "snapshot": ("Scheduled", "Prepare", "Running"),
    "log": ("Scheduled", "Prepare", "Running"),
}


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(group: str, ctype: str, when: datetime, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": "True", "lastTransitionTime": iso(when)}
    if group == V2_GROUP:  # metav1.Condition: reason and message always present
        cond.update(reason=reason or ctype, message=message, observedGeneration=1)
    else:
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


def backup_cr(
    name: str, *, mode: str = "snapshot", phase: str = "Complete", commit_ts: int | None = None,
    checkpoint_ts: int | None = None, truncated_until: str | None = None, group: str = V1_GROUP,
    namespace: str = "tidb", cluster: str = "basic", prefix: str | None = None, size: int | None = None,
    reason: str = "", message: str = "", created: datetime | None = None, deleting: bool = False,
    spec: dict[str, Any] | None = None, sub_statuses: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None, bucket: str = "my-bucket",
) -> dict[str, Any]:
    when = created or (tso_to_dt(commit_ts) if commit_ts else datetime(2026, 1, 1, tzinfo=UTC))
    prefix = prefix or (f"backups/{name}" if mode == "snapshot" else "backups/log")
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "creationTimestamp": iso(when), "uid": name,
                            "labels": {"app.kubernetes.io/instance": cluster, **(labels or {})}}
    if deleting:
        meta["deletionTimestamp"] = iso(when)
    body_spec: dict[str, Any] = {"backupMode": mode, "br": {"cluster": cluster},
                                 "s3": {**S3, "bucket": bucket, "prefix": prefix}}
    if mode == "snapshot":
        body_spec.update(backupType="full", cleanPolicy="Delete")
    else:
        body_spec.update(logSubcommand="log-start")
    body_spec.update(spec or {})
    conditions = []
    if phase:
        for ctype in _PATHS[mode]:
            if ctype == phase:
                break
            conditions.append(condition(group, ctype, when))
        conditions.append(condition(group, phase, when, reason, message))
    status: dict[str, Any] = {"phase": phase, "conditions": conditions} if phase else {}
    if phase:
        status["backupPath"] = f"s3://{bucket}/{prefix}"
    if commit_ts is not None:
        status["commitTs"] = str(commit_ts)
    if checkpoint_ts is not None:
        status["logCheckpointTs"] = str(checkpoint_ts)
    if truncated_until is not None:
        status["logSuccessTruncateUntil"] = truncated_until
    if size is not None:
        status["backupSize"] = size
    if sub_statuses is not None:
        status["logSubCommandStatuses"] = sub_statuses
    return {"apiVersion": f"{group}/v1alpha1", "kind": "Backup", "metadata": meta, "spec": body_spec,
            "status": status}


def snapshot(name: str, commit_ts: int | None, phase: str = "Complete", **kw: Any) -> BackupView:
    if phase != "Complete":
        commit_ts = None  # a failed or running snapshot has no commitTs
    return BackupView.from_cr(backup_cr(name, phase=phase, commit_ts=commit_ts, **kw))


def log(name: str, start: int, checkpoint: int, *, truncated: int | None = None, phase: str = "Running",
        **kw: Any) -> BackupView:
    return BackupView.from_cr(backup_cr(
        name, mode="log", phase=phase, commit_ts=start, checkpoint_ts=checkpoint,
        truncated_until=str(truncated) if truncated is not None else None, **kw))
