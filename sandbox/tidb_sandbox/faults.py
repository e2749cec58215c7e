"""Fault switches: what the sandbox breaks on purpose, set at start or at run time."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    # Kubernetes API: a share of requests answered 500/503 instead of being served.
    api_error_rate: float = 0.0
    api_error_codes: list[int] = field(default_factory=lambda: [500, 503])
    # Of those injected errors on writes (POST, PUT, PATCH, DELETE), the share answered after the write
    # was applied: the client sees a failure for a change that happened.
    api_error_after_write: float = 0.5
    # The next N PATCH requests answer 409 Conflict.
    patch_conflicts: int = 0
    # Watch streams are cut (connection dropped) this many seconds after they start.
    watch_cut_after: float | None = None
    # The next snapshot backup / restore fails with this message (consumed by one CR).
    fail_next_backup: str | None = None
    fail_next_restore: str | None = None
    # Snapshot backups stay Running until this is switched off.
    hang_backups: bool = False
    # Hung snapshot backups (by name) let go while `hang_backups` stays on: completions one at a time (a trickle).
    released_backups: list[str] = field(default_factory=list)
    # Restores stay Running (before touching the target) until this is switched off.
    hang_restores: bool = False
    # "db.table": the next restore (snapshot or pitr) whose restored rows hold a row of that table writes
    # one of them wrong: the row with the smallest key gets its first column after `id` (in the table's
    # definition order) that holds a number or a string changed, a number + 1, a string + "-corrupt". All
    # else is restored exactly and the restore completes as usual (as if BR's own checksum were off);
    # consumed by that restore. Restores without a row of the table leave it armed.
    corrupt_restore: str | None = None
    # The next restore (snapshot or pitr) fails part-way, after this fraction (0..1) of its tables, in key order,
    # is written to the target with their rows: BR's progressive create-and-ingest stopped by an ingest error. The
    # target keeps those tables and BR's checkpoint; a restore of the same backup and point resumes over them.
    fail_restore_after: float | None = None
    # Log backup checkpoints stop advancing while this is on.
    freeze_checkpoint: bool = False
    # Clusters ("namespace/name", comma-separated) where a long-open transaction holds the log backup's
    # checkpoint where it was when this was set (TiKV's resolved ts stops at the transaction's start): data
    # is still flushed, the checkpoint (and the GC safe point it holds) stays until this is cleared.
    pin_checkpoint: str | None = None
    # Clusters ("namespace/name", comma-separated) whose TiKVs cannot upload the global checkpoint objects to
    # storage (`v1/global_checkpoint/<store>.ts`) while this is set: PD's checkpoint, and the CR's, go on.
    stall_storage_checkpoint: str | None = None
    # A running log backup is paused by TiKV with this message (the v1.6.4+ RetryFailed path): the one
    # named by log_error_pause_target ("namespace/name"), or else the first whose checkpoint ticks.
    log_error_pause: str | None = None
    log_error_pause_target: str | None = None
    # The next log sub-command Job of this Backup ("namespace/name") dies after it started running (OOM,
    # eviction): nothing notices, its sub-command stays Running (v1 has no failure detection for log Jobs).
    crash_log_job: str | None = None
    # Someone runs `br log resume` by hand on this Backup's task ("namespace/name"), behind the operator.
    resume_log_task: str | None = None
    # The next log truncate Job fails with this message (BR's `log truncate` erroring out).
    fail_next_truncate: str | None = None
    # TidbClusters ("namespace/name", comma-separated) whose Ready condition is False while this is set.
    cluster_not_ready: str | None = None
    # The operator's pod restarts: it is down for this many seconds (its Jobs, in their own pods, go on),
    # then starts again from what the API server holds. Consumed when the restart begins.
    restart_operator: float | None = None

    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; unknown names or wrong types are refused naming the field."""
        known = {f.name: f for f in fields(self) if not f.name.startswith("_")}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(sorted(known))}")
            coerced = _coerce(name, known[name].type, value)
            if name == "fail_restore_after" and coerced is not None and not 0 <= coerced <= 1:
                raise ValueError(f"fault 'fail_restore_after' must be a fraction from 0 to 1; got {value!r}")
            setattr(self, name, coerced)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def api_error(self) -> int | None:
        if self.api_error_rate > 0 and self._rng.random() < self.api_error_rate:
            return self._rng.choice(self.api_error_codes)
        return None

    def error_after_write(self) -> bool:
        return self.api_error_after_write > 0 and self._rng.random() < self.api_error_after_write

    def take_patch_conflict(self) -> bool:
        if self.patch_conflicts > 0:
            self.patch_conflicts -= 1
            return True
        return False

    def storage_checkpoint_stalled(self, cluster: tuple[str, str]) -> bool:
        named = {c.strip() for c in (self.stall_storage_checkpoint or "").split(",") if c.strip()}
        return f"{cluster[0]}/{cluster[1]}" in named

    def take_backup_failure(self) -> str | None:
        message, self.fail_next_backup = self.fail_next_backup, None
        return message

    def take_log_error_pause(self, task: str) -> str | None:
        if not self.log_error_pause or self.log_error_pause_target not in (None, "", task):
            return None
        message, self.log_error_pause, self.log_error_pause_target = self.log_error_pause, None, None
        return message

    def take_log_job_crash(self, backup: str) -> bool:
        if self.crash_log_job != backup:
            return False
        self.crash_log_job = None
        return True

    def take_task_resume(self, backup: str) -> bool:
        if self.resume_log_task != backup:
            return False
        self.resume_log_task = None
        return True

    def take_truncate_failure(self) -> str | None:
        message, self.fail_next_truncate = self.fail_next_truncate, None
        return message

    def take_operator_restart(self) -> float | None:
        seconds, self.restart_operator = self.restart_operator, None
        return seconds

    def take_restore_corruption(self, tables: set[str]) -> str | None:
        """The table to corrupt when `tables` (lower-case "db.table" of the restored rows) has it; consumed."""
        table = (self.corrupt_restore or "").strip()
        if not table or table.lower() not in tables:
            return None
        self.corrupt_restore = None
        return table

    def take_partial_restore(self) -> float | None:
        fraction, self.fail_restore_after = self.fail_restore_after, None
        return fraction

    def take_restore_failure(self) -> str | None:
        message, self.fail_next_restore = self.fail_next_restore, None
        return message


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    text = str(annotation)
    if value is None:
        if "None" in text:
            return None
        raise ValueError(f"fault {name!r} cannot be null")
    try:
        if text.startswith("float"):
            return float(value)
        if text.startswith("int"):
            return int(value)
        if text.startswith("bool"):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "on")
            return bool(value)
        if text.startswith("list[int]"):
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            return [int(v) for v in value]
        if text.startswith("str"):
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fault {name!r}: cannot use {value!r} ({annotation})") from exc
    return value


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`name=value` pairs from the command line; an empty value means null."""
    changes: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"expected name=value, got {item!r}")
        name, value = item.split("=", 1)
        changes[name.strip()] = value if value != "" else None
    return changes
