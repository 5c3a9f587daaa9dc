"""Readings: values from components, windows, the event clock and indicator freshness."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from contracts.roadmap.model import Window
from services.metrics.fold import Applied, PartitionState
from services.metrics.plan import Kind, RoadmapPlan
from services.metrics.readings import event_clock, value_of, window_days, year_to_date
from tests.unit.test_metrics_builders import (
    LABELS,
    default_plan,
    hiring,
    milestone,
    outcomes,
    reading,
    shipment,
    state_of,
    utc,
)

AT = utc(2025, 6, 15, 12)


@pytest.fixture
def plan() -> RoadmapPlan:
    return default_plan()


# -- value_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "components", "expected"),
    [
        ("sum", [1_500_000], Decimal("1.5")),
        ("sum", [-2_000_000], Decimal(-2)),
        ("sum", [0], Decimal(0)),
        ("count", [3_000_000], Decimal(3)),
        ("share", [1_000_000, 4_000_000], Decimal("0.25")),
        ("share", [0, 4_000_000], Decimal(0)),
        ("share", [5, 0], None),
        ("share", [0, 0], None),
        ("yoy_growth", [3_000_000, 2_000_000], Decimal("0.5")),
        ("yoy_growth", [0, 2_000_000], Decimal(-1)),
        ("yoy_growth", [2_000_000, 2_000_000], Decimal(0)),
        ("yoy_growth", [5_000_000, 0], None),
        ("yoy_growth", [0, 0], None),
    ],
)
def test_value_of_each_kind(kind: Kind, components: list[int], expected: Decimal | None) -> None:
    """sum/count are the component in units; share is top/bottom; growth top/bottom - 1."""
    assert value_of(kind, components) == expected


def test_share_value_is_exact_decimal_not_float() -> None:
    """1/3 as a share is the decimal quotient (28 digits), not a float round-trip."""
    got = value_of("share", [1, 3])
    assert got == Decimal(1) / Decimal(3)
    assert isinstance(got, Decimal)


# -- windows ---------------------------------------------------------------------------------


def _days(first: date, last: date) -> tuple[int, int]:
    return first.toordinal(), last.toordinal()


@pytest.mark.parametrize(
    ("on", "years_back", "first", "last"),
    [
        (date(2025, 6, 15), 0, date(2025, 1, 1), date(2025, 6, 15)),
        (date(2025, 1, 1), 0, date(2025, 1, 1), date(2025, 1, 1)),
        (date(2025, 12, 31), 0, date(2025, 1, 1), date(2025, 12, 31)),
        (date(2025, 6, 15), 1, date(2024, 1, 1), date(2024, 6, 15)),
        (date(2026, 1, 15), 1, date(2025, 1, 1), date(2025, 1, 15)),
        (date(2025, 3, 1), 2, date(2023, 1, 1), date(2023, 3, 1)),
        # A year back from 29 February ends on the 28th; from a plain 28th, on the 28th.
        (date(2024, 2, 29), 1, date(2023, 1, 1), date(2023, 2, 28)),
        (date(2025, 2, 28), 1, date(2024, 1, 1), date(2024, 2, 28)),
    ],
)
def test_year_to_date_runs_to_the_same_day(
    on: date, years_back: int, first: date, last: date
) -> None:
    """January 1 to on's day and month, years_back years earlier (equal spans for growth)."""
    assert year_to_date(on, years_back=years_back) == _days(first, last)


def test_window_days_for_each_window(plan: RoadmapPlan) -> None:
    """all: every day; since_start: start to the evaluation day; year_to_date: Jan 1 to it."""
    indicator = plan.indicator("jobs_created").indicator  # start 2025-01-01
    on = date(2028, 2, 10)
    assert window_days(Window.ALL, indicator, on) is None
    assert window_days(Window.SINCE_START, indicator, on) == _days(date(2025, 1, 1), on)
    assert window_days(Window.YEAR_TO_DATE, indicator, on) == _days(date(2028, 1, 1), on)


def test_leap_day_shipments_count_in_their_year(plan: RoadmapPlan) -> None:
    """A road shipment on 2028-02-29 is in Feb 2028 YTD; growth compares with Jan-Feb 2027."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=30, shipped_on="2028-02-29"),
            shipment("e-2", "S-2", tonnes=20, shipped_on="2027-02-28"),
            shipment("e-3", "S-3", tonnes=99, shipped_on="2027-03-01"),
        ],
    )
    got = reading(plan, state, "road_freight_growth_ratio", utc(2028, 2, 29, 23, 59))
    assert got.components == {"current": Decimal(30), "previous": Decimal(20)}
    assert got.value == Decimal("0.5")


# -- the event clock ---------------------------------------------------------------------------


def test_event_clock_is_none_before_any_event(plan: RoadmapPlan) -> None:
    """No event folded: no event time."""
    assert event_clock({}) is None
    assert event_clock({0: PartitionState(plan, LABELS)}) is None


def test_event_clock_is_newest_occurred_at_over_partitions(plan: RoadmapPlan) -> None:
    """The newest occurred_at of any partition, whatever the arrival order or event type."""
    s0 = state_of(
        plan,
        [
            shipment("e-1", "S-1", occurred_at="2025-03-05T10:00:00Z"),
            shipment("e-2", "S-2", occurred_at="2025-03-01T10:00:00Z"),
        ],
    )
    s1 = state_of(plan, [milestone("m-1", "P-1", occurred_at="2025-03-07T08:30:00+02:00")])
    assert event_clock({0: s0}) == utc(2025, 3, 5, 10)
    assert event_clock({0: s0, 1: s1}) == utc(2025, 3, 7, 6, 30)


def test_event_clock_does_not_go_back_for_late_older_events(plan: RoadmapPlan) -> None:
    """An older event of another key, or a stale version, arriving last leaves the clock alone."""
    state = state_of(plan, [hiring("h-2", "P-1", "2025-03", 2, occurred_at="2025-04-10T00:00Z")])
    late = [
        hiring("h-3", "P-2", "2025-03", 1, occurred_at="2025-04-02T00:00Z"),
        hiring("h-1", "P-1", "2025-03", 1, occurred_at="2025-04-01T00:00Z"),
    ]
    assert outcomes(state, late) == [Applied.NEW, Applied.STALE]
    assert event_clock({0: state}) == utc(2025, 4, 10)


# -- last_event_at --------------------------------------------------------------------------


def test_last_event_at_is_none_without_data(plan: RoadmapPlan) -> None:
    """An indicator no event has touched has no last_event_at."""
    state = state_of(plan, [shipment("e-1", "S-1", occurred_at="2025-03-01T10:00Z")])
    assert reading(plan, state, "jobs_created", AT).last_event_at is None
    assert reading(plan, state, "industrial_projects", AT).last_event_at is None


def test_last_event_at_only_moves_for_events_that_change_the_indicator(plan: RoadmapPlan) -> None:
    """A road shipment at 10:00 and a rail one at 11:00: road freight 10:00, flour share 11:00."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", value_usd=5, occurred_at="2025-03-01T10:00Z"),
            shipment("e-2", "S-2", mode="rail", value_usd=5, occurred_at="2025-03-01T11:00Z"),
        ],
    )
    assert reading(plan, state, "road_freight_tonnes", AT).last_event_at == utc(2025, 3, 1, 10)
    assert reading(plan, state, "road_freight_growth_ratio", AT).last_event_at == utc(
        2025, 3, 1, 10
    )
    assert reading(plan, state, "flour_export_share_ratio", AT).last_event_at == utc(2025, 3, 1, 11)


def test_last_event_at_moves_when_a_correction_removes_data(plan: RoadmapPlan) -> None:
    """Correcting a road shipment to rail at 12:00 changes road freight at 12:00."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", occurred_at="2025-03-01T10:00Z"),
            shipment("e-1b", "S-1", mode="rail", occurred_at="2025-03-01T12:00Z"),
        ],
    )
    assert reading(plan, state, "road_freight_tonnes", AT).last_event_at == utc(2025, 3, 1, 12)


def test_last_event_at_ignores_stale_and_duplicate_events(plan: RoadmapPlan) -> None:
    """Re-delivery and older versions change nothing, freshness included."""
    newer = hiring("h-2", "P-1", "2025-03", 2, occurred_at="2025-04-10T00:00Z")
    older = hiring("h-1", "P-1", "2025-03", 1, occurred_at="2025-04-01T00:00Z")
    state = state_of(plan, [newer, newer, older])
    assert reading(plan, state, "jobs_created", AT).last_event_at == utc(2025, 4, 10)


def test_last_event_at_is_newest_over_partitions(plan: RoadmapPlan) -> None:
    """Over several partitions, the newest of their last events."""
    s0 = state_of(plan, [milestone("m-1", "P-1", occurred_at="2025-02-01T00:00Z")])
    s1 = state_of(plan, [milestone("m-2", "P-2", occurred_at="2025-05-01T00:00Z")])
    got = reading(plan, {0: s0, 1: s1}, "industrial_projects", AT)
    assert got.last_event_at == utc(2025, 5, 1)


# -- progress --------------------------------------------------------------------------------


def test_progress_is_value_over_target(plan: RoadmapPlan) -> None:
    """jobs_created 450 of a 1800 target: progress 0.25."""
    state = state_of(plan, [hiring("h-1", "P-1", "2025-02", 450)])
    got = reading(plan, state, "jobs_created", AT)
    assert got.target == Decimal(1800)
    assert got.progress == Decimal("0.25")


def test_progress_is_none_for_an_undefined_value(plan: RoadmapPlan) -> None:
    """No previous year: growth undefined, so is its progress."""
    got = reading(plan, state_of(plan, []), "road_freight_growth_ratio", AT)
    assert (got.value, got.progress) == (None, None)
