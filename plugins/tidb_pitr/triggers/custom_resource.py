"""One watch-based trigger that waits on one CR until a predicate on its status holds.

By default (`[tidb_pitr] watch_mode = shared`) it subscribes to the shared watch of its namespace and resource
(hooks/watch_registry.py) and decides from the store's current state of its CR: at once after the first list (a
late subscriber misses nothing), again on each change of its CR, and every `reevaluate_every` seconds for
time-dependent predicates. "Not found" is confirmed with one GET first. While the shared watch fails, it polls its
CR with GETs of its own, within its own budget of transient errors.

`watch_mode = per-cr` keeps the older way: list the CR by name, then watch it (`fieldSelector=metadata.name=...`)
from the listed resourceVersion on a connection of its own; watch again when the server ends the stream; list
again on 410 Gone. Either way: transient errors retried with backoff within a budget, an absolute deadline, and
exactly one event, always with `status` and `message`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from ..hooks.kubernetes import AsyncTidbOperatorHook
from ..hooks.watch_registry import Slot, WatchKey, is_transient, registry, slim, watch_mode
from .predicates import NOT_FOUND, Verdict, evaluate

TIMEOUT, ERROR = "timeout", "error"


# What a resuming task reads of the CR (the views in cr/model.py, check_ours): the event carries only these, so
# the runner encodes, logs and stores no uid, resourceVersion, finalizers, owner references or managed fields.
_EVENT_METADATA = ("name", "namespace", "labels", "annotations", "creationTimestamp", "deletionTimestamp")


def event_cr(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The CR as an event carries it: apiVersion, kind, spec, status and the metadata a task reads."""
    obj = slim(obj)
    if obj is None:
        return None
    metadata = obj.get("metadata") or {}
    return {**{k: obj[k] for k in ("apiVersion", "kind", "spec", "status") if k in obj},
            "metadata": {k: metadata[k] for k in _EVENT_METADATA if k in metadata}}


class CustomResourceTrigger(BaseTrigger):
    def __init__(self, *, kubernetes_conn_id: str, api_group: str, plural: str, namespace: str, name: str,
                 kind: str, args: dict[str, Any] | None = None, deadline: float,
                 watch_timeout: int = 240, max_transient_errors: int = 10, backoff_max: float = 30.0,
                 reevaluate_every: float | None = None, not_before: float = 0.0) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api_group = api_group
        self.plural = plural
        self.namespace = namespace
        self.name = name
        self.kind = kind
        self.args = dict(args or {})
        self.deadline = deadline
        self.watch_timeout = watch_timeout
        self.max_transient_errors = max_transient_errors
        self.backoff_max = backoff_max
        # Time-dependent predicates (lag) must be re-checked even when the CR does not change.
        self.reevaluate_every = reevaluate_every
        # An event is never yielded before this time (epoch seconds): see `run`.
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "kubernetes_conn_id": self.kubernetes_conn_id, "api_group": self.api_group, "plural": self.plural,
            "namespace": self.namespace, "name": self.name, "kind": self.kind, "args": self.args,
            "deadline": self.deadline, "watch_timeout": self.watch_timeout,
            "max_transient_errors": self.max_transient_errors, "backoff_max": self.backoff_max,
            "reevaluate_every": self.reevaluate_every, "not_before": self.not_before,
        }

    def _event(self, status: str, message: str, obj: dict[str, Any] | None,
               details: dict[str, Any] | None = None) -> TriggerEvent:
        # Everything the resuming task needs is in the payload (dag.test() drops defer kwargs in 3.3).
        return TriggerEvent({
            "status": status, "message": message, "name": self.name, "namespace": self.namespace,
            "plural": self.plural, "api_group": self.api_group, "kind": self.kind, "args": self.args,
            "cr": event_cr(obj), **(details or {}),
        })

    def _verdict_event(self, verdict: Verdict, obj: dict[str, Any] | None) -> TriggerEvent:
        message = verdict.message
        if verdict.status == NOT_FOUND:
            kind = {"backups": "Backup", "restores": "Restore", "compactbackups": "CompactBackup"}[self.plural]
            message = f"{kind} {self.namespace}/{self.name} ({self.plural}.{self.api_group}) not found"
        return self._event(verdict.status, message, obj, verdict.details)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Airflow 3.3's scheduler fails a resumed task when the executor's "success" for the deferring attempt
        # arrives after the trigger's event has already put the task back to running (apache/airflow#71580,
        # #72716; fixes open). A wait that ends seconds after deferring is the case that loses: hold the event
        # until `not_before`, which leaves the scheduler time to see the deferring attempt end.
        async with aclosing(self._decide()) as decisions:
            async for event in decisions:
                delay = self.not_before - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield event
                return

    def _decide(self) -> AsyncIterator[TriggerEvent]:
        return self._decide_per_cr() if watch_mode() == "per-cr" else self._decide_shared()

    def _deadline_event(self, last: dict[str, Any] | None) -> TriggerEvent:
        return self._event(TIMEOUT, f"deadline passed while waiting for {self.kind} on {self.namespace}/{self.name}",
                           last)

    async def _decide_shared(self) -> AsyncIterator[TriggerEvent]:
        """Decide from the shared watch's store; see the module's docstring."""
        slot = registry().subscribe(WatchKey.of(self.kubernetes_conn_id, self.api_group, self.plural,
                                                self.namespace), self.name)
        try:
            event = await self._decide_from(slot)
        finally:
            # Left as soon as decided (not when the generator is closed, which a consumer may never do); never
            # awaits: this runs in a cancelled trigger's cleanup too.
            registry().leave(slot)
        yield event

    async def _decide_from(self, slot: Slot) -> TriggerEvent:
        watch = slot.watch
        errors = 0
        last: dict[str, Any] | None = None
        while True:
            remaining = self.deadline - time.time()
            if remaining <= 0:
                return self._deadline_event(last)
            polling = watch.should_poll()
            if not watch.synced and not polling:
                slot.changed.clear()
                await slot.wait(remaining)  # the first list (or a failure that sends us to GETs)
                continue
            slot.changed.clear()  # before reading: a change from here on wakes the wait below
            try:
                if polling:
                    obj = await watch.get(self.name)
                else:
                    obj = watch.objects.get(self.name)
                    if obj is None:  # the store may be behind the server: confirm with one GET
                        obj = await watch.get(self.name)
                errors = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    return self._event(ERROR, f"{type(exc).__name__}: {exc}", last)
                errors += 1
                if errors > self.max_transient_errors:
                    return self._event(ERROR, f"gave up after {errors - 1} transient errors; last: "
                                              f"{type(exc).__name__}: {exc}", last)
                delay = min(self.backoff_max, 0.5 * 2 ** (errors - 1)) * random.uniform(0.5, 1.0)
                self.log.warning("transient error %s (%d/%d); retrying in %.1fs", exc, errors,
                                 self.max_transient_errors, delay)
                await asyncio.sleep(min(delay, max(0.0, self.deadline - time.time())))
                continue
            last = obj
            verdict = evaluate(self.kind, self.plural, obj, self.args)
            if verdict is not None:
                return self._verdict_event(verdict, obj)
            wait = self.deadline - time.time()
            if self.reevaluate_every:
                wait = min(wait, self.reevaluate_every)
            if polling:  # one GET per backoff_max while the shared watch fails (it wakes us when it recovers)
                wait = min(wait, self.backoff_max * random.uniform(0.5, 1.0))
            await slot.wait(wait)

    async def _decide_per_cr(self) -> AsyncIterator[TriggerEvent]:
        hook = AsyncTidbOperatorHook(self.kubernetes_conn_id, api_group=self.api_group)
        errors = 0
        last: dict[str, Any] | None = None
        while True:
            if time.time() >= self.deadline:
                yield self._deadline_event(last)
                return
            try:
                async with hook.connection() as api:
                    obj, version = await hook.list_one(api, self.plural, self.name, self.namespace)
                    last = obj
                    errors = 0
                    verdict = evaluate(self.kind, self.plural, obj, self.args)
                    if verdict is not None:
                        yield self._verdict_event(verdict, obj)
                        return
                    outcome = await self._watch(hook, api, version)
                    if outcome is not None:
                        verdict, last = outcome
                        yield self._verdict_event(verdict, last)
                        return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status == 410:
                    self.log.info("watch of %s/%s expired (410); listing again", self.namespace, self.name)
                    continue
                if not is_transient(exc):
                    yield self._event(ERROR, f"{type(exc).__name__}: {exc}", last)
                    return
                errors += 1
                if errors > self.max_transient_errors:
                    yield self._event(ERROR, f"gave up after {errors - 1} transient errors; last: "
                                             f"{type(exc).__name__}: {exc}", last)
                    return
                delay = min(self.backoff_max, 0.5 * 2 ** (errors - 1)) * random.uniform(0.5, 1.0)
                self.log.warning("transient error %s (%d/%d); retrying in %.1fs", exc, errors,
                                 self.max_transient_errors, delay)
                await asyncio.sleep(min(delay, max(0.0, self.deadline - time.time())))

    async def _watch(self, hook: AsyncTidbOperatorHook, api: Any,
                     version: str) -> tuple[Verdict, dict[str, Any] | None] | None:
        """Watch until decided (returned), or until the deadline (None; the caller reports it)."""
        while time.time() < self.deadline:
            remaining = self.deadline - time.time()
            timeout = max(1, int(min(self.watch_timeout, remaining, self.reevaluate_every or remaining)))
            async for event in hook.watch_one(api, self.plural, self.name, self.namespace, version, timeout):
                kind = event.get("type")
                obj = event.get("raw_object") or event.get("object")
                if isinstance(obj, dict) and (obj.get("metadata") or {}).get("resourceVersion"):
                    version = obj["metadata"]["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                current = None if kind == "DELETED" else obj
                verdict = evaluate(self.kind, self.plural, current, self.args)
                if verdict is not None:
                    return verdict, current
            if self.reevaluate_every:
                # Nothing changed, but time did: re-check time-dependent predicates on a fresh read.
                obj, version = await hook.list_one(api, self.plural, self.name, self.namespace)
                verdict = evaluate(self.kind, self.plural, obj, self.args)
                if verdict is not None:
                    return verdict, obj
        return None
