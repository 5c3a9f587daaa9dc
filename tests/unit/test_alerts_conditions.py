"""Which alert conditions hold at a moment, their figures and text, and the DLQ window.

Trajectory used throughout (see test_alerts_builders): jobs_created runs linearly from 0 at
2025-01-01T00:00Z to 1,800 at 2030-01-01T00:00Z (1,826 days); R0 = 2028-10-01T12:00Z is 0.75 of
the way, so 1,350 jobs are expected then, and the alert bound is 1,350 * 0.9 = 1,215.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from contracts.alerts_file import PipelineRule
from contracts.records import AlertName
from contracts.roadmap import RoadmapFile
from contracts.roadmap.model import Severity
from contracts.roadmap.projection import project
from services.alerts.board import IndicatorView
from services.alerts.conditions import (
    PIPELINE_INDICATOR,
    Condition,
    conditions_at,
    indicator_conditions,
    pipeline_condition,
)
from services.alerts.pipeline_window import BUCKET_MS, PipelineFigures, PipelineWindow
from services.alerts.wording import amount, difference, duration, moment, percent, with_unit
from tests.unit.test_alerts_builders import (
    BEGINS,
    ENDS,
    JOBS,
    R0,
    ROADMAP_ID,
    full_roadmap,
    jobs_board,
    jobs_roadmap,
    utc,
)

TITLE = "Jobs created by joint industrial projects"
FRESH = utc(2028, 9, 30)  # a day before R0: well within the 45-day freshness


@pytest.fixture
def roadmap() -> RoadmapFile:
    return jobs_roadmap()


def _at(
    roadmap: RoadmapFile, value: Decimal | int | None, at: datetime, last: datetime | None = FRESH
) -> list[Condition]:
    view = IndicatorView(
        None if value is None else Decimal(value), last, at, 1 if value is not None else 0, 1
    )
    return indicator_conditions(ROADMAP_ID, roadmap.indicator(JOBS), view, at)


def _names(found: list[Condition]) -> list[AlertName]:
    return [c.alertname for c in found]


# -- RoadmapTargetBehind -----------------------------------------------------------------------


def test_target_behind_text_and_figures(roadmap: RoadmapFile) -> None:
    """1,120 at R0 (expected 1,350): 1,120/1,800 = 62.2% -> 62%; 1,350 - 1,120 = 230 behind;
    230/1,350 = 17.04% -> 17%."""
    (found,) = _at(roadmap, 1120, R0)
    assert found.alertname is AlertName.TARGET_BEHIND
    assert found.clock == "roadmap"
    assert found.labels == {
        "alertname": "RoadmapTargetBehind",
        "indicator": "jobs_created",
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": ROADMAP_ID,
    }
    assert found.key == f"{ROADMAP_ID}/RoadmapTargetBehind/jobs_created"
    notes = found.annotations
    assert notes["description"] == (
        "Jobs created by joint industrial projects: 1,120 of 1,800 jobs (62%); expected 1,350 by "
        "now on the linear trajectory to 2029-12-31; 230 behind (17%)."
    )
    assert notes["summary"] == f"{TITLE}: 230 behind the trajectory (17%)"
    assert Decimal(notes["actual"]) == 1120
    assert Decimal(notes["expected"]) == 1350
    assert Decimal(notes["shortfall"]) == 230
    assert Decimal(notes["target"]) == 1800
    assert notes["unit"] == "jobs"
    assert notes["deadline"] == "2029-12-31"
    assert notes["runbook_url"] == "docs/runbooks.md#jobs_created"


@pytest.mark.parametrize(
    ("value", "behind"),
    [
        (Decimal("1214.99"), True),  # below 1,350 * (1 - 0.10) = 1,215
        (Decimal(1215), False),  # on the bound: within tolerance
        (Decimal(1349), False),
        (Decimal(2000), False),
    ],
)
def test_behind_only_below_the_tolerance_band(
    roadmap: RoadmapFile, value: Decimal, behind: bool
) -> None:
    """TargetBehind holds when actual < expected * (1 - tolerance), i.e. < 1,215 at R0."""
    assert (AlertName.TARGET_BEHIND in _names(_at(roadmap, value, R0))) is behind


def test_quarter_way_expected_450(roadmap: RoadmapFile) -> None:
    """At 2026-04-02T12:00Z (456.5 days = 0.25 of 1,826) 450 are expected: 400 is 50 behind
    (11%), 405 = 450 * 0.9 is not behind."""
    # 456.5 days = 456 days 12 hours: 2025-01-01 + 365 = 2026-01-01, + 91 = 2026-04-02, + 12 h.
    at = utc(2026, 4, 2, 12)
    (found,) = _at(roadmap, 400, at, last=utc(2026, 4, 1))
    assert Decimal(found.annotations["expected"]) == 450
    assert found.annotations["summary"] == f"{TITLE}: 50 behind the trajectory (11%)"
    assert _at(roadmap, 405, at, last=utc(2026, 4, 1)) == []


def test_unknown_value_says_nothing_about_the_trajectory(roadmap: RoadmapFile) -> None:
    """A value of None (partitions missing) cannot be behind: only staleness is judged."""
    assert _at(roadmap, None, R0) == []


# -- before the start, after the deadline ----------------------------------------------------


@pytest.mark.parametrize("at", [BEGINS - timedelta(seconds=1), utc(2024, 6, 1)])
def test_no_alert_before_the_start(roadmap: RoadmapFile, at: datetime) -> None:
    """Before 2025-01-01T00:00Z nothing is said, even with no data or a value far behind."""
    assert _at(roadmap, None, at, last=None) == []
    assert _at(roadmap, -500, at, last=None) == []


def test_at_the_start_without_data_nothing_holds_yet(roadmap: RoadmapFile) -> None:
    """At the very start, with no data, staleness is 0 (not > 45 days): nothing holds."""
    assert _at(roadmap, None, BEGINS, last=None) == []


def test_deadline_missed_only_from_the_end_of_the_deadline_day(roadmap: RoadmapFile) -> None:
    """2029-12-31T23:59:59Z is still before the deadline (TargetBehind: expected just under
    1,800, bound ~1,620 > 1,500); from 2030-01-01T00:00Z it is DeadlineMissed instead.
    1,500/1,800 = 83.3% -> 83%; missed by 300, 300/1,800 = 16.7% -> 17%."""
    last = utc(2029, 12, 20)
    assert _names(_at(roadmap, 1500, ENDS - timedelta(seconds=1), last=last)) == [
        AlertName.TARGET_BEHIND
    ]
    (found,) = _at(roadmap, 1500, ENDS, last=last)
    assert found.alertname is AlertName.DEADLINE_MISSED
    assert found.annotations["description"] == (
        f"{TITLE}: 1,500 of 1,800 jobs (83%) after the deadline 2029-12-31; "
        "target missed by 300 (17%)."
    )
    assert found.annotations["summary"] == f"{TITLE}: target missed by 300"
    assert Decimal(found.annotations["expected"]) == 1800
    assert Decimal(found.annotations["shortfall"]) == 300


@pytest.mark.parametrize(
    ("value", "missed"), [(Decimal(1619), True), (Decimal(1620), False), (Decimal(1800), False)]
)
def test_deadline_missed_uses_the_tolerance(
    roadmap: RoadmapFile, value: Decimal, missed: bool
) -> None:
    """After the deadline the bound is 1,800 * 0.9 = 1,620."""
    at = ENDS + timedelta(days=10)
    found = _at(roadmap, value, at, last=at - timedelta(days=1))
    assert _names(found) == ([AlertName.DEADLINE_MISSED] if missed else [])


# -- RoadmapIndicatorStale -------------------------------------------------------------------


def test_stale_after_freshness_since_the_last_event(roadmap: RoadmapFile) -> None:
    """Last event 2028-08-01T00:00Z; 45 days later is 2028-09-15T00:00Z (31 + 14 days): not stale
    at that instant (not older than 45 days), stale one second later."""
    last = utc(2028, 8, 1)
    value = 1800  # never behind: only staleness is in play
    assert _at(roadmap, value, utc(2028, 9, 15), last=last) == []
    (found,) = _at(roadmap, value, utc(2028, 9, 15, 0, 0, 1), last=last)
    assert found.alertname is AlertName.INDICATOR_STALE
    assert found.annotations["description"] == (
        f"{TITLE}: no new data since 2028-08-01 00:00 UTC; data is expected at least every "
        "45 days. Its value may be out of date."
    )
    assert found.annotations["summary"] == f"{TITLE}: no recent data"
    assert found.annotations["last_event_at"] == "2028-08-01T00:00:00+00:00"
    assert found.annotations["freshness"] == "45 days"


def test_stale_counts_from_the_start_when_no_data_ever_came(roadmap: RoadmapFile) -> None:
    """No data at all: stale once more than 45 days passed since 2025-01-01 (2025-02-15T00:00Z)."""
    assert _at(roadmap, None, utc(2025, 2, 15), last=None) == []
    (found,) = _at(roadmap, None, utc(2025, 2, 15, 0, 0, 1), last=None)
    assert found.alertname is AlertName.INDICATOR_STALE
    assert found.annotations["description"] == (
        f"{TITLE}: no data since the roadmap started on 2025-01-01; data is expected at least "
        "every 45 days. Its value may be out of date."
    )
    assert found.annotations["last_event_at"] == ""


def test_stale_and_behind_can_hold_together(roadmap: RoadmapFile) -> None:
    """An old value far behind: both alerts, staleness first."""
    found = _at(roadmap, 100, R0, last=utc(2028, 1, 1))
    assert _names(found) == [AlertName.INDICATOR_STALE, AlertName.TARGET_BEHIND]


# -- conditions_at ---------------------------------------------------------------------------


def test_conditions_at_from_a_board_keys_and_runbook_base() -> None:
    """From a real board (700 + 420 = 1,120 at R0), one condition keyed
    roadmap/alertname/indicator; runbook paths go after the base URL (one slash)."""
    roadmap = jobs_roadmap()
    board = jobs_board(roadmap, 1120, R0, FRESH)
    found = conditions_at(
        roadmap,
        board.views(),
        R0,
        rule=PipelineRule(),
        pipeline=None,
        runbook_base="https://git.example/repo/blob/main/",
    )
    key = f"{ROADMAP_ID}/RoadmapTargetBehind/jobs_created"
    assert list(found) == [key]
    assert found[key].annotations["runbook_url"] == (
        "https://git.example/repo/blob/main/docs/runbooks.md#jobs_created"
    )


def test_conditions_at_treats_unreported_indicators_as_without_data() -> None:
    """Indicators absent from the views are judged with no data: after 45/30 days (and past the
    default 45 days for the others) every indicator of the full roadmap is stale."""
    roadmap = full_roadmap()
    found = conditions_at(roadmap, {}, utc(2025, 3, 1), rule=PipelineRule(), pipeline=None)
    assert sorted(found) == sorted(
        f"{ROADMAP_ID}/RoadmapIndicatorStale/{i.id}" for i in roadmap.indicators
    )


def test_conditions_at_includes_the_pipeline_condition() -> None:
    """With pipeline figures above the limit, RoadmapPipelineRejecting joins the others."""
    roadmap = jobs_roadmap()
    board = jobs_board(roadmap, 1800, R0, FRESH)
    figures = PipelineFigures(rejected=5, total=20, window=timedelta(minutes=10))
    found = conditions_at(roadmap, board.views(), R0, rule=PipelineRule(), pipeline=figures)
    assert list(found) == [f"{ROADMAP_ID}/RoadmapPipelineRejecting/{PIPELINE_INDICATOR}"]


# -- the pipeline ----------------------------------------------------------------------------

RULE = PipelineRule()  # limit 0.05, window 10 minutes, at least 20 messages
WINDOW = timedelta(minutes=10)


@pytest.mark.parametrize(
    ("rejected", "total", "fires"),
    [
        (19, 19, False),  # all rejected, but fewer than min_messages (20)
        (0, 0, False),  # nothing seen: the ratio is undefined
        (1, 20, False),  # 0.05 exactly: not above the limit
        (2, 20, True),  # 0.10 > 0.05
        (6, 100, True),  # 0.06 > 0.05
        (5, 100, False),  # 0.05
    ],
)
def test_pipeline_condition_threshold(rejected: int, total: int, fires: bool) -> None:
    """Fires only with at least 20 messages and a DLQ share strictly above 5%."""
    found = pipeline_condition(ROADMAP_ID, RULE, PipelineFigures(rejected, total, WINDOW))
    assert (found is not None) is fires


def test_pipeline_condition_labels_text_and_wall_clock() -> None:
    """2 of 20 rejected: 10.0% against a 5.0% limit over 10 minutes; on the wall clock."""
    found = pipeline_condition(ROADMAP_ID, RULE, PipelineFigures(2, 20, WINDOW))
    assert found is not None
    assert found.clock == "wall"
    assert found.labels == {
        "alertname": "RoadmapPipelineRejecting",
        "indicator": "ingest_dlq_ratio",
        "severity": "warning",
        "owner": "platform",
        "roadmap": ROADMAP_ID,
    }
    assert found.annotations["summary"] == "Ingest is rejecting 10.0% of messages"
    assert found.annotations["description"] == (
        "Ingest sent 2 of 20 messages (10.0%) to the DLQ in the last 10 minutes; the limit is "
        "5.0%. Upstream data is being lost to the roadmap until the cause is fixed: see the DLQ "
        "records' reasons."
    )
    assert Decimal(found.annotations["actual"]) == Decimal("0.1")
    assert Decimal(found.annotations["shortfall"]) == Decimal("0.05")
    assert found.annotations["runbook_url"] == "docs/runbooks.md#pipeline_rejecting"


def test_window_counts_rejected_and_accepted() -> None:
    """18 accepted and 2 rejected within the window: 2 of 20, ratio 0.1."""
    window = PipelineWindow(WINDOW)
    window.count(1_000, rejected=False, messages=18)
    window.count(5_000, rejected=True)
    window.count(6_000, rejected=True)
    figures = window.figures(60_000)
    assert figures == PipelineFigures(2, 20, WINDOW)
    assert figures.ratio == Decimal("0.1")


def test_empty_window_has_no_ratio() -> None:
    """No messages: the ratio is None (not 0, not a division error)."""
    assert PipelineWindow(WINDOW).figures(1_000_000).ratio is None


def test_old_buckets_drop_out() -> None:
    """Buckets are 10 s long. A message at 0 ms (bucket 0) still counts at 600,000 ms (the
    window's start falls in bucket 0) and is dropped from 610,000 ms (window start in bucket 1);
    a message at 600,000 ms stays."""
    assert BUCKET_MS == 10_000
    window = PipelineWindow(WINDOW)
    window.count(0, rejected=True, messages=3)
    window.count(600_000, rejected=False, messages=4)
    assert window.figures(600_000) == PipelineFigures(3, 7, WINDOW)
    assert window.figures(610_000) == PipelineFigures(0, 4, WINDOW)
    # dropped for good, even when asked about an earlier time again
    assert window.figures(600_000) == PipelineFigures(0, 4, WINDOW)


def test_messages_after_now_are_not_counted_yet() -> None:
    """A bucket that starts after ``now`` is not counted, but kept for later."""
    window = PipelineWindow(WINDOW)
    window.count(70_000, rejected=True)
    assert window.figures(65_000) == PipelineFigures(0, 0, WINDOW)
    assert window.figures(70_000) == PipelineFigures(1, 1, WINDOW)


def test_window_drives_the_condition_on_and_off() -> None:
    """25 messages with 5 rejected (20%) fire; ten minutes and a bucket later, with 30 new
    accepted ones only, nothing is rejected in the window: no condition."""
    window = PipelineWindow(WINDOW)
    window.count(1_000, rejected=True, messages=5)
    window.count(2_000, rejected=False, messages=20)
    assert pipeline_condition(ROADMAP_ID, RULE, window.figures(30_000)) is not None
    window.count(612_000, rejected=False, messages=30)
    assert window.figures(615_000) == PipelineFigures(0, 30, WINDOW)
    assert pipeline_condition(ROADMAP_ID, RULE, window.figures(615_000)) is None


# -- wording ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (Decimal("0.102"), "ratio", "10.2%"),
        (Decimal("0.1025"), "ratio", "10.2%"),  # 10.25 -> half to even -> 10.2
        (Decimal(277_500_000), "USD", "USD 277.5 M"),
        (Decimal(1_000_000), "USD", "USD 1.0 M"),
        (Decimal(950), "USD", "USD 950"),
        (Decimal(1120), "jobs", "1,120"),
        (Decimal("1349.6"), "jobs", "1,350"),  # >= 100: whole numbers
        (Decimal("12.25"), "tonnes", "12.2"),  # < 100 and fractional: one place, half to even
        (Decimal(14), "projects", "14"),
        (Decimal("-0.04"), "jobs", "0.0"),  # never "-0.0"
    ],
)
def test_amount(value: Decimal, unit: str, text: str) -> None:
    """Numbers for a reader: ratios as percentages, USD in millions, thousands grouped."""
    assert amount(value, unit) == text


def test_difference_percent_and_units() -> None:
    """Ratio gaps are points; percent is a whole percentage and n/a over zero."""
    assert difference(Decimal("0.025"), "ratio") == "2.5 points"
    assert difference(Decimal(230), "jobs") == "230"
    assert with_unit(Decimal(1800), "jobs") == "1,800 jobs"
    assert with_unit(Decimal("0.19"), "ratio") == "19.0%"
    assert percent(Decimal(1120), Decimal(1800)) == "62%"
    assert percent(Decimal(1), Decimal(8)) == "12%"  # 12.5 -> half to even -> 12
    assert percent(Decimal(5), Decimal(0)) == "n/a"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=45), "45 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(minutes=10), "10 minutes"),
        (timedelta(seconds=90), "90 seconds"),
    ],
)
def test_duration(span: timedelta, text: str) -> None:
    """The largest whole unit that fits."""
    assert duration(span) == text


def test_moment() -> None:
    """Minutes, UTC."""
    assert moment(utc(2027, 3, 1, 10, 0, 59)) == "2027-03-01 10:00 UTC"


# -- RoadmapTargetAtRisk -----------------------------------------------------------------------
# At R0 (2028-10-01), 456 days are left to 2029-12-31; the target less its tolerance is 1,620.


def _projected(roadmap: RoadmapFile, value: int, recent: int, at: datetime = R0) -> list[Condition]:
    indicator = roadmap.indicator(JOBS)
    projection = project(indicator, Decimal(value), Decimal(recent), at.date())
    view = IndicatorView(Decimal(value), at - timedelta(days=1), at, 1, 1, projection)
    return indicator_conditions(ROADMAP_ID, indicator, view, at)


def test_at_risk_when_on_the_trajectory_but_the_pace_falls_short(roadmap: RoadmapFile) -> None:
    """1,300 (above the 1,215 bound: not behind) gaining 90 in 180 days, 0.5 a day: 1,300 +
    228 = 1,528 by the deadline, 272 short of 1,800 (15%); the 500 missing take 1,000 days."""
    (found,) = _projected(roadmap, 1300, 90)
    assert found.alertname is AlertName.TARGET_AT_RISK
    assert found.labels == {
        "alertname": "RoadmapTargetAtRisk",
        "indicator": "jobs_created",
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": ROADMAP_ID,
    }
    notes = found.annotations
    assert notes["summary"] == f"{TITLE}: at risk, 1,528 projected by 2029-12-31 against 1,800 jobs"
    assert notes["description"] == (
        f"{TITLE}: 1,300 of 1,800 jobs (72%), not behind its trajectory yet. At the pace of the "
        "last 180 days (0.5 a day) it would be 1,528 by the deadline 2029-12-31, 272 short "
        "(15%); it would reach the target on 2031-06-28."
    )
    assert (notes["projected"], notes["projected_completion_on"]) == ("1528.0", "2031-06-28")
    assert (notes["actual"], notes["shortfall"]) == ("1300", "272.0")


def test_on_track_when_the_pace_carries_it_within_the_tolerance(roadmap: RoadmapFile) -> None:
    """1,300 gaining 144 in 180 days (0.8 a day): 1,300 + 364.8 = 1,664.8, above 1,620."""
    assert _projected(roadmap, 1300, 144) == []


def test_a_pace_of_zero_says_the_target_is_never_reached(roadmap: RoadmapFile) -> None:
    (found,) = _projected(roadmap, 1300, 0)
    assert found.annotations["description"].endswith(
        "at this pace it would never reach the target."
    )
    assert found.annotations["projected_completion_on"] == ""


def test_behind_is_said_instead_of_at_risk(roadmap: RoadmapFile) -> None:
    """1,120 is behind (below 1,215); its projection is short too, but one alert says it."""
    assert _names(_projected(roadmap, 1120, 0)) == [AlertName.TARGET_BEHIND]


def test_no_risk_is_raised_after_the_deadline(roadmap: RoadmapFile) -> None:
    """After the deadline the target is met or missed: RoadmapDeadlineMissed, never at risk."""
    assert _names(_projected(roadmap, 1700, 0, ENDS + timedelta(days=1))) == []
    assert _names(_projected(roadmap, 1500, 0, ENDS + timedelta(days=1))) == [
        AlertName.DEADLINE_MISSED
    ]


def test_at_risk_is_a_warning_whatever_the_indicator_s_severity() -> None:
    roadmap = jobs_roadmap()
    critical = roadmap.model_copy(
        update={
            "indicators": [
                roadmap.indicator(JOBS).model_copy(update={"severity": Severity.CRITICAL})
            ]
        }
    )
    (found,) = _projected(critical, 1300, 90)
    assert found.labels["severity"] == "warning"
