"""Splitting a POST body into events: each array element keeps its exact original bytes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.examples import valid_examples
from services.ingest.http_api import BodyError, split_elements
from tests.unit.test_decoder_properties import PROPERTY_SETTINGS, finite_json_values

EVENT = valid_examples()[0].raw
JSON_WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(EVENT, id="event"),
        pytest.param(b'  {"a": 1}\n', id="padded-object"),
        pytest.param(b"42", id="number"),
        pytest.param(b'"[1, 2]"', id="string-that-looks-like-an-array"),
        pytest.param(b"not json at all", id="text"),
        pytest.param(b"{]", id="broken-object"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
def test_non_array_body_is_one_element_unchanged(body: bytes) -> None:
    """A body that is not a JSON array is returned whole; the decoder judges it later."""
    assert split_elements(body) == [body]


def test_array_elements_keep_their_original_bytes() -> None:
    """Odd spacing, number spelling and key order inside an element survive byte for byte."""
    first = b'{ "b" :  1.50 ,\t"a":[ 1 ,2 ] }'
    second = b'{"x":{"y":[[],{}]},"z":null}'
    third = b"1E+2"
    body = b" \n[ " + first + b" ,\r\n\t" + second + b"," + third + b"\n]\n "
    assert split_elements(body) == [first, second, third]


def test_strings_with_brackets_and_commas_are_not_split() -> None:
    """``]``, ``,``, ``[``, escaped quotes and backslashes inside strings are element content."""
    first = rb'{"note": "a], b, [c", "q": "say \"],\" \\"}'
    second = rb'"],["'
    body = b"[" + first + b"," + second + b"]"
    assert split_elements(body) == [first, second]


def test_unicode_elements_keep_their_utf8_bytes() -> None:
    """Non-ASCII text (raw UTF-8 and \\u escapes) is returned as the same UTF-8 bytes."""
    first = '{"name": "Қостанай комбайн ✓ 🚜"}'.encode()
    second = b'{"name": "\\u049a\\ud83d\\ude9c"}'
    elements = split_elements(b"[" + first + b", " + second + b"]")
    assert elements == [first, second]


def test_array_of_events_gives_each_event() -> None:
    """An array of valid events returns each event's bytes, in order."""
    events = [e.raw.strip() for e in valid_examples()]
    body = b"[" + b",\n".join(events) + b"]"
    assert split_elements(body) == events


def test_non_object_elements_are_still_split() -> None:
    """Elements that are not events (numbers, nulls, arrays) are split; the decoder rejects them."""
    assert split_elements(b"[1, null, [2, 3], NaN]") == [b"1", b"null", b"[2, 3]", b"NaN"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"[]", "no events", id="empty-array"),
        pytest.param(b" [ \n ] ", "no events", id="empty-array-with-spaces"),
        pytest.param(b"[1] x", "after the array", id="trailing-garbage"),
        pytest.param(b"[1][2]", "after the array", id="second-array"),
        pytest.param(b"[1 2]", "expected ',' or ']' after element 0", id="missing-comma"),
        pytest.param(b'[{"a":1} {"b":2}]', "after element 0", id="missing-comma-objects"),
        pytest.param(b"[1, 2", "after element 1", id="truncated-after-element"),
        pytest.param(b'[{"a": 1}, {"b":', "element 1 is not JSON", id="truncated-in-element"),
        pytest.param(b"[", "element 0 is not JSON", id="only-bracket"),
        pytest.param(b"[1,]", "element 1 is not JSON", id="trailing-comma"),
        pytest.param(b"[,1]", "element 0 is not JSON", id="leading-comma"),
        pytest.param(b"[1;2]", "after element 0", id="wrong-separator"),
        pytest.param(b'["a\xff"]', "not valid UTF-8 at byte 3", id="invalid-utf8-inside"),
        pytest.param(b'  ["ok", "\xc3"]', "not valid UTF-8", id="invalid-utf8-padded"),
    ],
)
def test_unusable_array_raises_body_error(body: bytes, message: str) -> None:
    """A broken or empty array raises BodyError with a message that says what is wrong."""
    with pytest.raises(BodyError, match=re.escape(message)):
        split_elements(body)


def test_body_error_message_is_bounded() -> None:
    """A parse error's message stays short even when the element is huge."""
    with pytest.raises(BodyError) as caught:
        split_elements(b'[{"a": "' + b"x" * 100_000 + b'"')
    assert 0 < len(str(caught.value)) <= 300


def test_absurd_nesting_is_a_body_error() -> None:
    """An element nested deeper than Python's recursion limit is a BodyError, not a crash."""
    with pytest.raises(BodyError, match="element 0 is not JSON"):
        split_elements(b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]")


@PROPERTY_SETTINGS
@given(
    values=st.lists(finite_json_values, min_size=1, max_size=8),
    data=st.data(),
    ensure_ascii=st.booleans(),
)
def test_split_elements_round_trips_any_json_array(
    values: list[Any], data: st.DataObject, ensure_ascii: bool
) -> None:
    """Any JSON array, with any whitespace around brackets and commas, splits into its elements."""
    texts = [json.dumps(v, ensure_ascii=ensure_ascii) for v in values]
    pieces = [data.draw(JSON_WHITESPACE), "["]
    for index, text in enumerate(texts):
        if index:
            pieces += [data.draw(JSON_WHITESPACE), ",", data.draw(JSON_WHITESPACE)]
        else:
            pieces.append(data.draw(JSON_WHITESPACE))
        pieces.append(text)
    pieces += [data.draw(JSON_WHITESPACE), "]", data.draw(JSON_WHITESPACE)]
    elements = split_elements("".join(pieces).encode("utf-8"))
    assert elements == [t.encode("utf-8") for t in texts]
    assert [json.loads(e) for e in elements] == values
