"""Property tests: decode_event maps every input to exactly one outcome and never raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.codec import (
    Accepted,
    DecodeResult,
    Rejected,
    RejectReason,
    decode_event,
    encode_event,
)
from contracts.events import (
    EVENT_MODELS,
    EventType,
    HiringReport,
    ProjectMilestone,
    TradeShipment,
)
from contracts.examples import valid_examples

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
KNOWN_FIELDS = {
    name
    for model in (*EVENT_MODELS.values(), TradeShipment, ProjectMilestone, HiringReport)
    for name in model.model_fields
}
"""Every field name the contract defines, in envelopes or in data."""
VALID_OBJECTS: list[dict[str, Any]] = [json.loads(e.raw) for e in valid_examples()]


def _json(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(max_size=40),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=12), children, max_size=5)
        ),
        max_leaves=20,
    )


json_values = _json(st.floats())
"""Any JSON value, plus NaN and infinities (which json.dumps writes and the decoder refuses)."""
finite_json_values = _json(st.floats(allow_nan=False, allow_infinity=False))

Path_ = tuple[str | int, ...]


def _paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path to a value nested in ``value`` (dict keys and list indexes)."""
    found: list[Path_] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(obj: dict[str, Any], path: Path_) -> Any:
    target: Any = obj
    for part in path[:-1]:
        target = target[part]
    return target


def _assert_one_outcome(result: DecodeResult) -> None:
    assert isinstance(result, Accepted | Rejected)
    if isinstance(result, Rejected):
        assert result.reason in set(RejectReason)
        assert result.detail.strip(), "a rejection must say why"
        if result.reason is not RejectReason.SCHEMA:
            assert result.errors == ()


def _assert_canonical_round_trip(result: DecodeResult) -> None:
    """An accepted event re-encodes to bytes that decode to an equal event, stably."""
    if isinstance(result, Accepted):
        canonical = encode_event(result.event)
        again = decode_event(canonical)
        assert isinstance(again, Accepted), again
        assert again.event == result.event
        assert encode_event(again.event) == canonical


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Any byte string decodes to exactly one Accepted or Rejected outcome."""
    _assert_one_outcome(decode_event(raw))


@PROPERTY_SETTINGS
@given(value=json_values, expected=st.none() | st.sampled_from(list(EventType)))
def test_arbitrary_json_values_never_raise(value: Any, expected: EventType | None) -> None:
    """Any JSON value (NaN included) decodes to one outcome; non-objects are not accepted."""
    result = decode_event(json.dumps(value).encode("utf-8"), expected_type=expected)
    _assert_one_outcome(result)
    if not isinstance(value, dict):
        assert isinstance(result, Rejected)
        assert result.reason in {RejectReason.NOT_OBJECT, RejectReason.NOT_JSON}


@PROPERTY_SETTINGS
@given(value=json_values)
def test_envelope_like_objects_never_raise(value: Any) -> None:
    """Objects with an event type and arbitrary data decode to one outcome."""
    for event_type in EventType:
        obj = {"type": event_type.value, "schema_version": 1, "data": value}
        _assert_one_outcome(decode_event(json.dumps(obj).encode("utf-8")))


@PROPERTY_SETTINGS
@given(data=st.data())
def test_mutated_valid_events_never_raise(data: st.DataObject) -> None:
    """Deleting, replacing or adding a field of a valid event gives one well-formed outcome."""
    obj = json.loads(json.dumps(data.draw(st.sampled_from(VALID_OBJECTS))))
    mutation = data.draw(st.sampled_from(["delete", "replace", "add"]))
    paths = _paths(obj)
    if mutation == "delete":
        path = data.draw(st.sampled_from([p for p in paths if isinstance(p[-1], str)]))
        del _parent(obj, path)[path[-1]]
    elif mutation == "replace":
        path = data.draw(st.sampled_from(paths))
        _parent(obj, path)[path[-1]] = data.draw(json_values)
    else:
        containers = [()] + [p for p in paths if isinstance(_parent(obj, (*p, 0)), dict)]
        where = data.draw(st.sampled_from(containers))
        _parent(obj, (*where, 0))[data.draw(st.text(max_size=12))] = data.draw(json_values)
    result = decode_event(json.dumps(obj).encode("utf-8"))
    _assert_one_outcome(result)
    _assert_canonical_round_trip(result)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_unknown_key_added_to_a_valid_event_is_rejected(data: st.DataObject) -> None:
    """Adding a key the contract does not define, in envelope or data, is a schema rejection."""
    obj = json.loads(json.dumps(data.draw(st.sampled_from(VALID_OBJECTS))))
    target = obj if data.draw(st.booleans()) else obj["data"]
    key = data.draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in KNOWN_FIELDS))
    target[key] = data.draw(finite_json_values)
    result = decode_event(json.dumps(obj).encode("utf-8"))
    assert isinstance(result, Rejected)
    assert result.reason is RejectReason.SCHEMA
    expected_loc = key if target is obj else f"data.{key}"
    assert expected_loc in [error.loc for error in result.errors]


@PROPERTY_SETTINGS
@given(
    size=st.integers(min_value=0, max_value=4096), limit=st.integers(min_value=0, max_value=4096)
)
def test_messages_over_the_limit_are_too_large(size: int, limit: int) -> None:
    """A message longer than max_bytes is rejected as too_large; one within it is not."""
    result = decode_event(b" " * size, max_bytes=limit)
    assert isinstance(result, Rejected)
    assert (result.reason is RejectReason.TOO_LARGE) == (size > limit)


_DATES = st.sampled_from([(1, 1, 1), (9999, 12, 31)]) | st.tuples(
    st.integers(1, 9999), st.integers(1, 12), st.integers(1, 31)
)
_TIMESTAMPS = st.builds(
    lambda date, hour, minute, sign, off_h, off_m, zulu: (
        f"{date[0]:04d}-{date[1]:02d}-{date[2]:02d}T{hour:02d}:{minute:02d}:00"
        + ("Z" if zulu else f"{sign}{off_h:02d}:{off_m:02d}")
    ),
    _DATES,
    st.integers(0, 23),
    st.integers(0, 59),
    st.sampled_from("+-"),
    st.integers(0, 23),
    st.integers(0, 59),
    st.booleans(),
)
"""RFC 3339-shaped timestamps over the whole calendar, impossible days and extreme offsets
included; the first and last days of the calendar are drawn often."""


@PROPERTY_SETTINGS
@given(timestamp=_TIMESTAMPS)
def test_any_timestamp_is_accepted_in_utc_or_refused_never_raised(timestamp: str) -> None:
    """An offset can carry 0001-01-01 or 9999-12-31 out of the calendar once in UTC: such a
    timestamp is refused naming ``occurred_at``, as an impossible date is; none raises."""
    obj = {**VALID_OBJECTS[0], "occurred_at": timestamp}
    result = decode_event(json.dumps(obj).encode())
    if isinstance(result, Accepted):
        assert result.event.occurred_at.utcoffset() is not None
        assert result.event.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    else:
        assert result.reason is RejectReason.SCHEMA
        assert [e.loc for e in result.errors] == ["occurred_at"]
