"""Field types shared by every event shape.

Counts and flags are strict (``"12"`` is not an integer, ``"true"`` not a boolean); amounts are
exact decimals read from JSON numbers or decimal strings; dates and timestamps must be ISO 8601
strings. Strings are trimmed and codes normalised, so a canonical event is comparable byte for byte.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_ALPHA2 = frozenset(country.alpha_2 for country in pycountry.countries)


def _utc_timestamp(value: Any, parse: ValidatorFunctionWrapHandler) -> datetime:
    """Refuse numbers before pydantic's lenient parsing sees them; normalise to UTC.

    One wrap validator rather than a before and an after one: each Python call from the
    validator core costs about a microsecond, per event.
    """
    if not isinstance(value, (str, datetime)):  # a tuple: faster than a union here
        raise ValueError("must be an ISO 8601 string")
    parsed: datetime = parse(value)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+03:00 is in year 0 in UTC
        raise ValueError("out of range once in UTC (years 1 to 9999)") from None


def _parse_calendar_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError("must be a date string YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"impossible date: {exc}") from None


def _parse_month(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a month string YYYY-MM")
    match = _MONTH.fullmatch(value.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValueError("must be a month string YYYY-MM with a month from 01 to 12")
    return value.strip()


def is_country_code(code: str) -> bool:
    """Whether ``code`` is an ISO 3166-1 alpha-2 code, as written (upper case)."""
    return code in _ALPHA2


def _country_code(value: str) -> str:
    code = value.upper()
    if code not in _ALPHA2:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _amount_from_json(value: Any) -> Any:
    """Amounts arrive as JSON numbers (already ``Decimal`` via the decoder) or decimal strings."""
    if isinstance(value, bool | float):
        raise ValueError("must be a JSON number or a decimal string")
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise ValueError("a decimal string must look like 123 or 123.45")
        return text
    return value


def decimal_text(value: Decimal) -> str:
    """An amount as the canonical JSON writes it: a decimal string, so that no consumer has to
    go through a float; normalised (1000.00 and 1000 both give "1000") so that equal amounts
    give byte-identical canonical events."""
    if not value:
        return "0"
    return format(value.normalize(), "f")


Identifier = Annotated[
    StrictStr,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
]
"""An id from an upstream system: letters, digits and ``. _ : -``; never ``/``, which keys use."""

_NOT_BLANK = r"^\S(.*\S)?$"
"""What the schema says of trimmed text: starts and ends with a non-space (validation trims)."""
SourceName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64, "pattern": _NOT_BLANK}),
]
Text = Annotated[
    StrictStr,
    Field(min_length=1, max_length=256),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 256, "pattern": _NOT_BLANK}),
]
SnakeCode = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$"),
    AfterValidator(str.lower),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z][A-Za-z0-9_]*$"}
    ),
]
"""A snake_case code such as ``wheat_flour``; upper-case letters are folded to lower case."""

CountryCode = Annotated[
    StrictStr,
    AfterValidator(_country_code),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(_ALPHA2),
            "description": "ISO 3166-1 alpha-2; lower case is accepted and upper-cased.",
        }
    ),
]
"""ISO 3166-1 alpha-2, normalised to upper case (``kz`` becomes ``KZ``)."""

_COUNT_LIMIT = 10_000_000
_COUNT_DIGITS = len(str(_COUNT_LIMIT)) - 1


def _integral_number(value: Any) -> Any:
    """``12.0`` as JSON text is the number 12 (JSON and JSON Schema make no difference), so the
    decoder's ``Decimal("12.0")`` becomes ``12``; ``12.5``, ``"12"`` and ``true`` stay refused.

    The size is checked before any arithmetic: ``1e999999999`` must not become an integer.
    """
    if (
        type(value) is Decimal
        and value.is_finite()
        and value.adjusted() <= _COUNT_DIGITS
        and value == value.to_integral_value()
    ):
        return int(value)
    return value


Count = Annotated[StrictInt, Field(ge=0, le=_COUNT_LIMIT), BeforeValidator(_integral_number)]
SignedCount = Annotated[
    StrictInt, Field(ge=-_COUNT_LIMIT, le=_COUNT_LIMIT), BeforeValidator(_integral_number)
]
Flag = StrictBool

_DECIMAL_LIMITS: dict[str, Any] = {"allow_inf_nan": False, "max_digits": 24, "decimal_places": 6}
# What the JSON Schema says of an amount is a subset of what validation accepts (no sign, no
# surrounding spaces, no leading zeros beyond 18 digits), so that anything a client generates
# from the schema is accepted: at most 18 digits before the point and 6 after it.
_INTEGER_PART = "[0-9]{1,18}"
_FRACTION = r"(\.[0-9]{1,6})?"
_NON_ZERO_FRACTION = "|".join(f"0{{{zeros}}}[1-9][0-9]{{0,{5 - zeros}}}" for zeros in range(6))
"""1 to 6 decimals, not all zero: 5, 05, ..., 000005 then any digits up to the sixth."""
_NON_NEGATIVE_TEXT = f"^{_INTEGER_PART}{_FRACTION}$"
_POSITIVE_TEXT = f"^(0{{0,17}}[1-9][0-9]{{0,17}}{_FRACTION}|0{{1,18}}\\.({_NON_ZERO_FRACTION}))$"
_DECIMAL_NUMBER: dict[str, Any] = {
    "type": "number",
    "maximum": 10**18 - 1,
    "multipleOf": 0.000001,
}
_AS_DECIMAL_STRING = PlainSerializer(decimal_text, return_type=str, when_used="json")
# The constraints come before the validator so that pydantic-core checks digits natively; after
# it they would run as Python functions, which made amount validation three times slower.
Amount = Annotated[
    Decimal,
    Field(ge=0, **_DECIMAL_LIMITS),
    BeforeValidator(_amount_from_json),
    _AS_DECIMAL_STRING,
    WithJsonSchema(
        {
            "anyOf": [
                {**_DECIMAL_NUMBER, "minimum": 0},
                {"type": "string", "pattern": _NON_NEGATIVE_TEXT},
            ],
            "description": "Exact decimal, at most 6 decimal places: a JSON number or a string.",
        }
    ),
]
"""A non-negative exact amount (USD, tonnes), at most 6 decimal places."""
PositiveAmount = Annotated[
    Decimal,
    Field(gt=0, **_DECIMAL_LIMITS),
    BeforeValidator(_amount_from_json),
    _AS_DECIMAL_STRING,
    WithJsonSchema(
        {
            "anyOf": [
                {**_DECIMAL_NUMBER, "exclusiveMinimum": 0},
                {"type": "string", "pattern": _POSITIVE_TEXT},
            ],
            "description": "Exact decimal > 0, at most 6 decimal places: JSON number or string.",
        }
    ),
]

CalendarDate = Annotated[date, BeforeValidator(_parse_calendar_date)]
Month = Annotated[
    str,
    BeforeValidator(_parse_month),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}),
]
"""A calendar month ``YYYY-MM``."""

Timestamp = Annotated[
    AwareDatetime,
    WrapValidator(_utc_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            # Narrower than validation, so that no offset can carry it out of years 1-9999 in
            # UTC (0001-01-01T00:00:00+03:00 is refused): years 1000 to 8999.
            "pattern": "^[1-8][0-9]{3}-",
        }
    ),
]
"""An RFC 3339 timestamp with an offset, normalised to UTC."""
