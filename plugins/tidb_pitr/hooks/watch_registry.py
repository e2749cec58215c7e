"""The shared watch registry: one list-then-watch per (connection, API group, resource, namespace) in an event loop,
a store of the current objects, and per-name subscriber slots that the triggers wait on.

A triggerer runs up to 1000 waits in one loop. Each wait used to hold its own API client, TLS context and watch
connection (1.6 MiB and one file descriptor each, benchmarks/bench_triggerer.py). Here a wait subscribes to the
`SharedWatch` of its key instead, as client-go's informers and kopf share one watch among many consumers:

- The watch follows client-go's Reflector (kubernetes/client-go tools/cache/reflector.go): `list` then `watch` from
  the list's resourceVersion with `allowWatchBookmarks` and a random 5-10 min `timeoutSeconds`; watch again from the
  last resourceVersion after a normal end; list again at once on 410 Gone (`isExpiredError`); back off 0.8 s
  doubling to 30 s after other errors (`NewExponentialBackoffManager(800ms, 30s, ...)`). After a cut stream it
  watches again from the last resourceVersion rather than listing (cheaper; an expired one answers 410, then it
  lists).
- The store holds each object `slim`med, by name. A subscriber's `Slot` is a latest-value cell with a flag: an
  event sets only the slots of its object's name (plus the namespace-wide ones), so it cannot overflow and costs a
  dict lookup per event (kopf routes each event to its object's queue alike).
- The watch task belongs to the registry, never to a subscriber: cancelling a trigger cancels only its wait.
  Leaving is synchronous (a cancelled trigger's cleanup is itself cancelled, apache/airflow#56372); after the last
  subscriber leaves, the watch lingers `linger` seconds, then stops.
- While the watch fails, it says so (`failing_since`, `last_error`); subscribers then poll with GETs of their own
  rather than fail together.

One registry per event loop: `dag.test()` runs each trigger in a loop of its own, the triggerer all of them in one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..cr.api import ApiGroup
from .kubernetes import AsyncTidbOperatorHook

log = logging.getLogger(__name__)

WATCH_MODES = ("shared", "per-cr")
DEFAULT_LINGER = 60.0
# A watch failing this long (or with an error that waiting does not fix) sends its subscribers to their own GETs.
FALLBACK_AFTER = 10.0
# client-go: minWatchTimeout 5 min, timeoutSeconds = minWatchTimeout * (rand + 1)
MIN_WATCH_TIMEOUT = 300
BACKOFF_FIRST, BACKOFF_MAX = 0.8, 30.0
_BULKY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def watch_mode() -> str:
    """`[tidb_pitr] watch_mode`: `shared` (default; one watch per namespace and resource in a triggerer) or
    `per-cr` (each wait lists and watches its own CR, on its own connection)."""
    from airflow.configuration import conf

    mode = (conf.get("tidb_pitr", "watch_mode", fallback="shared") or "shared").strip().lower()
    if mode not in WATCH_MODES:
        raise ValueError(f"[tidb_pitr] watch_mode is {mode!r}; allowed: {', '.join(WATCH_MODES)}")
    return mode


def linger_seconds() -> float:
    """`[tidb_pitr] watch_linger_seconds` (default 60): how long a shared watch outlives its last subscriber, so
    that waits coming and going do not list the namespace again each time."""
    from airflow.configuration import conf

    value = conf.getfloat("tidb_pitr", "watch_linger_seconds", fallback=DEFAULT_LINGER)
    if value < 0:
        raise ValueError(f"[tidb_pitr] watch_linger_seconds is {value}; allowed: a number of seconds >= 0")
    return value


def slim(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The CR without what no task reads and every log of an event would print (managedFields, kubectl's copy of
    the last applied object)."""
    if obj is None:
        return None
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in _BULKY_ANNOTATIONS}
    if "annotations" in metadata:
        metadata["annotations"] = annotations
    return {**obj, "metadata": metadata}


def is_transient(exc: BaseException) -> bool:
    """Worth waiting out: 429/5xx, a cut or refused connection, a timeout."""
    import aiohttp
    from kubernetes_asyncio.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504)
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, json.JSONDecodeError))


@dataclass(frozen=True)
class WatchKey:
    """What one shared watch serves: every wait on this resource of this namespace through this connection."""

    conn_id: str
    group: str
    version: str
    plural: str
    namespace: str

    @classmethod
    def of(cls, conn_id: str, api_group: str, plural: str, namespace: str) -> WatchKey:
        group = ApiGroup(api_group)
        return cls(conn_id, group.group, group.version, plural, namespace)


@dataclass(eq=False)
class Slot:
    """One subscriber's cell: the latest value of its CR (`name`; None: the whole namespace) and a flag set when it
    changed. Setting a flag twice is one wake-up: nothing queues, nothing overflows."""

    watch: SharedWatch
    name: str | None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    value: dict[str, Any] | None = None

    async def wait(self, timeout: float) -> bool:
        """True when something changed (or the watch's health did) within `timeout` seconds."""
        try:
            await asyncio.wait_for(self.changed.wait(), max(0.0, timeout))
            return True
        except TimeoutError:
            return False


class SharedWatch:
    """One list-then-watch of a key, its store and its subscribers (see the module's docstring)."""

    def __init__(self, key: WatchKey, *, on_idle: Any) -> None:
        self.key = key
        self.hook = AsyncTidbOperatorHook(key.conn_id, api_group=key.group)
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = False
        self.failing_since: float | None = None
        self.last_error: BaseException | None = None
        self.resource_version = ""
        self.counts = {"lists": 0, "watches": 0, "expired": 0, "errors": 0, "events": 0}
        self._slots: dict[str, set[Slot]] = {}
        self._everyone: set[Slot] = set()
        self._api: Any = None
        self._on_idle = on_idle
        self._linger: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    # -- subscribers (synchronous: safe in a cancelled task's cleanup) ------------------------------------
    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._slots.values()) + len(self._everyone)

    def add(self, name: str | None) -> Slot:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        slot = Slot(self, name, value=self.objects.get(name) if name is not None else None)
        if name is None:
            self._everyone.add(slot)
        else:
            self._slots.setdefault(name, set()).add(slot)
        self._ensure_running()
        return slot

    def _ensure_running(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"shared-watch {self.describe()}")

    def remove(self, slot: Slot, linger: float) -> None:
        if slot.name is None:
            self._everyone.discard(slot)
        else:
            named = self._slots.get(slot.name)
            if named is not None:
                named.discard(slot)
                if not named:
                    del self._slots[slot.name]
        if self.subscribers == 0 and self._linger is None and self.task is not None:
            self._linger = asyncio.get_running_loop().call_later(linger, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        self._linger = None
        if self.subscribers == 0:
            self.stop()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._on_idle(self)

    def describe(self) -> str:
        k = self.key
        return f"{k.plural}.{k.group} in {k.namespace} via {k.conn_id}"

    # -- what subscribers read -------------------------------------------------------------------------
    def should_poll(self, now: float | None = None) -> bool:
        """True while the watch fails with an error waiting does not fix, or has failed for FALLBACK_AFTER s."""
        if self.failing_since is None:
            return False
        if self.last_error is not None and not is_transient(self.last_error):
            return True
        return (now or time.monotonic()) - self.failing_since >= FALLBACK_AFTER

    async def get(self, name: str) -> dict[str, Any] | None:
        """One GET of `name` (None: not there), on the shared client while it is up, else on a client of its own."""
        shared = self._api
        if shared is not None:
            try:
                return slim(await self.hook.get(shared, self.key.plural, name, self.key.namespace))
            except Exception:
                if self._api is shared:
                    raise
                # The watch closed its client under this request (it failed meanwhile): ask on a client of our own.
        async with self.hook.connection() as api:
            return slim(await self.hook.get(api, self.key.plural, name, self.key.namespace))

    async def list_now(self) -> list[dict[str, Any]]:
        """One list of the namespace's objects (a namespace-wide subscriber's fallback poll)."""
        async with self.hook.connection() as api:
            items, _ = await self.hook.list_all(api, self.key.plural, self.key.namespace)
        return [o for o in (slim(i) for i in items) if o is not None]

    # -- the reflector -----------------------------------------------------------------------------------
    async def _run(self) -> None:
        # Not the first subscriber's task: its log context (trigger id) must not label the shared watch's lines.
        # A portal as Airflow's run_trigger gives each trigger, for sync SDK calls (the connection) from this task.
        import structlog
        from kubernetes_asyncio.client.exceptions import ApiException

        structlog.contextvars.clear_contextvars()
        if os.environ.get("AIRFLOW_DISABLE_GREENBACK_PORTAL", "").lower() != "true":
            try:
                import greenback

                await greenback.ensure_portal()
            except ImportError:
                pass
        failures = 0
        need_list = True
        while True:
            try:
                # A new client after any error: a credential that expired (exec auth) is loaded again.
                async with self.hook.connection() as api:
                    self._api = api
                    try:
                        while True:
                            if need_list:
                                await self._list(api)
                                need_list = False
                                failures = 0
                            try:
                                if await self._watch(api):
                                    failures = 0  # the server answered: a later error starts the backoff afresh
                            except ApiException as exc:
                                if exc.status != 410:
                                    raise
                                # Expired: list again at once, on the same client (isExpiredError in client-go).
                                self.counts["expired"] += 1
                                log.info("watch of %s expired (410 Gone); listing again", self.describe())
                                need_list = True
                    finally:
                        self._api = None  # closed with the block: GETs meanwhile open their own
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.counts["errors"] += 1
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1)) * random.uniform(1.0, 1.5)
                self._failing(exc)
                log.warning("shared watch of %s: %s: %s (%d in a row); again in %.1fs", self.describe(),
                            type(exc).__name__, exc, failures, delay)
                await asyncio.sleep(delay)

    async def _list(self, api: Any) -> None:
        items, version = await self.hook.list_all(api, self.key.plural, self.key.namespace)
        self.counts["lists"] += 1
        self._replace(items, version)

    def _replace(self, items: list[dict[str, Any]], version: str) -> None:
        """The store becomes the list; the subscribers of every name whose object changed meanwhile are told."""
        fresh = {o["metadata"]["name"]: slimmed for o in items if (slimmed := slim(o)) is not None}
        changed = {n for n in fresh.keys() | self.objects.keys()
                   if _rv(fresh.get(n)) != _rv(self.objects.get(n))}
        self.objects = fresh
        self.resource_version = version
        first = not self.synced
        self.synced = True
        self._healthy()
        if first:
            self._notify_all()  # everyone waited for the first list
        else:
            for name in changed:
                self._notify(name)

    async def _watch(self, api: Any) -> bool:
        """One watch request from `resource_version` until the server ends it (True: it answered 200).

        Each line is parsed once (kubernetes_asyncio's Watch parses an object event three times)."""
        from kubernetes_asyncio.client.exceptions import ApiException

        timeout = int(MIN_WATCH_TIMEOUT * (random.random() + 1.0))
        k = self.key
        response = await self.hook.objects(api).list_namespaced_custom_object(
            k.group, k.version, k.namespace, k.plural, watch=True, allow_watch_bookmarks=True,
            resource_version=self.resource_version, timeout_seconds=timeout,
            _preload_content=False, _request_timeout=timeout + 15)
        self.counts["watches"] += 1
        try:
            if not 200 <= response.status < 300:
                body = (await response.read())[:300].decode("utf-8", "replace")
                raise ApiException(status=response.status, reason=f"{response.reason}: {body}")
            self._healthy()
            while line := await response.content.readline():
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":  # a too-old resourceVersion is answered 200 + one ERROR event (code 410)
                    raise ApiException(status=obj.get("code") or 500,
                                       reason=f"{obj.get('reason')}: {obj.get('message')}")
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self.resource_version = version
                if kind == "BOOKMARK":
                    continue
                self._apply(kind, obj)
            return True
        finally:
            response.release()

    def _apply(self, kind: str | None, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return
        self.counts["events"] += 1
        if kind == "DELETED":
            self.objects.pop(name, None)
        else:
            slimmed = slim(obj)
            assert slimmed is not None
            self.objects[name] = slimmed
        self._notify(name)

    def _notify(self, name: str) -> None:
        value = self.objects.get(name)
        for slot in self._slots.get(name, ()):
            slot.value = value
            slot.changed.set()
        for slot in self._everyone:
            slot.changed.set()

    def _notify_all(self) -> None:
        for slot in self._every_slot():
            if slot.name is not None:
                slot.value = self.objects.get(slot.name)
            slot.changed.set()

    def _every_slot(self) -> Iterator[Slot]:
        for named in self._slots.values():
            yield from named
        yield from self._everyone

    def _healthy(self) -> None:
        if self.failing_since is not None:
            self.failing_since, self.last_error = None, None
            self._notify_all()  # pollers go back to the store

    def _failing(self, exc: BaseException) -> None:
        self.last_error = exc
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            loop = asyncio.get_running_loop()
            # Wake the subscribers when they should start polling (or at once, for an error that does not heal).
            loop.call_later(0 if not is_transient(exc) else FALLBACK_AFTER, self._wake_if_failing)

    def _wake_if_failing(self) -> None:
        if self.failing_since is not None:
            self._notify_all()


def _rv(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


class WatchRegistry:
    """The shared watches of one event loop, by key."""

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self.watches: dict[WatchKey, SharedWatch] = {}

    def subscribe(self, key: WatchKey, name: str | None) -> Slot:
        """A slot for `name` (None: every object of the key) on the key's watch, started if none runs."""
        watch = self.watches.get(key)
        if watch is None:
            watch = self.watches[key] = SharedWatch(key, on_idle=self._forget)
        return watch.add(name)

    def leave(self, slot: Slot) -> None:
        """Synchronous, never awaits: a cancelled trigger's cleanup may not await."""
        slot.watch.remove(slot, self.linger)

    def _forget(self, watch: SharedWatch) -> None:
        if self.watches.get(watch.key) is watch:
            del self.watches[watch.key]


_REGISTRIES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WatchRegistry] = weakref.WeakKeyDictionary()


def registry() -> WatchRegistry:
    """The running loop's registry (made on first use, with `[tidb_pitr] watch_linger_seconds`)."""
    loop = asyncio.get_running_loop()
    found = _REGISTRIES.get(loop)
    if found is None:
        found = _REGISTRIES[loop] = WatchRegistry(linger_seconds())
    return found
