"""Sensors on backup CRs: a Backup or Restore reaching a terminal phase, and the log checkpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from ..cr.api import BACKUPS, RESTORES
from ..operators.base import DEFAULT_RETRY_FAILED_GRACE, DEFAULT_STUCK_AFTER, DEFAULT_WAIT, TidbCrMixin, WaitFailed
from ..triggers.predicates import SUCCESS, evaluate


class TidbCrSensor(TidbCrMixin, BaseSensorOperator):
    """Pokes once; then defers to the watch-based trigger (or keeps poking when not deferrable)."""

    template_fields = ("namespace", "cr_name")
    plural = BACKUPS
    kind = "terminal"

    def __init__(self, *, cr_name: str, namespace: str, kubernetes_conn_id: str = "kubernetes_default",
                 api_group: str = "pingcap.com", deferrable: bool | None = None, poll_interval: float = 30.0,
                 wait_timeout: timedelta = DEFAULT_WAIT, retry_failed_grace: timedelta = DEFAULT_RETRY_FAILED_GRACE,
                 stuck_after: timedelta = DEFAULT_STUCK_AFTER, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        kwargs.setdefault("timeout", wait_timeout.total_seconds())
        super().__init__(**kwargs)
        self.cr_name = cr_name
        self.configure_cr(namespace=namespace, kubernetes_conn_id=kubernetes_conn_id, api_group=api_group,
                          deferrable=deferrable, poll_interval=poll_interval, wait_timeout=wait_timeout,
                          retry_failed_grace=retry_failed_grace, stuck_after=stuck_after)

    def wait_args(self) -> dict[str, Any]:
        return {}

    def reevaluate_every(self) -> float | None:
        return None

    def poke(self, context: Any) -> PokeReturnValue:
        obj = self.hook.get(self.plural, self.cr_name, self.namespace)
        verdict = evaluate(self.kind, self.plural, obj, self._bounded(self.wait_args()))
        if verdict is None:
            return PokeReturnValue(False)
        if verdict.status != SUCCESS:
            raise WaitFailed(f"[{verdict.status}] {verdict.message}")
        self.log.info(verdict.message)
        return PokeReturnValue(True, {"message": verdict.message, **verdict.details})

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.wait_for(context, plural=self.plural, name=self.cr_name, kind=self.kind, args=self.wait_args(),
                      reevaluate_every=self.reevaluate_every())

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.check_event(event)
        details = {k: event[k] for k in ("checkpoint_ts", "lag_seconds") if k in event}
        return {"message": event["message"], **details}


class TidbBackupSensor(TidbCrSensor):
    """Waits until a Backup is Complete; fails with the operator's message when it Failed or is Invalid."""


class TidbRestoreSensor(TidbCrSensor):
    plural = RESTORES


class TidbLogCheckpointSensor(TidbCrSensor):
    """Waits until the log checkpoint is at or past `target_ts`, or its lag is under `max_lag`.

    Fails at once when the log backup is stopped, failed or error-paused: its checkpoint will not move.
    Returns the checkpoint and the lag in seconds.
    """

    template_fields = ("namespace", "cr_name", "target_ts")

    def __init__(self, *, target_ts: int | str | None = None, max_lag: timedelta | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (target_ts is None) == (max_lag is None):
            raise ValueError("give exactly one of target_ts (wait for the checkpoint to pass it) and max_lag")
        self.target_ts = target_ts
        self.max_lag = max_lag
        self.kind = "checkpoint" if target_ts is not None else "lag"

    def wait_args(self) -> dict[str, Any]:
        if self.kind == "checkpoint":
            return {"ts": int(self.target_ts)}  # type: ignore[arg-type]
        return {"max_lag_seconds": self.max_lag.total_seconds()}  # type: ignore[union-attr]

    def reevaluate_every(self) -> float | None:
        # Lag shrinks only when the checkpoint moves, which is a CR change; still re-read now and then.
        return min(30.0, self.poll_interval) if self.kind == "lag" else None
