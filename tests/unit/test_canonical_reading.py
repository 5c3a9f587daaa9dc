"""Metrics reads ingest's canonical JSON without validating it again (``canonical.py``): for any
event ingest accepts, in any of the forms upstream may write it, the record read from its
canonical form equals the record of the validated contract model."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.codec import Accepted, decode_event, encode_event
from contracts.examples import valid_examples
from services.metrics.canonical import NotAnEvent, held_of
from services.metrics.entities import Hiring, Project, Shipment, record_of
from tests.unit.test_metrics_builders import hiring, milestone, shipment

EXAMPLES = [json.loads(e.raw) for e in valid_examples()]

_amounts = st.one_of(
    st.integers(0, 10**12),
    st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False).map(str),
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False).map(float),
)
_moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([timezone(timedelta(hours=h)) for h in (-7, 0, 3, 5)]),
)
_padded = st.sampled_from(["", " ", "  "])


@st.composite
def accepted_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid example with fields redrawn in forms ingest accepts and normalises."""
    obj: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(EXAMPLES))))
    obj["occurred_at"] = draw(_moments).isoformat(
        timespec=draw(st.sampled_from(["seconds", "microseconds"]))
    )
    obj["event_id"] = draw(_padded) + obj["event_id"] + draw(_padded)
    data = obj["data"]
    for name in ("tonnes", "value_usd", "investment_usd"):
        if name in data and data[name] is not None:
            data[name] = draw(_amounts)
    if "value_usd" in data and draw(st.booleans()):
        data["value_usd"] = None
    for name in ("origin", "destination"):
        if name in data:
            data[name] = draw(st.sampled_from([str.lower, str.upper]))(data[name])
    if "jobs_created" in data:
        data["jobs_created"] = draw(st.integers(-(10**6), 10**6))
    if "planned_jobs" in data:
        data["planned_jobs"] = draw(st.integers(0, 10**6))
    return obj


def _tonnes_positive(obj: dict[str, Any]) -> bool:
    tonnes = obj["data"].get("tonnes")
    return tonnes is None or Decimal(str(tonnes)) > 0


@settings(max_examples=400, deadline=None)
@given(obj=accepted_events())
def test_the_canonical_form_reads_as_the_validated_event(obj: dict[str, Any]) -> None:
    result = decode_event(json.dumps(obj).encode())
    if not isinstance(result, Accepted):
        assert not _tonnes_positive(obj) or result.reason.value == "schema", result
        return
    canonical = encode_event(result.event)
    assert held_of(canonical) == record_of(result.event)


@pytest.mark.parametrize("example", valid_examples(), ids=lambda e: e.name)
def test_every_example_reads_the_same_both_ways(example: Any) -> None:
    result = decode_event(example.raw)
    assert isinstance(result, Accepted)
    assert held_of(encode_event(result.event)) == record_of(result.event)


def test_a_valid_event_not_in_canonical_form_is_validated_instead() -> None:
    """An event as upstream wrote it (amounts as numbers, a code in lower case): msgspec takes
    the numbers, and a field it cannot read sends it to the contract's validation."""
    raw = next(e.raw for e in valid_examples() if e.name.startswith("trade.shipment/road"))
    obj = json.loads(raw)
    obj["data"]["shipped_on"] = obj["data"]["shipped_on"] + " "  # pydantic trims; msgspec refuses
    result = decode_event(json.dumps(obj).encode())
    assert isinstance(result, Accepted)
    assert held_of(json.dumps(obj).encode()) == record_of(result.event)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{}", b"[1]", b'{"type": "trade.shipment"}', b"\xff", b'{"event_id": 1}'],
)
def test_what_is_no_event_either_way_is_refused(raw: bytes) -> None:
    with pytest.raises(NotAnEvent):
        held_of(raw)


# -- the builders fill every field, in order --------------------------------------------------
# They build the named tuples with ``tuple.__new__`` (no argument check): each field is checked
# here by name, against values worked out by hand, both from the model and the canonical JSON.

_VERSION = 1_741_824_000_000_000  # 2025-03-13T00:00:00Z in microseconds


@pytest.mark.parametrize(
    ("event", "expected_key", "expected"),
    [
        (
            shipment(
                "e-1",
                shipment_id="S-9",
                tonnes="12.5",
                value_usd="3000.000001",
                commodity="wheat_flour",
                occurred_at="2025-03-13T00:00:00Z",
            ),
            "S-9",
            Shipment(
                version_us=_VERSION,
                event_id="e-1",
                origin="KZ",
                destination="BY",
                mode="road",
                commodity="wheat_flour",
                tonnes=12_500_000,
                value_usd=3_000_000_001,
                day=date(2025, 3, 1).toordinal(),
            ),
        ),
        (
            milestone(
                "e-2",
                project_id="P-7",
                stage="financed",
                joint_venture=True,
                investment_usd="25.5",
                planned_jobs=40,
                occurred_at="2025-03-13T00:00:00Z",
            ),
            "P-7",
            Project(
                version_us=_VERSION,
                event_id="e-2",
                project_id="P-7",
                sector="agricultural_machinery",
                joint_venture=True,
                stage="financed",
                investment_usd=25_500_000,
                planned_jobs=40_000_000,
                day=date(2025, 3, 1).toordinal(),
            ),
        ),
        (
            hiring(
                "e-3",
                project_id="P-7",
                period="2025-02",
                jobs=-3,
                occurred_at="2025-03-13T00:00:00Z",
            ),
            "P-7/2025-02",
            Hiring(
                version_us=_VERSION,
                event_id="e-3",
                project_id="P-7",
                jobs_created=-3_000_000,
                day=date(2025, 2, 1).toordinal(),
            ),
        ),
    ],
    ids=["shipment", "milestone", "hiring"],
)
def test_each_builder_fills_every_field(event: Any, expected_key: str, expected: Any) -> None:
    for held in (record_of(event), held_of(encode_event(event))):
        _, key, record = held
        assert key == expected_key
        assert type(record) is type(expected)
        assert record._asdict() == expected._asdict()
