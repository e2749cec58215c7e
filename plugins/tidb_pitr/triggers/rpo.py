"""The RPO watcher: an event trigger (an Asset's watcher) on the cluster's log backup, for alerts within seconds.

It watches the namespace's Backup CRs (the live log backup can change: a new one follows a Stopped one) and
re-evaluates the checkpoint lag whenever a CR changes and whenever the lag, growing by itself while nothing
changes, is due to cross the next threshold (and at least every `reevaluate_every` seconds). It yields one
event per announced change (`planning.rpo.announce`): warn, critical, recovered, and maintenance (a notice: the
log backup is paused for maintenance, as the log-control DAG recorded on its CR, and the lag is that pause's until
it ends). It runs until the triggerer stops it: errors are logged and retried with backoff, and the 10-minute guard
stays as the backstop. It reads the namespace's shared watch of Backups (hooks/watch_registry.py), the one the CR
waits of that namespace share; `[tidb_pitr] watch_mode = per-cr` gives it a list and watch of its own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from ..cr.api import BACKUPS
from ..cr.inventory import inventory_of
from ..planning import recoverable_window
from ..planning.pause import dead_pause_cause, maintenance_pause, resume_refused_by_gc
from ..planning.rpo import (
    MAINTENANCE,
    OK,
    RECOVERED,
    announce,
    held_level,
    lag_seconds,
    rpo_level,
    seconds_to_next_level,
    started_at,
)
from ..tso import tso_iso
from ..units import format_duration

if TYPE_CHECKING:
    from ..hooks.kubernetes import AsyncTidbOperatorHook

STATE_KEY = "rpo_announced"


class RpoLagTrigger(BaseEventTrigger):
    def __init__(self, *, kubernetes_conn_id: str, api_group: str, namespace: str, tidb_cluster: str,
                 cluster: str, warn_seconds: float, critical_seconds: float, starting_grace_seconds: float,
                 reevaluate_every: float = 30.0, watch_timeout: int = 240, backoff_max: float = 30.0) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id
        self.api_group = api_group
        self.namespace = namespace
        self.tidb_cluster = tidb_cluster
        self.cluster = cluster  # `namespace/name` as the config names it, for the alert
        self.warn_seconds = warn_seconds
        self.critical_seconds = critical_seconds
        # After a log start there is no checkpoint for up to a tracker interval: not a breach for this long.
        self.starting_grace_seconds = starting_grace_seconds
        self.reevaluate_every = reevaluate_every
        self.watch_timeout = watch_timeout
        self.backoff_max = backoff_max

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Only configuration: the triggerer identifies an asset watcher by its classpath and kwargs.
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "kubernetes_conn_id": self.kubernetes_conn_id, "api_group": self.api_group,
            "namespace": self.namespace, "tidb_cluster": self.tidb_cluster, "cluster": self.cluster,
            "warn_seconds": self.warn_seconds, "critical_seconds": self.critical_seconds,
            "starting_grace_seconds": self.starting_grace_seconds, "reevaluate_every": self.reevaluate_every,
            "watch_timeout": self.watch_timeout, "backoff_max": self.backoff_max,
        }

    # -- deciding (no I/O) -------------------------------------------------------------------------------
    def assess(self, objects: list[dict[str, Any]], now: datetime | None = None) -> dict[str, Any]:
        """The level and figures for these Backup CRs at `now`: the live log's lag (or, with none live, the
        newest log's, which no longer moves), and the recoverable window in brief."""
        now = now or datetime.now(UTC)
        inventory = inventory_of(objects, self.tidb_cluster, self.namespace)
        current = inventory.current_log() or inventory.newest_log()
        checkpoint = current.checkpoint_ts if current is not None else None
        lag = lag_seconds(checkpoint, now)
        began = started_at(current) if current is not None else None
        starting = (current is not None and lag is None and began is not None
                    and now - began <= timedelta(seconds=self.starting_grace_seconds))
        window = recoverable_window(inventory.snapshots, inventory.logs)
        held = maintenance_pause(current) if current is not None else None
        level = rpo_level(lag, self.warn_seconds, self.critical_seconds, starting=starting)
        return {
            "level": held_level(level, held.until if held is not None else None, now),
            "lag_seconds": None if lag is None else round(lag, 3),
            "log_backup": current.name if current is not None else None,
            "log_phase": current.phase if current is not None else None,
            "checkpoint_ts": str(checkpoint) if checkpoint else None,
            "checkpoint_time": tso_iso(checkpoint) if checkpoint else None,
            "window": window.brief(),
            "cause": dead_pause_cause(current) if current is not None and resume_refused_by_gc(current) else None,
            # until, at, run, reason: also once it has ended, so that the breach after it says so
            "maintenance_pause": held.to_dict() if held is not None else None,
        }

    def _payload(self, what: str, figures: dict[str, Any]) -> dict[str, Any]:
        lag = figures["lag_seconds"]
        lag_text = "unknown" if lag is None else format_duration(lag)
        held = figures.get("maintenance_pause")
        if what == RECOVERED:
            message = f"RPO recovered for {self.cluster}: checkpoint lag {lag_text}"
        elif what == MAINTENANCE:
            assert held is not None  # held_level gives MAINTENANCE only with a pause
            message = (f"RPO notice for {self.cluster}: log backup {figures['log_backup']} is paused for maintenance "
                       f"until {held['until']} (run {held['run']}: {held['reason'] or 'no reason given'}); "
                       f"checkpoint lag {lag_text}. Not a breach while the pause lasts, but nothing written since "
                       f"{figures['checkpoint_time'] or 'the pause'} is restorable until it resumes; a breach if it is "
                       f"still paused after {held['until']}")
        elif lag is None:
            what_log = f"log backup {figures['log_backup']}" if figures["log_backup"] else "no log backup at all"
            message = (f"RPO {what.upper()} for {self.cluster}: no log checkpoint ({what_log}); new writes are not "
                       "protected by point-in-time recovery")
        else:
            limit = self.warn_seconds if what == "warn" else self.critical_seconds
            message = (f"RPO {what.upper()} for {self.cluster}: checkpoint lag {lag_text} is over "
                       f"{format_duration(limit)}; a restore now loses what was written since "
                       f"{figures['checkpoint_time']}")
        if what in ("warn", "critical") and held is not None:
            message += (f". Its maintenance pause (run {held['run']}) ended at {held['until']} and it was not resumed: "
                        "is the log backup guard running?")
        if what != RECOVERED and figures.get("cause"):
            message += (f". {figures['cause']}: start a new log backup (the log backup guard's "
                        "start_new_log_backup), then take a snapshot")
        return {"status": what, "message": message, "cluster": self.cluster, **figures, "level": what,
                "warn_seconds": self.warn_seconds, "critical_seconds": self.critical_seconds,
                "observed_at": datetime.now(UTC).isoformat()}

    def _next_check(self, figures: dict[str, Any]) -> float:
        due = seconds_to_next_level(figures["lag_seconds"], self.warn_seconds, self.critical_seconds)
        held = figures.get("maintenance_pause")
        if held is not None:  # a pause that ends is a breach at once if the log backup is still paused
            ends = (datetime.fromisoformat(held["until"].replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()
            due = ends + 0.001 if ends > 0 and (due is None or ends < due) else due
        return max(0.05, min(self.reevaluate_every, due if due is not None else self.reevaluate_every))

    # -- the announced level, kept across triggerer restarts when Airflow gives a store -------------------
    async def _load_announced(self) -> str:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return OK
        try:
            value = await store.aget(STATE_KEY, OK)
        except Exception as exc:  # a store that cannot answer costs at most one repeated alert
            self.log.warning("could not read the announced RPO level: %s", exc)
            return OK
        return value if value in ("ok", "warn", "critical", MAINTENANCE) else OK

    async def _save_announced(self, level: str) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            try:
                await store.aset(STATE_KEY, level)
            except Exception as exc:
                self.log.warning("could not store the announced RPO level: %s", exc)

    # -- running ---------------------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ..hooks.watch_registry import watch_mode

        announced = await self._load_announced()
        events = self._run_per_namespace(announced) if watch_mode() == "per-cr" else self._run_shared(announced)
        async with aclosing(events) as stream:
            async for event in stream:
                yield event

    async def _announce(self, announced: str, objects: list[dict[str, Any]]) -> tuple[str, dict[str, Any],
                                                                                    TriggerEvent | None]:
        """The level now; an event when it is one to announce (and then stored as announced)."""
        figures = self.assess(objects)
        announced, what = announce(announced, figures["level"])
        if what is None:
            return announced, figures, None
        await self._save_announced(announced)
        return announced, figures, TriggerEvent(self._payload(what, figures))

    async def _run_shared(self, announced: str) -> AsyncIterator[TriggerEvent]:
        """On the namespace's shared watch of Backups (the CR waits of the namespace share it): assessed from its
        store after the first list, again on every change and when the next threshold is due; while the watch
        fails, from a list of its own every `backoff_max` seconds."""
        from ..hooks.watch_registry import WatchKey, registry

        slot = registry().subscribe(WatchKey.of(self.kubernetes_conn_id, self.api_group, BACKUPS, self.namespace),
                                    None)
        watch = slot.watch
        errors = 0
        try:
            while True:
                polling = watch.should_poll()
                slot.changed.clear()  # before reading: a change from here on wakes the wait below
                if not watch.synced and not polling:
                    await slot.wait(self.reevaluate_every)
                    continue
                if polling:
                    try:
                        objects = await watch.list_now()
                        errors = 0
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        errors += 1
                        delay = min(self.backoff_max, 0.5 * 2 ** min(errors - 1, 10)) * random.uniform(0.5, 1.0)
                        self.log.warning("RPO watch of %s: %s: %s (%d in a row); again in %.1fs", self.cluster,
                                         type(exc).__name__, exc, errors, delay)
                        await slot.wait(delay)
                        continue
                else:
                    objects = list(watch.objects.values())
                announced, figures, event = await self._announce(announced, objects)
                if event is not None:
                    yield event
                wait = self._next_check(figures)
                if polling:
                    wait = min(wait, self.backoff_max * random.uniform(0.5, 1.0))
                await slot.wait(wait)
        finally:
            registry().leave(slot)  # never awaits: runs in a cancelled trigger's cleanup too

    async def _run_per_namespace(self, announced: str) -> AsyncIterator[TriggerEvent]:
        """`[tidb_pitr] watch_mode = per-cr`: a list and a watch of the namespace's Backups of its own."""
        from ..hooks.kubernetes import AsyncTidbOperatorHook

        hook = AsyncTidbOperatorHook(self.kubernetes_conn_id, api_group=self.api_group)
        errors = 0
        while True:
            try:
                async with hook.connection() as api:
                    items, version = await hook.list_all(api, BACKUPS, self.namespace)
                    objects = {o["metadata"]["name"]: o for o in items}
                    errors = 0
                    # The watch is read by a task of its own into a queue, so that waiting for the next
                    # threshold is a plain timeout on the queue, and no event is yielded under a timeout.
                    queue: asyncio.Queue[Any] = asyncio.Queue()
                    pump = asyncio.create_task(self._pump(hook, api, version, queue))
                    try:
                        while True:
                            announced, figures, event = await self._announce(announced, list(objects.values()))
                            if event is not None:
                                yield event
                            try:
                                item = await asyncio.wait_for(queue.get(), self._next_check(figures))
                            except TimeoutError:
                                continue  # nothing changed but time: the lag is assessed again
                            while True:
                                if isinstance(item, BaseException):
                                    raise item
                                _apply(objects, item)
                                if queue.empty():
                                    break
                                item = queue.get_nowait()
                    finally:
                        pump.cancel()
                        await asyncio.gather(pump, return_exceptions=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if getattr(exc, "status", None) == 410:
                    self.log.info("watch of backups in %s expired (410); listing again", self.namespace)
                    continue
                errors += 1
                delay = min(self.backoff_max, 0.5 * 2 ** min(errors - 1, 10)) * random.uniform(0.5, 1.0)
                self.log.warning("RPO watch of %s: %s: %s (%d in a row); again in %.1fs", self.cluster,
                                 type(exc).__name__, exc, errors, delay)
                await asyncio.sleep(delay)

    async def _pump(self, hook: AsyncTidbOperatorHook, api: Any, version: str, queue: asyncio.Queue[Any]) -> None:
        """Watch the namespace's Backups from `version` into `queue`, again each time the server ends the watch;
        an error goes into the queue too and ends the pump (the caller lists again)."""
        try:
            while True:
                async for event in hook.watch(api, BACKUPS, self.namespace, version, self.watch_timeout):
                    obj = event.get("raw_object") or event.get("object")
                    if isinstance(obj, dict):
                        version = (obj.get("metadata") or {}).get("resourceVersion") or version
                        if event.get("type") != "BOOKMARK":
                            await queue.put(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await queue.put(exc)


def _apply(objects: dict[str, dict[str, Any]], event: dict[str, Any]) -> None:
    """One watch event applied to the namespace's Backups by name."""
    obj = event.get("raw_object") or event.get("object") or {}
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        return
    if event.get("type") == "DELETED":
        objects.pop(name, None)
    else:
        objects[name] = obj
