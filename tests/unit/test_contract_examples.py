"""Committed example messages decode as their labels say; canonical JSON round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.codec import Accepted, Rejected, RejectReason, decode_event, encode_event
from contracts.events import EventType
from contracts.examples import (
    EXAMPLES_DIR,
    InvalidExample,
    ValidExample,
    invalid_examples,
    valid_examples,
)

VALID = valid_examples()
INVALID = invalid_examples()
INVALID_DIR: Path = EXAMPLES_DIR / "invalid"


def _accepted(example: ValidExample) -> Accepted:
    result = decode_event(example.raw, expected_type=example.event_type)
    assert isinstance(result, Accepted), f"{example.name} was rejected: {result}"
    return result


def test_there_are_examples_of_both_kinds() -> None:
    """The example folders are found and hold valid and invalid messages."""
    assert len(VALID) >= 3
    assert len(INVALID) >= 10


@pytest.mark.parametrize("example", VALID, ids=[e.name for e in VALID])
def test_valid_example_is_accepted(example: ValidExample) -> None:
    """A valid example decodes to an event of its folder's type on its own topic."""
    result = _accepted(example)
    assert result.event.type is example.event_type


@pytest.mark.parametrize("example", INVALID, ids=[e.name for e in INVALID])
def test_invalid_example_is_rejected_for_its_labelled_reason(example: InvalidExample) -> None:
    """An invalid example is rejected with the catalog's reason and, if labelled, its field."""
    result = decode_event(example.raw, expected_type=example.sent_as)
    assert isinstance(result, Rejected), f"{example.name} was accepted ({example.why})"
    assert result.reason == example.reason, result.detail
    assert result.detail, "a rejection must say why"
    if example.field is not None:
        locations = [error.loc for error in result.errors]
        assert example.field in locations, f"{example.field!r} not in {locations}"


def test_catalog_lists_every_invalid_file_exactly_once() -> None:
    """Each file in examples/invalid/ (but the catalog) has exactly one catalog entry."""
    catalog = yaml.safe_load((INVALID_DIR / "catalog.yaml").read_text(encoding="utf-8"))
    listed = [entry["file"] for entry in catalog]
    on_disk = sorted(p.name for p in INVALID_DIR.iterdir() if p.name != "catalog.yaml")
    duplicates = sorted({name for name in listed if listed.count(name) > 1})
    assert duplicates == [], f"listed more than once: {duplicates}"
    assert sorted(listed) == on_disk


def test_catalog_entries_carry_a_reason_and_an_explanation() -> None:
    """Every catalog entry says why; schema rejections name the field they must report."""
    for example in INVALID:
        assert example.why.strip(), example.name
        if example.reason is RejectReason.SCHEMA:
            assert example.field, f"{example.name}: a schema example must name its field"


def test_valid_examples_cover_every_event_type() -> None:
    """There is at least one valid example of each event type."""
    assert {example.event_type for example in VALID} == set(EventType)


def test_too_large_example_is_rejected_only_for_its_size() -> None:
    """The oversized example exceeds 64 KiB and is accepted once the limit is lifted."""
    (example,) = [e for e in INVALID if e.name == "too_large.json"]
    assert len(example.raw) > 64 * 1024
    lifted = decode_event(example.raw, max_bytes=len(example.raw))
    assert isinstance(lifted, Accepted)


def test_type_mismatch_example_is_accepted_on_its_own_topic() -> None:
    """The hiring report sent to the shipments topic is itself a valid hiring report."""
    (example,) = [e for e in INVALID if e.name == "type_mismatch_hiring_on_shipments.json"]
    result = decode_event(example.raw, expected_type=EventType.HIRING_REPORT)
    assert isinstance(result, Accepted)


@pytest.mark.parametrize("example", VALID, ids=[e.name for e in VALID])
def test_canonical_form_decodes_to_an_equal_event(example: ValidExample) -> None:
    """decode(encode(event)) gives back an event equal to the original."""
    event = _accepted(example).event
    again = decode_event(encode_event(event), expected_type=example.event_type)
    assert isinstance(again, Accepted), again
    assert again.event == event


@pytest.mark.parametrize("example", VALID, ids=[e.name for e in VALID])
def test_encoding_is_idempotent(example: ValidExample) -> None:
    """Encoding a decoded canonical message gives the same bytes again."""
    canonical = encode_event(_accepted(example).event)
    again = decode_event(canonical)
    assert isinstance(again, Accepted), again
    assert encode_event(again.event) == canonical


@pytest.mark.parametrize("example", VALID, ids=[e.name for e in VALID])
def test_canonical_form_holds_amounts_as_strings_and_times_in_utc(example: ValidExample) -> None:
    """Canonical JSON carries amounts as decimal strings and occurred_at with a Z suffix."""
    text = encode_event(_accepted(example).event).decode("utf-8")
    assert '"occurred_at":"' in text
    occurred = text.split('"occurred_at":"', 1)[1].split('"', 1)[0]
    assert occurred.endswith("Z"), occurred
    for amount in ("tonnes", "investment_usd"):
        if f'"{amount}":' in text:
            assert f'"{amount}":"' in text, f"{amount} is not a string in {text}"
