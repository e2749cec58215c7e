"""A sensor on the backup storage itself: the global checkpoint BR's restore checks.

BR restores up to `br log metadata`'s log-max-ts, the largest `v1/global_checkpoint/*.ts` in the log's
folder, which TiKV uploads after PD's checkpoint (the CR's `logCheckpointTs`) has moved: a restore point the
CR has passed can still be beyond it, and BR then refuses the restore.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from ..tso import tso_label


class TidbStorageCheckpointSensor(BaseSensorOperator):
    """Waits until the log backup's checkpoint in storage is at or past `target_ts`."""

    template_fields = ("log_prefix", "target_ts")

    def __init__(self, *, storage: dict[str, Any], log_prefix: str, target_ts: int | str, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 5.0)
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.storage = storage  # BackupStorageHook arguments
        self.log_prefix = log_prefix
        self.target_ts = target_ts

    def poke(self, context: Any) -> PokeReturnValue:
        from ..hooks.storage import BackupStorageHook

        checkpoint = BackupStorageHook(**self.storage).log_checkpoint(self.log_prefix)
        target = int(self.target_ts)
        self.log.info("Checkpoint in storage %s, restore point %s (%s)",
                      tso_label(checkpoint) if checkpoint else "none yet", tso_label(target),
                      "reached" if checkpoint >= target else "not yet")
        return PokeReturnValue(checkpoint >= target, {"storage_checkpoint": checkpoint})
