"""Triage: every upstream message becomes exactly one canonical event, duplicate or dead letter."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.codec import RejectReason, encode_event
from contracts.events import EventType
from contracts.examples import InvalidExample, ValidExample, invalid_examples, valid_examples
from contracts.keys import canonical_key
from services.ingest.dedup import DedupWindow, PendingIds
from services.ingest.triage import (
    UNKNOWN_TYPE_LABEL,
    Canonical,
    DeadLetter,
    Duplicate,
    Outcome,
    SourceRecord,
    triage,
    type_label,
)
from tests.unit.test_decoder_properties import (
    PROPERTY_SETTINGS,
    VALID_OBJECTS,
    _parent,
    _paths,
    json_values,
)

VALID = valid_examples()
INVALID = invalid_examples()
TYPE_LABELS = {t.value for t in EventType} | {UNKNOWN_TYPE_LABEL}
SHIPMENT = next(e for e in VALID if e.name == "trade.shipment/multimodal_lowercase_no_value.json")


def _record(value: bytes, expected_type: EventType | None = None) -> SourceRecord:
    return SourceRecord("roadmap.test", 0, 7, b"upstream-key", value, expected_type)


def _triage(value: bytes, pending: PendingIds, expected_type: EventType | None = None) -> Outcome:
    return triage(_record(value, expected_type), pending)


def _fresh() -> PendingIds:
    return DedupWindow(100).pending()


def _with_data(example: ValidExample, **changes: Any) -> bytes:
    """``example`` with some of its ``data`` fields replaced."""
    obj = json.loads(example.raw)
    obj["data"].update(changes)
    return json.dumps(obj).encode("utf-8")


@pytest.mark.parametrize("example", VALID, ids=[e.name for e in VALID])
def test_valid_example_becomes_canonical(example: ValidExample) -> None:
    """A valid example on its own topic is Canonical: natural key and version, canonical
    encoding."""
    outcome = _triage(example.raw, _fresh(), example.event_type)
    assert isinstance(outcome, Canonical), outcome
    assert outcome.event.type is example.event_type
    assert outcome.key == canonical_key(outcome.event)
    assert outcome.value == encode_event(outcome.event)
    assert type_label(outcome) == example.event_type.value


def test_canonical_value_is_normalised() -> None:
    """Lower-case country codes become upper-case, codes fold to lower case, amounts are strings,
    and occurred_at is converted to UTC in the published bytes."""
    outcome = _triage(SHIPMENT.raw, _fresh(), EventType.TRADE_SHIPMENT)
    assert isinstance(outcome, Canonical), outcome
    assert outcome.key == b"trade.shipment/FH-7781@2025-06-30T18:59:59.500000Z/freight-hub-7781"
    published = json.loads(outcome.value)
    assert published["data"]["origin"] == "KZ"
    assert published["data"]["destination"] == "BY"
    assert published["data"]["commodity"] == "wheat"
    assert published["data"]["tonnes"] == "1000"
    assert published["occurred_at"] == "2025-06-30T18:59:59.500000Z"


def test_canonical_value_trims_strings() -> None:
    """A project name with surrounding spaces is published trimmed."""
    (example,) = [e for e in VALID if "dairy_plant" in e.name]
    outcome = _triage(example.raw, _fresh(), example.event_type)
    assert isinstance(outcome, Canonical), outcome
    published = json.loads(outcome.value)
    assert published["data"]["name"] == "Dairy processing plant"
    assert published["data"]["investment_usd"] == "18500000.5"  # normalised decimal


@pytest.mark.parametrize("example", INVALID, ids=[e.name for e in INVALID])
def test_invalid_example_becomes_dead_letter_with_its_reason(example: InvalidExample) -> None:
    """A catalogued invalid example, sent as its ``sent_as`` type, is dead-lettered as labelled."""
    record = _record(example.raw, example.sent_as)
    outcome = triage(record, _fresh())
    assert isinstance(outcome, DeadLetter), outcome
    assert outcome.rejection.reason is example.reason, outcome.rejection.detail
    assert outcome.source is record
    if example.field is not None:
        assert example.field in [e.loc for e in outcome.rejection.errors]


def test_same_event_twice_is_a_duplicate() -> None:
    """The exact same message again, in the same batch or a later one, is a Duplicate."""
    window = DedupWindow(100)
    pending = window.pending()
    first = _triage(SHIPMENT.raw, pending)
    second = _triage(SHIPMENT.raw, pending)
    assert isinstance(first, Canonical)
    assert isinstance(second, Duplicate)
    assert second.event == first.event
    assert type_label(second) == EventType.TRADE_SHIPMENT.value
    pending.commit()
    assert isinstance(_triage(SHIPMENT.raw, window.pending()), Duplicate)


def test_reused_event_id_with_other_content_is_dead_lettered() -> None:
    """Same event_id, different content: DeadLetter event_id_reused whose detail names the id."""
    pending = _fresh()
    assert isinstance(_triage(SHIPMENT.raw, pending), Canonical)
    changed = _with_data(SHIPMENT, tonnes=999)
    record = _record(changed, EventType.TRADE_SHIPMENT)
    outcome = triage(record, pending)
    assert isinstance(outcome, DeadLetter), outcome
    assert outcome.rejection.reason is RejectReason.EVENT_ID_REUSED
    assert "'freight-hub-7781'" in outcome.rejection.detail
    assert outcome.source is record
    assert type_label(outcome) == EventType.TRADE_SHIPMENT.value


def test_reused_event_id_does_not_replace_the_accepted_content() -> None:
    """After a conflicting reuse, the first content is still the one that counts as duplicate."""
    pending = _fresh()
    _triage(SHIPMENT.raw, pending)
    _triage(_with_data(SHIPMENT, tonnes=999), pending)
    assert isinstance(_triage(SHIPMENT.raw, pending), Duplicate)


def test_event_of_another_type_is_dead_lettered_not_rerouted() -> None:
    """A shipment on the hiring topic is a type_mismatch dead letter with the topic's type label."""
    outcome = _triage(SHIPMENT.raw, _fresh(), EventType.HIRING_REPORT)
    assert isinstance(outcome, DeadLetter), outcome
    assert outcome.rejection.reason is RejectReason.TYPE_MISMATCH
    assert type_label(outcome) == EventType.HIRING_REPORT.value


def test_dead_letter_does_not_reserve_its_event_id() -> None:
    """A rejected message does not make a later valid event with the same id a conflict."""
    pending = _fresh()
    rejected = _triage(_with_data(SHIPMENT, tonnes=-1), pending)
    assert isinstance(rejected, DeadLetter)
    assert isinstance(_triage(SHIPMENT.raw, pending), Canonical)


def test_dead_letter_without_a_topic_type_is_labelled_unknown() -> None:
    """An HTTP rejection (no expected type) carries the ``unknown`` type label."""
    outcome = _triage(b"not json", _fresh(), None)
    assert isinstance(outcome, DeadLetter)
    assert type_label(outcome) == UNKNOWN_TYPE_LABEL


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            lambda obj: obj["data"].update(origin="KZ", destination="by"), id="country-case"
        ),
        pytest.param(lambda obj: obj["data"].update(commodity="WHEAT"), id="code-case"),
        pytest.param(lambda obj: obj.update(source="  freight-hub  "), id="padded-source"),
        pytest.param(
            lambda obj: obj["data"].update(tonnes=" 1000 ", shipped_on=" 2025-06-30 "),
            id="padded-amount-and-date",
        ),
        pytest.param(
            lambda obj: obj.update(occurred_at="2025-06-30T18:59:59.500Z"), id="same-instant-utc"
        ),
    ],
)
def test_differences_that_normalise_away_are_duplicates(
    variant: Callable[[dict[str, Any]], None],
) -> None:
    """A re-delivery differing only in case, padding or time zone is a Duplicate, not a conflict."""
    obj = json.loads(SHIPMENT.raw)
    variant(obj)
    changed = json.dumps(obj, indent=2).encode("utf-8")
    assert changed != SHIPMENT.raw
    pending = _fresh()
    assert isinstance(_triage(SHIPMENT.raw, pending), Canonical)
    outcome = _triage(changed, pending)
    assert isinstance(outcome, Duplicate), outcome


def test_amount_written_with_trailing_zeros_is_a_duplicate() -> None:
    """tonnes 1000 and "1000.00" are the same amount: the second delivery is a Duplicate."""
    pending = _fresh()
    first = _triage(SHIPMENT.raw, pending)
    assert isinstance(first, Canonical)
    again = _with_data(SHIPMENT, tonnes="1000.00")
    outcome = _triage(again, pending)
    assert isinstance(outcome, Duplicate), outcome


def _assert_one_outcome(outcome: Outcome) -> None:
    assert isinstance(outcome, Canonical | Duplicate | DeadLetter)
    assert type_label(outcome) in TYPE_LABELS
    if isinstance(outcome, Canonical):
        assert outcome.key == canonical_key(outcome.event)
        assert outcome.value == encode_event(outcome.event)
    if isinstance(outcome, DeadLetter):
        assert outcome.rejection.detail


def _seen_window() -> DedupWindow:
    """A window holding every valid example, so mutations can collide with accepted ids."""
    window = DedupWindow(100)
    pending = window.pending()
    for example in VALID:
        triage(_record(example.raw), pending)
    pending.commit()
    return window


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=2000), expected=st.none() | st.sampled_from(list(EventType)))
def test_arbitrary_bytes_give_exactly_one_outcome(raw: bytes, expected: EventType | None) -> None:
    """Any bytes on any topic triage to one Canonical, Duplicate or DeadLetter without raising."""
    outcome = _triage(raw, _seen_window().pending(), expected)
    _assert_one_outcome(outcome)
    assert not isinstance(outcome, Canonical | Duplicate)  # random bytes are never a valid event


@PROPERTY_SETTINGS
@given(data=st.data(), expected=st.none() | st.sampled_from(list(EventType)))
def test_mutated_valid_examples_give_exactly_one_outcome(
    data: st.DataObject, expected: EventType | None
) -> None:
    """A valid example with a field set to any JSON value, or a key deleted, gives one outcome."""
    obj = json.loads(json.dumps(data.draw(st.sampled_from(VALID_OBJECTS))))
    paths = _paths(obj)
    if data.draw(st.booleans()):
        path = data.draw(st.sampled_from(paths))
        _parent(obj, path)[path[-1]] = data.draw(json_values)
    else:
        path = data.draw(st.sampled_from([p for p in paths if isinstance(p[-1], str)]))
        del _parent(obj, path)[path[-1]]
    pending = _seen_window().pending()
    raw = json.dumps(obj).encode("utf-8")
    first = _triage(raw, pending, expected)
    _assert_one_outcome(first)
    # The same message again in the batch can never be newly accepted a second time.
    second = _triage(raw, pending, expected)
    _assert_one_outcome(second)
    assert not isinstance(second, Canonical)
    if isinstance(first, Canonical):
        assert isinstance(second, Duplicate)
