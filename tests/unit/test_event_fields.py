"""Field normalisation and strictness, checked through the decoder on JSON bytes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.codec import Accepted, Rejected, RejectReason, decode_event, encode_event
from contracts.events import (
    HiringReportEvent,
    ProjectMilestoneEvent,
    TradeShipmentEvent,
)
from contracts.examples import EXAMPLES_DIR
from contracts.keys import AnyEvent

SHIPMENT = "trade.shipment/road_flour_kz_by.json"
MILESTONE = "project.milestone/combine_harvester_jv_operational.json"
HIRING = "hiring.report/monthly_hiring.json"

# A shipment whose tonnes are spliced in as raw JSON text, so numbers are never seen as floats.
SHIPMENT_TEMPLATE = (
    '{"event_id": "e-1", "type": "trade.shipment", "schema_version": 1,'
    ' "occurred_at": "2025-03-14T10:00:00Z", "source": "test", "data": {"shipment_id": "S-1",'
    ' "origin": "KZ", "destination": "BY", "mode": "road", "commodity": "wheat",'
    ' "tonnes": TONNES, "shipped_on": "2025-03-13"}}'
)


def _with(example: str, path: str, value: Any) -> bytes:
    """The valid example with the dotted ``path`` set to ``value``, as JSON bytes."""
    obj = json.loads((EXAMPLES_DIR / "valid" / example).read_text(encoding="utf-8"))
    *parents, last = path.split(".")
    target = obj
    for part in parents:
        target = target[part]
    target[last] = value
    return json.dumps(obj).encode("utf-8")


def _tonnes(json_text: str) -> bytes:
    return SHIPMENT_TEMPLATE.replace("TONNES", json_text).encode("utf-8")


def _accept(raw: bytes) -> AnyEvent:
    result = decode_event(raw)
    assert isinstance(result, Accepted), result
    return result.event


def _shipment(raw: bytes) -> TradeShipmentEvent:
    event = _accept(raw)
    assert isinstance(event, TradeShipmentEvent)
    return event


def _assert_refused(raw: bytes, loc: str) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejected), f"accepted: {result}"
    assert result.reason is RejectReason.SCHEMA, result.detail
    assert loc in [error.loc for error in result.errors], result.errors


def test_lower_case_country_codes_become_upper_case() -> None:
    """Country codes "kz" and "By" are normalised to "KZ" and "BY"."""
    raw = _with(SHIPMENT, "data.origin", "kz")
    raw = raw.replace(b'"destination": "BY"', b'"destination": "By"')
    assert b'"By"' in raw
    data = _shipment(raw).data
    assert (data.origin, data.destination) == ("KZ", "BY")


@pytest.mark.parametrize("code", ["XX", "ZZ", "KAZ", "K", ""])
def test_unknown_country_is_refused(code: str) -> None:
    """A code that is not ISO 3166-1 alpha-2 is refused on the field that carries it."""
    _assert_refused(_with(SHIPMENT, "data.origin", code), "data.origin")


def test_strings_are_trimmed() -> None:
    """Surrounding whitespace is removed from ids, names and the source."""
    raw = _with(MILESTONE, "data.name", "  Combine plant \t")
    raw = raw.replace(b'"source": "project-office"', b'"source": " project-office  "')
    assert b'" project-office  "' in raw
    event = _accept(raw)
    assert isinstance(event, ProjectMilestoneEvent)
    assert event.data.name == "Combine plant"
    assert event.source == "project-office"
    assert _shipment(_with(SHIPMENT, "data.shipment_id", "  S-9  ")).data.shipment_id == "S-9"


def test_commodity_is_folded_to_lower_case() -> None:
    """Commodity "Wheat_Flour" becomes "wheat_flour"."""
    assert (
        _shipment(_with(SHIPMENT, "data.commodity", "Wheat_Flour")).data.commodity == "wheat_flour"
    )


def test_commodity_with_a_space_is_refused() -> None:
    """A commodity that is not a snake_case code is refused."""
    _assert_refused(_with(SHIPMENT, "data.commodity", "wheat flour"), "data.commodity")


def test_huge_json_number_is_read_exactly() -> None:
    """Tonnes 12345678901234567.123456 keeps every digit (a float would round it)."""
    tonnes = _shipment(_tonnes("12345678901234567.123456")).data.tonnes
    assert tonnes == Decimal("12345678901234567.123456")
    assert float(tonnes) != tonnes  # the value really is beyond float precision


@pytest.mark.parametrize("json_text", ["0.1", '"0.1"', '" 0.1 "'])
def test_json_number_and_decimal_string_give_the_same_decimal(json_text: str) -> None:
    """0.1 as a JSON number or a decimal string is exactly Decimal("0.1")."""
    tonnes = _shipment(_tonnes(json_text)).data.tonnes
    assert isinstance(tonnes, Decimal)
    assert tonnes == Decimal("0.1")
    assert str(tonnes) == "0.1"


def test_six_decimal_places_are_allowed() -> None:
    """An amount with exactly six decimal places is accepted unchanged."""
    assert _shipment(_tonnes("1.123456")).data.tonnes == Decimal("1.123456")


@pytest.mark.parametrize("json_text", ["1.1234567", '"1.1234567"', "0.0000001"])
def test_more_than_six_decimal_places_are_refused(json_text: str) -> None:
    """An amount with seven decimal places is refused, whether number or string."""
    _assert_refused(_tonnes(json_text), "data.tonnes")


@pytest.mark.parametrize("json_text", ["true", "false", '"1e3"', '"12,5"', '"abc"', "null"])
def test_non_decimal_amounts_are_refused(json_text: str) -> None:
    """Booleans, null, exponent strings and non-numeric strings are refused for tonnes."""
    _assert_refused(_tonnes(json_text), "data.tonnes")


@pytest.mark.parametrize("json_text", ["0", '"0"', "-1", '"-0.5"'])
def test_tonnes_must_be_positive(json_text: str) -> None:
    """Zero and negative tonnes are refused."""
    _assert_refused(_tonnes(json_text), "data.tonnes")


def test_python_float_is_refused_for_an_amount() -> None:
    """A float that reaches the model (not via the Decimal-parsing decoder) is refused."""
    obj = json.loads(_tonnes("1"))
    obj["data"]["tonnes"] = 0.1
    with pytest.raises(ValueError, match="tonnes"):
        TradeShipmentEvent.model_validate(obj)


@pytest.mark.parametrize("value", ["12", 12.5, True, None])
def test_jobs_created_must_be_a_json_integer(value: object) -> None:
    """jobs_created refuses "12", 12.5, true and null."""
    _assert_refused(_with(HIRING, "data.jobs_created", value), "data.jobs_created")


def _jobs_as_json_text(text: str) -> bytes:
    return _with(HIRING, "data.jobs_created", "JOBS").replace(b'"JOBS"', text.encode())


@pytest.mark.parametrize(("text", "jobs"), [("12.0", 12), ("-7.00", -7), ("1e3", 1000)])
def test_an_integral_json_number_is_an_integer(text: str, jobs: int) -> None:
    """JSON and JSON Schema make 12.0 the number 12: a count written so is read as 12 and the
    canonical form writes 12 (a client generating from the published schema may send it)."""
    event = _accept(_jobs_as_json_text(text))
    assert isinstance(event, HiringReportEvent)
    assert event.data.jobs_created == jobs
    assert f'"jobs_created":{jobs},'.encode() in encode_event(event)


@pytest.mark.parametrize("text", ["1e999999999", "-1e999999999", "10000001.0", "12.000001"])
def test_a_huge_or_fractional_number_is_not_a_count(text: str) -> None:
    """Out of range or not whole: refused, and 1e999999999 without building its integer."""
    _assert_refused(_jobs_as_json_text(text), "data.jobs_created")


def test_negative_jobs_created_is_accepted() -> None:
    """A net job loss (negative jobs_created) is a valid report."""
    event = _accept(_with(HIRING, "data.jobs_created", -7))
    assert isinstance(event, HiringReportEvent)
    assert event.data.jobs_created == -7


@pytest.mark.parametrize("value", ["true", 1, 0, "yes", None])
def test_joint_venture_must_be_a_json_boolean(value: object) -> None:
    """joint_venture refuses "true", 1, 0, "yes" and null."""
    _assert_refused(_with(MILESTONE, "data.joint_venture", value), "data.joint_venture")


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2025-03-14T10:00:00Z", datetime(2025, 3, 14, 10, tzinfo=UTC)),
        ("2025-03-14T15:30:00+05:30", datetime(2025, 3, 14, 10, tzinfo=UTC)),
        ("2025-03-14T01:00:00-09:00", datetime(2025, 3, 14, 10, tzinfo=UTC)),
    ],
)
def test_occurred_at_is_normalised_to_utc(sent: str, utc: datetime) -> None:
    """occurred_at with any offset becomes the same instant with tzinfo UTC."""
    occurred_at = _shipment(_with(SHIPMENT, "occurred_at", sent)).occurred_at
    assert occurred_at == utc
    assert occurred_at.utcoffset() is not None
    assert occurred_at.tzinfo is UTC


@pytest.mark.parametrize("value", ["2025-03-14T10:00:00", "2025-03-14", 1700000000, 1.7e9, None])
def test_occurred_at_must_be_an_aware_timestamp_string(value: object) -> None:
    """Naive timestamps, bare dates, numbers and null are refused for occurred_at."""
    _assert_refused(_with(SHIPMENT, "occurred_at", value), "occurred_at")


@pytest.mark.parametrize("value", [20250313, 1741824000, "2025-02-30", "2025-3-13", "13/03/2025"])
def test_shipped_on_must_be_a_real_iso_date_string(value: object) -> None:
    """Integers, impossible dates and non-ISO formats are refused for shipped_on."""
    _assert_refused(_with(SHIPMENT, "data.shipped_on", value), "data.shipped_on")


def test_shipped_on_reads_an_iso_date() -> None:
    """A YYYY-MM-DD string becomes that calendar date."""
    assert _shipment(_with(SHIPMENT, "data.shipped_on", "2024-02-29")).data.shipped_on == date(
        2024, 2, 29
    )


@pytest.mark.parametrize("period", ["2025-00", "2025-1", "2025-13", "2025-03-01", "202503", 202503])
def test_bad_hiring_period_is_refused(period: object) -> None:
    """A period that is not YYYY-MM with a month 01-12 is refused."""
    _assert_refused(_with(HIRING, "data.period", period), "data.period")


@pytest.mark.parametrize("period", ["2025-01", "2025-12", " 2025-06 "])
def test_good_hiring_period_is_accepted(period: str) -> None:
    """Months 01 and 12 are accepted and surrounding whitespace is trimmed."""
    event = _accept(_with(HIRING, "data.period", period))
    assert isinstance(event, HiringReportEvent)
    assert event.data.period == period.strip()


def test_schema_version_true_is_refused() -> None:
    """schema_version must be the integer 1; the boolean true is not a version."""
    _assert_refused(_with(HIRING, "schema_version", True), "schema_version")
