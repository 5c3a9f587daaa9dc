"""``read_normal_form`` never accepts what the contract's decoder would not, and what it gives
is byte for byte the decoder's: canonical JSON, canonical key, partition key, id and type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.events import valid_events
from contracts.codec import Accepted, decode_event, encode_event
from contracts.events import EventType
from contracts.examples import valid_examples
from contracts.keys import canonical_key, partition_key
from contracts.normal_form import read_normal_form

CANONICAL = [json.loads(encode_event(decode_event(e.raw).event)) for e in valid_examples()]  # type: ignore[union-attr]

TRICKY: dict[str, list[Any]] = {
    "amount": [
        "1.5",
        1.5,
        "1e5",
        1e5,
        "-0",
        "0",
        0,
        "01.50",
        "1.1234567",
        " 2",
        "2 ",
        10**20,
        "1" * 19,
        "1.000000",
        "007",
        "01.5",
        "00",
        "10",
        "0.05",
        7,
        "7.",
        ".7",
        "\u0661",
        True,
        None,
        "NaN",
    ],
    "id": ["A", "a b", " A", "A ", "A/B", "A@B", "é", "A" * 128, "A" * 129, "-A", "A.-_:9", ""],
    "moment": [
        "2025-01-01T00:00:00Z",
        "2025-01-01T00:00:00+00:00",
        "2025-01-01T00:00:00.1234567Z",
        "0999-01-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-01-01T00:00:00z",
        "2025-01-01 00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T23:59:60Z",
        "2025-01-01T00:00:00.000Z",
        "2025-01-01T00:00:00.5Z",
        "2025-01-01T05:00:00+05:00",
        "2025-01-01T00:00Z",
        1735689600,
    ],
    "day": ["2025-01-01", "2025-02-30", " 2025-01-01", "2025-1-1", "20250101", "\u0662025-01-01"],
    "country": ["KZ", "kz", "Kz", "XX", "KZ ", "KZZ", "\u212aZ"],
    "flag": [True, False, 1, "true", None],
    "count": [0, 1, -1, 10_000_000, 10_000_001, -10_000_001, True, 1.0, "1"],
    "text": ["kz-customs", " kz", "kz ", 'k"z', "k\\z", "ké", "", "x" * 64, "x" * 65, "a\tb"],
    "snake": ["wheat", "Wheat", "wheat_flour", "_wheat", "wheat-flour", "w" * 64, "w" * 65],
    "mode": ["road", "Road", " road", "boat"],
    "stage": ["agreed", "cancelled", "Agreed", "planned"],
    "month": ["2025-01", "2025-13", "2025-00", " 2025-01", "2025-1"],
    "version": [1, 1.0, True, "1", 2],
}
FIELDS: dict[str, str] = {
    "event_id": "id",
    "occurred_at": "moment",
    "source": "text",
    "schema_version": "version",
    "shipment_id": "id",
    "origin": "country",
    "destination": "country",
    "mode": "mode",
    "commodity": "snake",
    "tonnes": "amount",
    "value_usd": "amount",
    "shipped_on": "day",
    "project_id": "id",
    "name": "text",
    "sector": "snake",
    "joint_venture": "flag",
    "investment_usd": "amount",
    "stage": "stage",
    "planned_jobs": "count",
    "reached_on": "day",
    "period": "month",
    "jobs_created": "count",
    "reported_on": "day",
}


def _same_as_the_contract(raw: bytes, expected: EventType | None) -> bool:
    """Checks the property on ``raw``; True when the fast reading took it."""
    normal = read_normal_form(raw, expected)
    if normal is None:
        return False
    result = decode_event(raw, expected_type=expected)
    assert isinstance(result, Accepted), (raw, result)
    event = result.event
    assert normal.value == encode_event(event)
    assert normal.key == canonical_key(event)
    assert normal.partition_key == partition_key(event)
    assert (normal.event_id, normal.type) == (event.event_id, event.type)
    return True


@st.composite
def edited_events(draw: st.DrawFn) -> tuple[bytes, EventType | None]:
    obj: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(CANONICAL))))
    for _ in range(draw(st.integers(0, 3))):
        data = obj.get("data")
        where = data if isinstance(data, dict) and draw(st.booleans()) else obj
        name = draw(st.sampled_from(sorted(where)))
        if name in FIELDS:
            where[name] = draw(st.sampled_from(TRICKY[FIELDS[name]]))
        elif draw(st.booleans()):
            del where[name]
    if draw(st.integers(0, 9)) == 0 and isinstance(obj.get("data"), dict):
        obj["data"]["extra"] = 1
    expected = draw(st.none() | st.sampled_from(list(EventType)))
    text = json.dumps(
        obj,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
    )
    return text.encode(), expected


@settings(max_examples=3000, deadline=None)
@given(case=edited_events())
def test_an_edited_event_is_read_as_the_contract_reads_it_or_left_to_it(
    case: tuple[bytes, EventType | None],
) -> None:
    _same_as_the_contract(*case)


@pytest.mark.parametrize("obj", CANONICAL, ids=lambda o: o["event_id"])
def test_every_canonical_form_is_normal(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    assert _same_as_the_contract(raw, EventType(obj["type"]))
    assert (
        read_normal_form(
            raw,
            EventType.HIRING_REPORT if obj["type"] != "hiring.report" else EventType.TRADE_SHIPMENT,
        )
        is None
    )  # another topic's: the decoder's


def test_the_benchmark_stream_is_read_in_normal_form() -> None:
    events = list(valid_events(3000))
    taken = sum(_same_as_the_contract(raw, EventType(kind)) for kind, raw in events)
    assert taken == len(events)


def test_every_single_edit_of_every_canonical_form_is_read_as_the_contract_reads_it() -> None:
    """Each field of each canonical example set, one at a time, to each tricky value."""
    cases = taken = 0
    for original in CANONICAL:
        for where in ("envelope", "data"):
            fields = original if where == "envelope" else original["data"]
            for name in sorted(set(fields) & set(FIELDS)):
                for value in TRICKY[FIELDS[name]]:
                    obj = json.loads(json.dumps(original))
                    (obj if where == "envelope" else obj["data"])[name] = value
                    raw = json.dumps(obj).encode()
                    for expected in (None, EventType(original["type"])):
                        cases += 1
                        taken += _same_as_the_contract(raw, expected)
    assert taken > cases // 4, (taken, cases)  # the fast reading is exercised, not bypassed
