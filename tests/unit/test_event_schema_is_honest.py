"""What the published JSON Schema allows, validation accepts.

A client generating events from ``contracts/schemas/`` (as schemathesis does in the connected
tier) must not be refused for a rule the schema does not state. So the schema's patterns are
drawn from here and each draw is validated: amounts, the positive ones, country codes, trimmed
text and months. The schema may be narrower than validation (``kz`` is accepted and upper-cased);
it must never be wider.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from contracts import fields

pytestmark = pytest.mark.unit


def _accepts(annotation: Any, value: object) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


def _string_branch(annotation: Any) -> str:
    schema = TypeAdapter(annotation).json_schema()
    (string,) = [branch for branch in schema["anyOf"] if branch["type"] == "string"]
    pattern: str = string["pattern"]
    return pattern


@given(text=st.from_regex(_string_branch(fields.PositiveAmount), fullmatch=True))
def test_every_positive_amount_string_the_schema_allows_is_accepted(text: str) -> None:
    assert _accepts(fields.PositiveAmount, text), text


@given(text=st.from_regex(_string_branch(fields.Amount), fullmatch=True))
def test_every_amount_string_the_schema_allows_is_accepted(text: str) -> None:
    assert _accepts(fields.Amount, text), text


@pytest.mark.parametrize("text", ["0", "0.0", "000.000000", "-1", "1.0000001", "1e3", " 1"])
def test_the_positive_pattern_leaves_out_zero_and_what_validation_refuses(text: str) -> None:
    """Zero is a valid amount but not a positive one; the rest no amount at all."""
    assert not re.fullmatch(_string_branch(fields.PositiveAmount), text)


@given(micro=st.integers(min_value=1, max_value=10**24 - 1).filter(lambda n: n < 10**24 - 10**6))
def test_every_number_on_the_schemas_grid_is_accepted(micro: int) -> None:
    """Numbers: a multiple of 0.000001 up to the maximum, as the JSON decoder reads them."""
    value = Decimal(micro).scaleb(-6)
    schema = TypeAdapter(fields.PositiveAmount).json_schema()
    (number,) = [branch for branch in schema["anyOf"] if branch["type"] == "number"]
    if value <= number["maximum"]:
        assert _accepts(fields.PositiveAmount, value), value


@given(code=st.sampled_from(TypeAdapter(fields.CountryCode).json_schema()["enum"]))
def test_every_country_code_the_schema_lists_is_accepted(code: str) -> None:
    assert _accepts(fields.CountryCode, code)


def test_the_country_list_is_iso_3166_and_nothing_else() -> None:
    codes = TypeAdapter(fields.CountryCode).json_schema()["enum"]
    assert "KZ" in codes
    assert "BY" in codes
    assert "AA" not in codes
    assert all(fields.is_country_code(code) for code in codes)


@given(data=st.data())
@pytest.mark.parametrize("annotation", [fields.Text, fields.SourceName, fields.Month])
def test_every_text_the_schema_allows_is_accepted(annotation: Any, data: st.DataObject) -> None:
    schema = TypeAdapter(annotation).json_schema()
    text = data.draw(
        st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: schema.get("minLength", 0) <= len(s) <= schema.get("maxLength", 10**6)
        )
    )
    assert _accepts(annotation, text), repr(text)


def test_blank_text_is_outside_the_schema() -> None:
    """ "   " fits minLength 1 but trims to nothing: the pattern says so."""
    assert not re.fullmatch(TypeAdapter(fields.Text).json_schema()["pattern"], "   ")
