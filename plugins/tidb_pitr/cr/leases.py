"""State kept on the cluster's live log backup CR, in annotations a DBA can read with `kubectl describe`.

- `tidb-pitr-airflow/snapshot-failed`: the last snapshot run that failed, and why. Retention does not
  delete or truncate while it is there; a later snapshot run that succeeds removes it.
- `tidb-pitr-airflow/retention-lease`: a retention run is deleting or truncating, until it ends (or the
  lease expires, should the run die). A restore waits for it, or refuses.
- `restore.tidb-pitr-airflow/<run>`: a restore is about to start or running from a base snapshot: retention
  keeps that base and does not truncate past it.

Both sides write their own lease first and then read the other's, on the same object: whatever the
interleaving, at least one of them sees the other (the API server orders the two writes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .api import (
    ANNOTATION_RESTORE_LEASE_PREFIX,
    ANNOTATION_RETENTION_LEASE,
    ANNOTATION_SNAPSHOT_FAILED,
    BACKUPS,
)
from .model import BackupView

if TYPE_CHECKING:  # annotations only: the caller passes the hook
    from ..hooks.kubernetes import TidbOperatorHook


@dataclass(frozen=True)
class Lease:
    key: str
    run: str  # "<dag_id>/<run_id>"
    until: datetime
    data: dict[str, Any]

    def active(self, now: datetime) -> bool:
        return now < self.until


def _parse(key: str, text: str) -> Lease | None:
    try:
        data = json.loads(text)
        until = datetime.fromisoformat(data["until"])
    except (ValueError, KeyError, TypeError):
        return None
    return Lease(key, str(data.get("run", "")), until if until.tzinfo else until.replace(tzinfo=UTC), data)


def retention_lease(log: BackupView) -> Lease | None:
    text = log.annotations.get(ANNOTATION_RETENTION_LEASE)
    return _parse(ANNOTATION_RETENTION_LEASE, text) if text else None


def restore_leases(log: BackupView) -> list[Lease]:
    found = (_parse(k, v) for k, v in log.annotations.items() if k.startswith(ANNOTATION_RESTORE_LEASE_PREFIX))
    return [lease for lease in found if lease is not None]


def snapshot_failure(log: BackupView) -> dict[str, Any] | None:
    text = log.annotations.get(ANNOTATION_SNAPSHOT_FAILED)
    if not text:
        return None
    try:
        return dict(json.loads(text))
    except (ValueError, TypeError):
        return {"run": "?", "at": "?", "reason": text}


def _annotate(hook: TidbOperatorHook, log: BackupView, key: str, value: dict[str, Any] | None) -> BackupView:
    """Set (or, with None, remove) one annotation; returns the CR as it is after the write."""
    text = json.dumps(value, sort_keys=True) if value is not None else None
    obj = hook.merge_patch(BACKUPS, log.name, log.namespace, {"metadata": {"annotations": {key: text}}})
    return BackupView.from_cr(obj)


def take_retention_lease(hook: TidbOperatorHook, log: BackupView, run: str, hold: timedelta) -> BackupView:
    until = datetime.now(UTC) + hold
    return _annotate(hook, log, ANNOTATION_RETENTION_LEASE, {"run": run, "until": until.isoformat()})


def release_retention_lease(hook: TidbOperatorHook, log: BackupView, run: str) -> None:
    lease = retention_lease(log)
    if lease is not None and lease.run == run:
        _annotate(hook, log, ANNOTATION_RETENTION_LEASE, None)


def restore_key(run_hash: str) -> str:
    return f"{ANNOTATION_RESTORE_LEASE_PREFIX}{run_hash}"


def take_restore_lease(hook: TidbOperatorHook, log: BackupView, run_hash: str, run: str, *, base: str,
                       start_ts: int, target: str, hold: timedelta) -> BackupView:
    until = datetime.now(UTC) + hold
    return _annotate(hook, log, restore_key(run_hash), {"run": run, "until": until.isoformat(), "base": base,
                                                        "start_ts": str(start_ts), "target": target})


def release_restore_lease(hook: TidbOperatorHook, log: BackupView, run_hash: str) -> None:
    if restore_key(run_hash) in log.annotations:
        _annotate(hook, log, restore_key(run_hash), None)


def record_snapshot_failure(hook: TidbOperatorHook, log: BackupView, run: str, reason: str) -> None:
    _annotate(hook, log, ANNOTATION_SNAPSHOT_FAILED,
              {"run": run, "at": datetime.now(UTC).isoformat(), "reason": reason[:500]})


def clear_snapshot_failure(hook: TidbOperatorHook, log: BackupView, succeeded_at: datetime) -> None:
    """A snapshot run that succeeded clears a failure recorded before it started (not one made since)."""
    failure = snapshot_failure(log)
    if failure is None:
        return
    try:
        failed_at = datetime.fromisoformat(str(failure.get("at")))
    except ValueError:
        failed_at = None
    if failed_at is None or failed_at <= succeeded_at:
        _annotate(hook, log, ANNOTATION_SNAPSHOT_FAILED, None)
