"""Every payload the API's response model (ui/model.py ClustersResponse) allows renders on the page: hypothesis
builds payloads from the model's JSON schema, the model validates and dumps each as the API sends it, and the page's
bundle renders every card of the batch under node (render_payloads.mjs, one process for the batch). Each card shows
its cluster's name, no section of it says "Could not show", and a time the model let through is a time the page
can read."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tidb_pitr.ui.model import ClustersResponse

RENDER = Path(__file__).with_name("render_payloads.mjs")
BATCH = 150  # payloads per run: about 150 cards, each with its restore form (about 7 s of CPU)
TIME_KEYS = {"time", "commit_time", "generated_at", "restore_time", "written", "run_end", "start", "end", "now",
             "slot", "until", "at", "next_runs"}  # next_runs: flow -> when it runs next
# What else a card's text says a part of it went wrong with, besides a thrown error.
BROKEN = ("Could not show", "unreadable time", "undefined", "null", "NaN", "[object Object]")


def times() -> st.SearchStrategy[str]:
    """A time as the model takes it: any instant with a zone, in the RFC 3339 spellings (fractions of 0 to 9
    digits, Z or an offset). Other ISO-8601 spellings are refused by the model (test_model_refuses_...)."""
    zones = st.one_of(st.just(UTC), st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))))
    moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=zones)
    spell = st.sampled_from([
        lambda d: d.isoformat(timespec="seconds"),
        lambda d: d.isoformat().replace("+00:00", "Z"),
        lambda d: d.isoformat(timespec="milliseconds"),
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123" + d.isoformat()[-6:],  # nanoseconds, as Go writes
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + str(d.microsecond)[:1] + "Z",
    ])
    return st.builds(lambda d, f: f(d), moments, spell)


def from_schema(node: dict[str, Any], defs: dict[str, Any], key: str = "") -> st.SearchStrategy[Any]:
    """Values for one node of the model's JSON schema; times and TSOs by the field's name and pattern."""
    if "$ref" in node:
        return from_schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs, key)
    if "anyOf" in node:
        return st.one_of([from_schema(member, defs, key) for member in node["anyOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "string":
        if key in TIME_KEYS:
            return times()
        if "pattern" in node:
            return st.integers(0, 2**64 - 1).map(str)  # a TSO: a uint64 as decimal digits
        return st.text(max_size=12).filter(lambda text: not any(word in text for word in BROKEN))  # no false alarm
    if kind == "number":
        return st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
    if kind == "integer":
        return st.integers(-(2**53), 2**53)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(node.get("items", {}), defs, key), max_size=2)
    if kind == "object" and "properties" in node:
        # Every field, the optional ones too (the API dumps them all; null comes from the field's own anyOf).
        typed = st.fixed_dictionaries({name: from_schema(prop, defs, name)
                                       for name, prop in node["properties"].items()})
        extra = node.get("additionalProperties")
        if not extra:
            return typed
        # Other keys the model lets through: DAG ids of other flows, or whatever else the guard published.
        keys = st.sampled_from(["snapshot", "retention", "compaction", "drill"]) if isinstance(extra, dict) \
            else st.text(max_size=6)
        values = from_schema(extra, defs) if isinstance(extra, dict) else st.one_of(
            st.none(), st.integers(), st.text(max_size=6), st.lists(st.integers(), max_size=2))
        return st.builds(lambda others, own: {**others, **own}, st.dictionaries(keys, values, max_size=2), typed)
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):  # a mapping, e.g. next_runs
        return st.dictionaries(st.sampled_from(["snapshot", "retention", "drill"]),
                               from_schema(node["additionalProperties"], defs, key), max_size=3)
    return st.none()


def responses() -> st.SearchStrategy[dict[str, Any]]:
    """Payloads as the API sends them: generated from the schema, validated and dumped by the model."""
    schema = ClustersResponse.model_json_schema(by_alias=True)
    raw = from_schema(schema, schema["$defs"])
    return raw.map(lambda payload: ClustersResponse.model_validate(_with_rules(payload)).model_dump(
        mode="json", by_alias=True))


def _with_rules(payload: dict[str, Any]) -> dict[str, Any]:
    """The model's rule that its JSON schema cannot say: a status comes with the guard run that published it."""
    for entry in payload["clusters"]:
        if entry.get("status") is not None and entry.get("published") is None:
            entry["published"] = {"run_id": "scheduled__guard", "run_state": "success"}
    return payload


def batch() -> list[dict[str, Any]]:
    """BATCH payloads, the same on every run (derandomized), so a failure repeats."""
    found: list[dict[str, Any]] = []

    @settings(max_examples=BATCH, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(responses())
    def collect(payload: dict[str, Any]) -> None:
        found.append(payload)

    collect()
    return found


def test_every_payload_the_response_model_allows_renders_each_card_with_its_cluster_name(tmp_path):
    node = shutil.which("node")
    assert node, "node is needed to test the page's bundle (Debian: apt-get install nodejs)"
    payloads = batch()
    cards = {(i, c): entry for i, p in enumerate(payloads) for c, entry in enumerate(p["clusters"])}
    assert len(cards) >= BATCH // 2  # the batch has cards to render, not only empty lists
    file = tmp_path / "payloads.json"
    file.write_text(json.dumps({"payloads": payloads}), encoding="utf-8")
    out = subprocess.run([node, str(RENDER), str(file)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shown = [json.loads(line) for line in out.stdout.split("\n") if line]  # not splitlines: a name may hold U+2028
    assert [(s["index"], s["card"]) for s in shown] == list(cards)
    for card in shown:
        entry = cards[card["index"], card["card"]]
        where = f"payload {card['index']}, card {card['card']}: {json.dumps(entry)}"
        assert "thrown" not in card, f"{where}\n{card.get('thrown')}"
        assert entry["id"] in card["text"], where  # the header names the cluster
        for part in ("text", "form"):
            broken = [b for b in BROKEN if b in card[part]]
            assert not broken, f"{where}\nthe {part} says {broken}: {card[part]}"


def test_the_model_refuses_iso_spellings_that_a_browser_cannot_read():
    """Python reads these; Date.parse gives NaN for each, so the model refuses them, naming the field."""
    for spelled in ("20261121T053000+0000", "2026-W47-6T05:30:00+00:00", "2026-11-21T05Z", "2026-11-21 05:30:00Z",
                    "2026-11-21T05:30:00,5Z", "2026-11-21T05:30:00"):
        with pytest.raises(ValidationError, match=r"now\n.*not an RFC 3339 time with its zone"):
            ClustersResponse.model_validate({"now": spelled, "clusters": []})
    assert ClustersResponse.model_validate({"now": "2026-11-21T05:30:00.123456789+08:00", "clusters": []})
