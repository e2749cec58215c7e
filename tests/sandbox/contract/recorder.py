"""Record every version of one CR through a real watch, and reduce each to the fields a trace names."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch

VERSION = "v1alpha1"
ABSENT = None
TSO = re.compile(r"^\d{15,20}$")


class Recorder:
    """Watches `plural/name` in `namespace` from before it exists until `stop()`; keeps (type, object) pairs."""

    def __init__(self, crs: Any, group: str, plural: str, namespace: str, name: str,
                 poll: Callable[[], None] | None = None) -> None:
        self.crs, self.group, self.plural, self.namespace, self.name = crs, group, plural, namespace, name
        self._poll = poll or (lambda: time.sleep(0.05))  # between two looks (a manual clock advances here)
        self._response: Any = None  # the open watch's HTTP response, its socket shut down by stop()
        listed = crs.list_namespaced_custom_object(group, VERSION, namespace, plural,
                                                   field_selector=f"metadata.name={name}")
        self._version = listed["metadata"]["resourceVersion"]
        # An object that exists already is recorded as it is now, then every change after.
        self.events: list[tuple[str, dict[str, Any]]] = [("EXISTING", o) for o in listed["items"]]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(self._list, self.group, VERSION,
                                           self.namespace, self.plural, field_selector=f"metadata.name={self.name}",
                                           resource_version=self._version, timeout_seconds=5):
                    obj = event["raw_object"]
                    self._version = obj["metadata"]["resourceVersion"]
                    with self._lock:
                        self.events.append((event["type"], obj))
                    if self._stop.is_set():
                        break
            except Exception:  # a broken stream: watch again from the last version seen
                time.sleep(0.1)
            finally:
                stream.stop()

    def _list(self, *args: Any, **kwargs: Any) -> Any:
        """The watch request, its response kept so that stop() can end the stream at once."""
        self._response = self.crs.list_namespaced_custom_object(*args, **kwargs)
        return self._response

    def latest(self) -> dict[str, Any] | None:
        with self._lock:
            if not self.events:
                return None
            kind, obj = self.events[-1]
            return None if kind == "DELETED" else obj

    def wait(self, predicate: Callable[[dict[str, Any] | None], bool], timeout: float = 30.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            current = self.latest()
            if self.events and predicate(current):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.plural}/{self.name}: condition not met within {timeout}s; "
                                     f"last status: {(current or {}).get('status')}")
            self._poll()

    def _catch_up(self, timeout: float = 5.0) -> None:
        """Wait until the watch has delivered the object's current version (or its deletion)."""
        try:
            listed = self.crs.list_namespaced_custom_object(self.group, VERSION, self.namespace, self.plural,
                                                            field_selector=f"metadata.name={self.name}")
        except Exception:  # noqa: BLE001 - then stop as before, on what has arrived
            return
        items = listed["items"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                seen = [obj["metadata"]["resourceVersion"] for _, obj in self.events]
                last_kind = self.events[-1][0] if self.events else None
            if (items and items[0]["metadata"]["resourceVersion"] in seen) or (not items and last_kind in
                                                                                ("DELETED", None)):
                return
            time.sleep(0.01)

    def deleted(self) -> bool:
        with self._lock:
            return bool(self.events) and self.events[-1][0] == "DELETED"

    def stop(self) -> list[tuple[str, dict[str, Any]]]:
        """Every version written until now, then the watch ends (without waiting for its timeout)."""
        self._catch_up()
        self._stop.set()
        # Shut the watch's socket down: the reader's blocked read returns, it sees the stop and ends. (Closing the
        # response instead would wait for the reader's lock, i.e. for the next event or the watch's timeout.)
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        with self._lock:
            return list(self.events)


def _path(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _condition(status: dict[str, Any], ctype: str | None) -> dict[str, Any]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return {}


def _text(cond: dict[str, Any], field: str) -> str | None:
    """A condition's reason or message; v2's `reason = type` (its stand-in for "no reason") counts as none."""
    value = cond.get(field) or None
    return None if field == "reason" and value == cond.get("type") else value


def field_value(kind: str, obj: dict[str, Any], spec: str) -> Any:
    """One reduced field. `spec` is a dotted path into the object, or one of:
    `deleted` (True once the CR is gone), `reason` / `message` / `conditionStatus` (of the condition whose
    type is the phase), `sub.<command>.<field>` (a log sub-command entry; `reason` / `message` of its phase)."""
    if spec == "deleted":
        return kind == "DELETED" or None
    if kind == "DELETED":
        return None
    status = obj.get("status") or {}
    if spec in ("reason", "message", "conditionStatus"):
        cond = _condition(status, status.get("phase"))
        return cond.get("status") or None if spec == "conditionStatus" else _text(cond, spec)
    if spec.startswith("sub."):
        _, command, field = spec.split(".", 2)
        entry = (status.get("logSubCommandStatuses") or {}).get(command) or {}
        if field in ("reason", "message"):
            return _text(_condition(entry, entry.get("phase")), field)
        return entry.get(field) or None
    value = _path(obj, spec)
    return value if value not in ("", [], {}) else None


def _reduced(kind: str, obj: dict[str, Any], spec: str) -> Any:
    """A field spec ending in `|tso` reduces a TSO to the word `<tso>`, so that a moving checkpoint is one step."""
    path, _, how = spec.partition("|")
    value = field_value(kind, obj, path)
    if how == "tso" and isinstance(value, str) and TSO.match(value):
        return "<tso>"
    return value


def reduce(events: list[tuple[str, dict[str, Any]]], fields: dict[str, str]) -> list[dict[str, Any]]:
    """Each version reduced to the trace's fields; consecutive equal reductions collapse into one."""
    out: list[dict[str, Any]] = []
    for kind, obj in events:
        row = {name: _reduced(kind, obj, spec) for name, spec in fields.items()}
        if not out or out[-1] != row:
            out.append(row)
    return out


def matches(expected: Any, actual: Any, variables: dict[str, str]) -> bool:
    """`null` = absent or empty; `<set>` = any value; `<tso>` = a decimal TSO string; `{var}` is substituted;
    `<contains:text>` = a string holding text; anything else must be equal."""
    if expected is None:
        return actual is None
    if expected == actual:
        return True
    if expected == "<set>":
        return actual is not None
    if expected == "<tso>":
        return isinstance(actual, str) and bool(TSO.match(actual))
    if isinstance(expected, str) and expected.startswith("<contains:") and expected.endswith(">"):
        return isinstance(actual, str) and expected[10:-1].format(**variables) in actual
    if isinstance(expected, str):
        return actual == expected.format(**variables)
    return expected == actual


def alternatives(expect: list[Any]) -> list[list[dict[str, Any]]]:
    """Expand `{optional: [steps]}` groups: each may or may not appear (upstream timing allows both)."""
    results: list[list[dict[str, Any]]] = [[]]
    for item in expect:
        if isinstance(item, dict) and set(item) == {"optional"}:
            results = [r + extra for r in results for extra in ([], list(item["optional"]))]
        else:
            results = [r + [item] for r in results]
    return results


def sequence_matches(expected: list[dict[str, Any]], actual: list[dict[str, Any]], variables: dict[str, str]) -> bool:
    """Step by step; a field a step does not name must be absent (so a field written early breaks the trace)."""
    if len(expected) != len(actual):
        return False
    for step, row in zip(expected, actual, strict=True):
        unknown = set(step) - set(row)
        if unknown:
            raise ValueError(f"trace step names fields the trace does not reduce to: {sorted(unknown)}")
        if not all(matches(step.get(name), value, variables) for name, value in row.items()):
            return False
    return True
