"""What every TiDB operator and sensor here shares: connection, API group, deadlines, and the wait.

The wait defers to `CustomResourceTrigger` (no worker slot held while a backup runs for hours) or,
with `deferrable=False`, polls with the sync hook using the same predicates.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException

from ..cr.api import ApiGroup
from ..triggers.predicates import SUCCESS, evaluate

if TYPE_CHECKING:
    from ..hooks.kubernetes import TidbOperatorHook

# The Kubernetes client and the trigger are imported when a task runs, not when a DAG file is parsed:
# the kubernetes packages are most of a parse's import time.

DEFAULT_WAIT = timedelta(hours=24)
DEFAULT_RETRY_FAILED_GRACE = timedelta(minutes=10)
DEFAULT_STUCK_AFTER = timedelta(minutes=30)


class WaitFailed(AirflowException):
    """The CR reached a failed state, vanished, or the wait ran out; the message says which."""


def min_deferral() -> float:
    """Seconds a deferred wait lasts at least (`[tidb_pitr] min_deferral_seconds`, default 15): see
    `CustomResourceTrigger.run` for the Airflow race it keeps clear of. 0 where no executor runs (dag.test())."""
    return conf.getfloat("tidb_pitr", "min_deferral_seconds", fallback=15.0)


def default_deferrable() -> bool:
    """Deferrable unless `[tidb_pitr] deferrable = False` (for a deployment without a triggerer).

    Not `[operators] default_deferrable`: that defaults to False, and these waits last hours.
    """
    return conf.getboolean("tidb_pitr", "deferrable", fallback=True)


class TidbCrMixin:
    """Connection, API group and the wait; mixed into operators and sensors alike."""

    kubernetes_conn_id: str
    api_group: str
    namespace: str
    deferrable: bool
    poll_interval: float
    wait_timeout: timedelta
    retry_failed_grace: timedelta
    stuck_after: timedelta

    def configure_cr(self, *, namespace: str, kubernetes_conn_id: str, api_group: str, deferrable: bool | None,
                     poll_interval: float, wait_timeout: timedelta,
                     retry_failed_grace: timedelta = DEFAULT_RETRY_FAILED_GRACE,
                     stuck_after: timedelta = DEFAULT_STUCK_AFTER) -> None:
        ApiGroup(api_group)  # refuse a wrong group when the DAG is parsed, naming the allowed values
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api_group = api_group
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.retry_failed_grace = retry_failed_grace
        self.stuck_after = stuck_after

    def _bounded(self, args: dict[str, Any] | None) -> dict[str, Any]:
        """The wait's own args plus the bounds past which a wait is hopeless (see triggers.predicates)."""
        # `asked_at`: a sub-command's phase cannot have begun before this wait asked for it (see predicates).
        return {"retry_failed_seconds": self.retry_failed_grace.total_seconds(),
                "stuck_seconds": self.stuck_after.total_seconds(), "asked_at": time.time(), **(args or {})}

    @cached_property
    def hook(self) -> TidbOperatorHook:
        from ..hooks.kubernetes import TidbOperatorHook

        return TidbOperatorHook(self.kubernetes_conn_id, api_group=self.api_group)

    def _deadline(self, context: Any) -> float:
        """An absolute deadline anchored on the task's start, stable across deferrals and retries."""
        ti = context.get("ti") if context else None
        started = getattr(ti, "start_date", None) or datetime.now(UTC)
        return started.timestamp() + self.wait_timeout.total_seconds()

    def wait_for(self, context: Any, *, plural: str, name: str, kind: str, args: dict[str, Any] | None = None,
                 method_name: str = "execute_complete", reevaluate_every: float | None = None,
                 current: dict[str, Any] | None = None) -> Any:
        """Wait until the predicate holds; returns the event (decided now, or poll mode) or defers.

        `current` is the CR as just read or written: when it already decides the wait, nothing defers.
        """
        deadline = self._deadline(context)
        args = self._bounded(args)
        # Those bounds are about time passing while the CR stays as it is: look again now and then.
        bound = min(self.retry_failed_grace, self.stuck_after).total_seconds()
        reevaluate_every = min(reevaluate_every or bound, max(bound / 4, 1.0), 150.0)
        if current is not None:
            verdict = evaluate(kind, plural, current, args)
            if verdict is not None:
                return {"status": verdict.status, "message": verdict.message, "name": name,
                        "namespace": self.namespace, "plural": plural, "kind": kind, "args": args,
                        "cr": current, **verdict.details}
        if self.deferrable:
            from ..triggers.custom_resource import CustomResourceTrigger

            trigger = CustomResourceTrigger(
                kubernetes_conn_id=self.kubernetes_conn_id, api_group=self.api_group, plural=plural,
                namespace=self.namespace, name=name, kind=kind, args=args, deadline=deadline,
                reevaluate_every=reevaluate_every, not_before=time.time() + min_deferral())
            # The framework's timeout is a backstop past our own deadline, so the trigger reports first.
            self.defer(trigger=trigger, method_name=method_name,  # type: ignore[attr-defined]
                       timeout=timedelta(seconds=max(60.0, deadline - time.time() + 60)))
        return self._poll(plural=plural, name=name, kind=kind, args=args, deadline=deadline)

    def _poll(self, *, plural: str, name: str, kind: str, args: dict[str, Any], deadline: float) -> dict[str, Any]:
        while True:
            obj = self.hook.get(plural, name, self.namespace)
            verdict = evaluate(kind, plural, obj, args)
            if verdict is not None:
                return {"status": verdict.status, "message": verdict.message, "name": name,
                        "namespace": self.namespace, "plural": plural, "kind": kind, "args": args, "cr": obj,
                        **verdict.details}
            if time.time() >= deadline:
                return {"status": "timeout", "message": f"deadline passed while waiting for {kind} on "
                                                        f"{self.namespace}/{name}", "name": name,
                        "namespace": self.namespace, "plural": plural, "kind": kind, "args": args, "cr": obj}
            time.sleep(min(self.poll_interval, max(0.1, deadline - time.time())))

    @staticmethod
    def check_event(event: dict[str, Any] | None) -> dict[str, Any]:
        """Turn a wait's event into its CR, or a failure that carries the operator's own message."""
        if not event:
            raise WaitFailed("the wait ended without an event")
        if event.get("status") != SUCCESS:
            raise WaitFailed(f"[{event.get('status')}] {event.get('message')}")
        return event


class TidbBaseOperator(TidbCrMixin, BaseOperator):
    template_fields = ("namespace",)

    def __init__(self, *, namespace: str, kubernetes_conn_id: str = "kubernetes_default",
                 api_group: str = "pingcap.com", deferrable: bool | None = None, poll_interval: float = 10.0,
                 wait_timeout: timedelta = DEFAULT_WAIT, retry_failed_grace: timedelta = DEFAULT_RETRY_FAILED_GRACE,
                 stuck_after: timedelta = DEFAULT_STUCK_AFTER, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.configure_cr(namespace=namespace, kubernetes_conn_id=kubernetes_conn_id, api_group=api_group,
                          deferrable=deferrable, poll_interval=poll_interval, wait_timeout=wait_timeout,
                          retry_failed_grace=retry_failed_grace, stuck_after=stuck_after)


def require_cr(hook: TidbOperatorHook, plural: str, name: str, namespace: str) -> dict[str, Any]:
    from ..hooks.kubernetes import CrNotFound

    try:
        return hook.require(plural, name, namespace)
    except CrNotFound as exc:
        raise WaitFailed(str(exc)) from exc
