"""IndicatorBoard: KPI snapshots of several metrics replicas put together exactly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.alerts.board import IndicatorBoard, IndicatorView
from tests.unit.test_alerts_builders import (
    FLOUR,
    GROWTH,
    JOBS,
    PROJECTS,
    full_roadmap,
    snapshot,
    utc,
)

T1 = utc(2026, 3, 1, 10)
T2 = utc(2026, 3, 1, 11)
T3 = utc(2026, 3, 1, 12)


@pytest.fixture
def board() -> IndicatorBoard:
    return IndicatorBoard(full_roadmap())


def test_two_replicas_with_disjoint_partitions_add_up_exactly(board: IndicatorBoard) -> None:
    """Replica A owns partitions 0 and 1 (300 + 400), replica B partition 2 (500): 1,200 jobs.

    The snapshots' own ``value`` (a decoy -1) is not used: the value comes from the sums.
    """
    assert board.add(snapshot(JOBS, {0: {"sum": 300}, 1: {"sum": 400}}, count=3, evaluated_at=T1))
    assert board.add(snapshot(JOBS, {2: {"sum": 500}}, count=3, evaluated_at=T2))
    view = board.view(JOBS)
    assert view.value == Decimal(1200)
    assert (view.covered, view.partition_count) == (3, 3)
    assert view.evaluated_at == T2


def test_fractional_sums_add_without_float_error(board: IndicatorBoard) -> None:
    """0.1 + 0.2 over two partitions is exactly 0.3 (Decimal, not float)."""
    board.add(snapshot(JOBS, {0: {"sum": "0.1"}}, count=2, evaluated_at=T1))
    board.add(snapshot(JOBS, {1: {"sum": "0.2"}}, count=2, evaluated_at=T1))
    assert board.view(JOBS).value == Decimal("0.3")


def test_share_is_taken_after_adding_not_averaged(board: IndicatorBoard) -> None:
    """Partition 0: 1/10 (0.1), partition 1: 9/30 (0.3). Averaging would give 0.2; the share of
    the sums is (1 + 9) / (10 + 30) = 10/40 = 0.25."""
    board.add(snapshot(FLOUR, {0: {"numerator": 1, "denominator": 10}}, count=2, evaluated_at=T1))
    board.add(snapshot(FLOUR, {1: {"numerator": 9, "denominator": 30}}, count=2, evaluated_at=T1))
    assert board.view(FLOUR).value == Decimal("0.25")


def test_growth_is_taken_after_adding(board: IndicatorBoard) -> None:
    """current 60 + 90 = 150 over previous 100 + 20 = 120: 150/120 - 1 = 0.25."""
    board.add(snapshot(GROWTH, {0: {"current": 60, "previous": 100}}, count=2, evaluated_at=T1))
    board.add(snapshot(GROWTH, {1: {"current": 90, "previous": 20}}, count=2, evaluated_at=T1))
    assert board.view(GROWTH).value == Decimal("0.25")


def test_share_over_a_zero_denominator_is_unknown(board: IndicatorBoard) -> None:
    """Every partition covered but the summed denominator is 0: the ratio is undefined (None)."""
    board.add(snapshot(FLOUR, {0: {"numerator": 0, "denominator": 0}}, count=1, evaluated_at=T1))
    view = board.view(FLOUR)
    assert view.value is None
    assert (view.covered, view.partition_count) == (1, 1)


def test_count_indicator_adds_counts(board: IndicatorBoard) -> None:
    """A count indicator adds its ``count`` components: 4 + 7 = 11."""
    board.add(snapshot(PROJECTS, {0: {"count": 4}, 1: {"count": 7}}, count=2, evaluated_at=T1))
    assert board.view(PROJECTS).value == Decimal(11)


def test_an_older_snapshot_does_not_replace_a_newer_one(board: IndicatorBoard) -> None:
    """For the same partitions, a snapshot computed earlier than the kept one is ignored."""
    assert board.add(snapshot(JOBS, {0: {"sum": 900}}, count=1, evaluated_at=T2))
    assert not board.add(snapshot(JOBS, {0: {"sum": 100}}, count=1, evaluated_at=T1))
    assert board.view(JOBS).value == Decimal(900)
    assert board.newest_evaluation == T2


def test_a_newer_snapshot_replaces_the_older_one(board: IndicatorBoard) -> None:
    """A later snapshot for the same partitions replaces it (and so does one at the same time)."""
    board.add(snapshot(JOBS, {0: {"sum": 100}}, count=1, evaluated_at=T1))
    assert board.add(snapshot(JOBS, {0: {"sum": 900}}, count=1, evaluated_at=T2))
    assert board.view(JOBS).value == Decimal(900)
    assert board.add(snapshot(JOBS, {0: {"sum": 950}}, count=1, evaluated_at=T2))
    assert board.view(JOBS).value == Decimal(950)


def test_after_a_rebalance_each_partition_takes_its_freshest_snapshot(
    board: IndicatorBoard,
) -> None:
    """A owned {0, 1} at T1 (100 + 200); after a rebalance B reports {1} at T2 (250) and A {0} at
    T3 (120). Partition 0 comes from T3 (120), partition 1 from T2 (250): 370."""
    board.add(snapshot(JOBS, {0: {"sum": 100}, 1: {"sum": 200}}, count=2, evaluated_at=T1))
    assert board.view(JOBS).value == Decimal(300)
    board.add(snapshot(JOBS, {1: {"sum": 250}}, count=2, evaluated_at=T2))
    assert board.view(JOBS).value == Decimal(350)  # 100 (T1) + 250 (T2)
    board.add(snapshot(JOBS, {0: {"sum": 120}}, count=2, evaluated_at=T3))
    assert board.view(JOBS).value == Decimal(370)


def test_one_partition_snapshot_may_carry_only_totals(board: IndicatorBoard) -> None:
    """Without ``partition_components``, a snapshot of one partition counts its ``components``."""
    board.add(snapshot(JOBS, {0: {"sum": 40}}, count=2, evaluated_at=T1, per_partition=False))
    board.add(snapshot(JOBS, {1: {"sum": 2}}, count=2, evaluated_at=T1))
    assert board.view(JOBS).value == Decimal(42)


def test_missing_partition_leaves_the_value_unknown(board: IndicatorBoard) -> None:
    """Partitions 0 and 2 of 3 reported: a partial sum would look like a shortfall, so None,
    while the latest event and evaluation times are still known."""
    last = utc(2026, 2, 27)
    board.add(snapshot(JOBS, {0: {"sum": 300}}, count=3, evaluated_at=T1, last_event_at=last))
    board.add(snapshot(JOBS, {2: {"sum": 500}}, count=3, evaluated_at=T2))
    assert board.view(JOBS) == IndicatorView(None, last, T2, 2, 3)


def test_no_snapshot_yet(board: IndicatorBoard) -> None:
    """An indicator nobody reported on has an empty view."""
    assert board.view(JOBS) == IndicatorView(None, None, None, 0, 0)
    assert board.newest_evaluation is None


def test_latest_event_is_the_newest_over_all_snapshots(board: IndicatorBoard) -> None:
    """last_event_at is the maximum over replicas (2026-02-20 and 2026-02-25 -> 02-25)."""
    board.add(
        snapshot(JOBS, {0: {"sum": 1}}, count=2, evaluated_at=T2, last_event_at=utc(2026, 2, 20))
    )
    board.add(
        snapshot(JOBS, {1: {"sum": 1}}, count=2, evaluated_at=T1, last_event_at=utc(2026, 2, 25))
    )
    assert board.view(JOBS).last_event_at == utc(2026, 2, 25)


def test_snapshots_of_other_roadmaps_and_unknown_indicators_are_ignored(
    board: IndicatorBoard,
) -> None:
    """Only this roadmap's indicators are kept; the others change nothing."""
    assert not board.add(
        snapshot(JOBS, {0: {"sum": 5}}, count=1, evaluated_at=T3, roadmap="other-roadmap")
    )
    assert not board.add(snapshot("no_such_indicator", {0: {"sum": 5}}, count=1, evaluated_at=T3))
    assert board.view(JOBS) == IndicatorView(None, None, None, 0, 0)
    assert board.newest_evaluation is None
    assert set(board.views()) == {JOBS, FLOUR, PROJECTS, GROWTH}


def test_newest_evaluation_is_the_latest_over_indicators(board: IndicatorBoard) -> None:
    """newest_evaluation (the roadmap clock in event-time mode) is the max evaluated_at seen."""
    board.add(snapshot(JOBS, {0: {"sum": 1}}, count=1, evaluated_at=T3))
    board.add(snapshot(PROJECTS, {0: {"count": 1}}, count=1, evaluated_at=T1))
    assert board.newest_evaluation == T3


def test_the_projection_is_made_from_the_summed_recent_components(board: IndicatorBoard) -> None:
    """jobs_created (0 to 1,800 by 2029-12-31, pace over 180 days) on 2026-03-01: 300 + 400
    now, and 60 + 30 in the last 180 days, 0.5 a day. 1,401 days to the deadline: 700 + 700.5
    = 1,400.5. The 1,100 missing take 2,200 days."""
    board.add(snapshot(JOBS, {0: {"sum": 300, "recent": 60}}, count=2, evaluated_at=T1))
    board.add(snapshot(JOBS, {1: {"sum": 400, "recent": 30}}, count=2, evaluated_at=T2))
    projection = board.view(JOBS).projection
    assert projection is not None
    assert projection.pace_per_day == Decimal("0.5")
    assert projection.projected == Decimal("1400.5")
    assert projection.reached_on == T2.date() + timedelta(days=2200)


def test_a_snapshot_without_a_pace_gives_no_projection(board: IndicatorBoard) -> None:
    """A replica of a version before projections sends no 'recent': no projection, rather than
    a pace of zero that would put the target at risk."""
    board.add(snapshot(JOBS, {0: {"sum": 300, "recent": 60}}, count=2, evaluated_at=T1))
    board.add(snapshot(JOBS, {1: {"sum": 400}}, count=2, evaluated_at=T2))
    assert board.view(JOBS).value == Decimal(700)
    assert board.view(JOBS).projection is None


def test_ratios_are_not_projected(board: IndicatorBoard) -> None:
    board.add(snapshot(FLOUR, {0: {"numerator": 1, "denominator": 10}}, count=1, evaluated_at=T1))
    assert board.view(FLOUR).value == Decimal("0.1")
    assert board.view(FLOUR).projection is None
