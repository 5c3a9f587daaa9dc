"""``parse_json`` reads with msgspec and falls back to the standard library: whatever the input,
it gives the standard library's exact reading (``parse_float=Decimal``) or its error."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.codec import parse_json


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


REFERENCE = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse)


def _reference(text: str) -> tuple[str, str]:
    try:
        return "value", repr(REFERENCE.decode(text))
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


def _ours(text: str) -> tuple[str, str]:
    try:
        return "value", repr(parse_json(text))
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


_numbers = st.from_regex(
    r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
)
_scalars = (
    st.none().map(lambda _: "null")
    | st.booleans().map(lambda b: "true" if b else "false")
    | _numbers
    | st.text(max_size=20).map(json.dumps)
    | st.text(max_size=20).map(lambda t: json.dumps(t, ensure_ascii=False))
)
_documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(st.text(max_size=8).map(json.dumps), inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=15,
)
_noise = st.text(alphabet=' \t\n\r,:[]{}"\\\x00\x0b\ufeffNaInfity0123456789.eE+-u', max_size=6)


@settings(max_examples=1500, deadline=None)
@given(document=_documents, before=_noise, after=_noise, cut=st.integers(0, 200))
def test_any_text_reads_as_the_standard_library_reads_it(
    document: str, before: str, after: str, cut: int
) -> None:
    for text in (document, before + document + after, document[:cut], document + after):
        assert _ours(text) == _reference(text), text


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud800"',  # msgspec refuses a lone surrogate; the standard library reads it
        "1" + "0" * 40,
        "1" + "0" * 5000,  # over the standard library's digit limit: an error either way
        "[" * 5000 + "]" * 5000,
        "NaN",
        "[1e999, -0.0, 0.1000000000000000055511151231257827]",
        '{"a": 1, "a": 2}',
        "\ufeff{}",
    ],
)
def test_the_edges_read_as_the_standard_library_reads_them(text: str) -> None:
    assert _ours(text) == _reference(text)
