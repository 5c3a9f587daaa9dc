"""Projections: the pace over the recent window, the value at the deadline, the day the target
is reached, and the outlook. Every expected figure is worked out by hand in the comments."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.roadmap import Indicator
from contracts.roadmap.loader import RoadmapFileError, parse_roadmap
from contracts.roadmap.projection import (
    Outlook,
    Projection,
    is_projected,
    outlook,
    pace_days,
    project,
)


def _indicator(**overrides: Any) -> Indicator:
    """Jobs from 0 to 1,000 over 2025-01-01 .. 2025-12-31, pace measured over 100 days (an
    override of None leaves the field out)."""
    fields: dict[str, Any] = {
        "id": "jobs_created",
        "title": "Jobs",
        "unit": "jobs",
        "compute": {
            "aggregation": "sum",
            "event_type": "hiring.report",
            "field": "jobs_created",
            "window": "since_start",
        },
        "baseline": "0",
        "target": "1000",
        "start": "2025-01-01",
        "deadline": "2025-12-31",
        "tolerance": "0.1",
        "severity": "warning",
        "owner": "industry-office",
        "runbook": "docs/runbooks.md#jobs_created",
        "pace_window": "100d",
    }
    fields.update(overrides)
    return Indicator.model_validate({k: v for k, v in fields.items() if v is not None})


JOBS = _indicator()
ON = date(2025, 7, 1)  # 182 days from the start; 183 days to the deadline (Dec 31 - Jul 1)


def test_a_linear_pace_reaches_the_target_on_time() -> None:
    """300 jobs in the last 100 days: 3 a day. 500 now + 3 * 183 = 1,049 at the deadline;
    the 500 missing take 500 / 3 = 166.7, so 167 days: 2025-12-15."""
    projection = project(JOBS, Decimal(500), Decimal(300), ON)
    assert projection == Projection(Decimal(3), Decimal(1049), date(2025, 12, 15))
    assert outlook(JOBS, False, projection) is Outlook.ON_TRACK


def test_a_slump_puts_a_target_at_risk_before_it_is_behind() -> None:
    """Only 50 jobs in the last 100 days: 0.5 a day. 500 + 0.5 * 183 = 591.5, short of the
    target by more than the 10% tolerance (900): at risk, not behind (the caller says so). At
    that pace the 500 missing take 1,000 days: 2028-03-27."""
    projection = project(JOBS, Decimal(500), Decimal(50), ON)
    assert projection is not None
    assert projection.pace_per_day == Decimal("0.5")
    assert projection.projected == Decimal("591.5")
    assert projection.reached_on == ON + timedelta(days=1000) == date(2028, 3, 27)
    assert outlook(JOBS, False, projection) is Outlook.AT_RISK
    assert outlook(JOBS, True, projection) is Outlook.BEHIND


def test_just_within_the_tolerance_is_on_track() -> None:
    """900 is exactly the target less 10%: 900 at the deadline is not short by more than it.
    From 534 with 200 in 100 days: 534 + 2 * 183 = 900."""
    projection = project(JOBS, Decimal(534), Decimal(200), ON)
    assert projection is not None
    assert projection.projected == Decimal(900)
    assert outlook(JOBS, False, projection) is Outlook.ON_TRACK


@pytest.mark.parametrize("recent", [Decimal(0), Decimal(-40)])
def test_a_zero_or_negative_pace_never_reaches_the_target(recent: Decimal) -> None:
    """Nothing gained (or jobs lost, -0.4 a day): the projection is the value (or less) and the
    target is never reached."""
    projection = project(JOBS, Decimal(500), recent, ON)
    assert projection is not None
    assert projection.reached_on is None
    assert projection.projected == Decimal(500) + recent / 100 * 183
    assert outlook(JOBS, False, projection) is Outlook.AT_RISK


def test_a_target_already_reached_is_reached_on_the_day_of_evaluation() -> None:
    projection = project(JOBS, Decimal(1000), Decimal(0), ON)
    assert projection == Projection(Decimal(0), Decimal(1000), ON)
    assert outlook(JOBS, False, projection) is Outlook.ON_TRACK


def test_after_the_deadline_the_projection_is_the_value() -> None:
    """No days left: projected = value; the pace still says when the target would be reached
    (100 missing at 2 a day: 50 days after 2026-02-01)."""
    on = date(2026, 2, 1)
    projection = project(JOBS, Decimal(900), Decimal(200), on)
    assert projection == Projection(Decimal(2), Decimal(900), date(2026, 3, 23))


def test_the_pace_window_starts_no_earlier_than_the_start() -> None:
    """On 2025-01-20 only 20 days have passed: 60 jobs over 20 days is 3 a day, not 0.6.
    3 * (345 days left) + 60 = 1,095."""
    on = date(2025, 1, 20)
    assert pace_days(JOBS, on) == (date(2025, 1, 1).toordinal(), on.toordinal())
    projection = project(JOBS, Decimal(60), Decimal(60), on)
    assert projection is not None
    assert projection.pace_per_day == Decimal(3)
    assert projection.projected == Decimal(60 + 3 * 345)


def test_the_pace_window_is_its_last_days() -> None:
    """100 days ending on July 1: March 24 to July 1, both included."""
    assert pace_days(JOBS, ON) == (date(2025, 3, 24).toordinal(), ON.toordinal())
    assert (ON - date(2025, 3, 24)).days + 1 == 100


def test_nothing_is_projected_before_the_start() -> None:
    assert pace_days(JOBS, date(2024, 12, 31)) is None
    assert project(JOBS, Decimal(0), Decimal(0), date(2024, 12, 31)) is None


@pytest.mark.parametrize(
    ("compute", "projected"),
    [
        ({"aggregation": "sum", "event_type": "hiring.report", "field": "jobs_created"}, True),
        (
            {
                "aggregation": "count",
                "event_type": "trade.shipment",
                "where": {"mode": "rail"},
                "window": "all",
            },
            True,
        ),
        (
            {
                "aggregation": "count",
                "event_type": "project.milestone",
                "where": {"stage_at_least": "financed"},
                "window": "all",
            },
            False,
        ),
        (
            {
                "aggregation": "sum",
                "event_type": "project.milestone",
                "field": "investment_usd",
                "window": "all",
            },
            False,
        ),
        (
            {
                "aggregation": "sum",
                "event_type": "trade.shipment",
                "field": "tonnes",
                "window": "year_to_date",
            },
            False,
        ),
        (
            {
                "aggregation": "share",
                "numerator": {"event_type": "trade.shipment", "field": "value_usd"},
                "denominator": {"event_type": "trade.shipment", "field": "value_usd"},
            },
            False,
        ),
        (
            {
                "aggregation": "yoy_growth",
                "measure": {"event_type": "trade.shipment", "field": "tonnes"},
            },
            False,
        ),
    ],
    ids=["sum", "count", "project count", "project sum", "year-to-date sum", "share", "growth"],
)
def test_only_cumulative_indicators_are_projected(compute: dict[str, Any], projected: bool) -> None:
    indicator = _indicator(compute=compute, target="0.5" if not projected else "1000")
    assert is_projected(indicator) is projected
    assert (project(indicator, Decimal(1), Decimal(1), ON) is not None) is projected


def test_the_default_pace_window_is_180_days() -> None:
    assert _indicator(pace_window=None).pace_window == timedelta(days=180)


@pytest.mark.parametrize("window", ["12h", "0d", "1d6h"])
def test_a_pace_window_of_part_of_a_day_is_refused_naming_the_field(window: str) -> None:
    text = f"""version: 1
roadmap: r
title: R
indicators:
  - id: jobs
    title: Jobs
    unit: jobs
    compute: {{aggregation: sum, event_type: hiring.report, field: jobs_created}}
    baseline: 0
    target: 10
    start: 2025-01-01
    deadline: 2025-12-31
    tolerance: 0.1
    severity: warning
    owner: office
    runbook: docs/runbooks.md#jobs
    pace_window: {window}
"""
    with pytest.raises(RoadmapFileError, match="pace_window"):
        parse_roadmap(text, Path("roadmap.yaml"))
