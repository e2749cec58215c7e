"""The shared watch's store and routing, without a server: for any run of watch events and re-lists, the store is
what the server holds, and exactly the subscribers of a changed name (and the namespace-wide ones) are woken, each
slot holding its name's latest value; settings name the field and its allowed values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidb_pitr.hooks.watch_registry import SharedWatch, WatchKey, linger_seconds, watch_mode

NAMES = ["a", "b", "c", "d"]


class _Quiet(SharedWatch):
    """A watch whose reflector does not run: the test feeds it events and lists."""

    def _ensure_running(self) -> None:
        pass


def _obj(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": str(rv), "managedFields": [{"big": "x"}]},
            "status": {"phase": f"p{rv}"}}


_event = st.tuples(st.just("event"), st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), st.sampled_from(NAMES))
_relist = st.tuples(st.just("relist"), st.dictionaries(st.sampled_from(NAMES), st.integers(1, 3)), st.none())


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.one_of(_event, _relist), max_size=30), subscribed=st.lists(st.sampled_from(NAMES), max_size=6),
       everyone=st.integers(0, 2))
def test_the_store_follows_the_server_and_only_changed_names_wake_their_subscribers(ops, subscribed, everyone):
    watch = _Quiet(WatchKey("conn", "pingcap.com", "v1alpha1", "backups", "ns"), on_idle=lambda w: None)
    watch._replace([], "1")  # the first list: empty
    slots = [watch.add(name) for name in subscribed] + [watch.add(None) for _ in range(everyone)]
    server: dict[str, int] = {}
    rv = 10
    for op, what, name in ops:
        for slot in slots:
            slot.changed.clear()
        if op == "event":
            rv += 1
            deleted = what == "DELETED"
            watch._apply(what, _obj(name, rv))
            if deleted:
                server.pop(name, None)
            else:
                server[name] = rv
            woken = {name}
        else:
            before = dict(server)
            server = {n: 100 * v + rv for n, v in what.items()}  # a list: whatever the server holds now
            watch._replace([_obj(n, v) for n, v in server.items()], str(rv))
            woken = {n for n in before.keys() | server.keys() if before.get(n) != server.get(n)}
        assert {n: int(o["metadata"]["resourceVersion"]) for n, o in watch.objects.items()} == server
        assert all("managedFields" not in o["metadata"] for o in watch.objects.values())  # slimmed
        for slot in slots:
            if slot.name is None:
                assert slot.changed.is_set() == bool(woken)
            else:
                assert slot.changed.is_set() == (slot.name in woken), (op, slot.name, woken)
                assert slot.value == watch.objects.get(slot.name)


def test_leaving_is_synchronous_and_the_last_leave_starts_the_linger():
    watch = _Quiet(WatchKey("conn", "pingcap.com", "v1alpha1", "backups", "ns"), on_idle=lambda w: None)
    first, second = watch.add("a"), watch.add("a")
    assert watch.subscribers == 2
    watch.remove(first, linger=60)  # no running task: nothing to linger for, and nothing awaited
    assert watch.subscribers == 1 and second in watch._slots["a"]


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("WATCH_MODE", "informer", "[tidb_pitr] watch_mode is 'informer'; allowed: shared, per-cr"),
    ("WATCH_LINGER_SECONDS", "-1", "[tidb_pitr] watch_linger_seconds is -1.0; allowed: a number of seconds >= 0"),
])
def test_a_bad_setting_names_the_field_and_the_allowed_values(monkeypatch, setting, value, message):
    monkeypatch.setenv(f"AIRFLOW__TIDB_PITR__{setting}", value)
    with pytest.raises(ValueError) as bad:
        watch_mode() if setting == "WATCH_MODE" else linger_seconds()
    assert str(bad.value) == message
