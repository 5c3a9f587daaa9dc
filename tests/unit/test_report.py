"""The report's pure parts: replicas' histories put together, each indicator's status and
projection, the page (self-contained, every figure in place) and the charts' series."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.history import HistoryPoint, IndicatorHistory
from contracts.records import AlertName, AlertState, AlertTransition
from contracts.roadmap.loader import load_roadmap
from services.report.charts import chart
from services.report.combine import History, IncompleteHistory, Point, combine
from services.report.page import render, summarise
from tests.unit.test_metrics_builders import REPO

ROADMAP = load_roadmap(REPO / "deploy" / "roadmap.yaml")
JOBS = ROADMAP.indicator("jobs_created")
SHARE = ROADMAP.indicator("flour_export_share_ratio")
AT = datetime(2027, 1, 15, 12, tzinfo=UTC)


def _answer(partitions: dict[int, list[tuple[int, int]]], count: int = 2) -> IndicatorHistory:
    """A replica's answer for jobs_created at two points: {partition: [(sum, recent), ...]}."""
    days = [date(2026, 12, 31), date(2027, 1, 15)]
    points = [
        HistoryPoint(
            on=day,
            value=None,  # a replica's own value is not used
            expected=Decimal(700 + n),
            components={"sum": Decimal(0), "recent": Decimal(0)},
            partition_components={
                p: {"sum": Decimal(parts[n][0]), "recent": Decimal(parts[n][1])}
                for p, parts in partitions.items()
            },
        )
        for n, day in enumerate(days)
    ]
    return IndicatorHistory(
        roadmap="kz-by-2025-2029",
        indicator="jobs_created",
        title=JOBS.title,
        unit=JOBS.unit,
        aggregation="sum",
        step="month",
        evaluated_at=AT,
        partitions=sorted(partitions),
        partition_count=count,
        points=points,
    )


def test_two_replicas_add_up_exactly() -> None:
    """Partition 0: 300 then 310 (recent 40, 45); partition 1: 250 then 262 (30, 35)."""
    history = combine([_answer({0: [(300, 40), (310, 45)]}), _answer({1: [(250, 30), (262, 35)]})])
    assert [(p.on, p.value, p.recent) for p in history.points] == [
        (date(2026, 12, 31), Decimal(550), Decimal(70)),
        (date(2027, 1, 15), Decimal(572), Decimal(80)),
    ]


def test_a_partition_nobody_answered_for_stops_the_report_naming_it() -> None:
    with pytest.raises(IncompleteHistory, match=r"partitions \[1, 2\] of 3"):
        combine([_answer({0: [(1, 0), (1, 0)]}, count=3)])


def _summary(value: int, recent: int, on: date = date(2027, 1, 15)) -> Any:
    points = [Point(on, Decimal(value), Decimal(0), Decimal(recent))]
    return summarise(JOBS, History("jobs_created", AT, points))


def test_status_and_projection_from_the_last_point() -> None:
    """On 2027-01-15, 2 years and 14 days into 5 years: 1,800 * 745 / 1826 = 734 expected, the
    alert bound 661. 1,081 days are left to 2029-12-31."""
    behind = _summary(572, 18)  # 572 < 661
    assert behind.status == "behind"
    assert behind.projection is not None
    assert behind.projection.projected == Decimal(572) + Decimal(18) / 180 * 1081
    at_risk = _summary(700, 90)  # not behind; 700 + 0.5 * 1,081 = 1,240.5 < 1,620
    assert at_risk.status == "at risk"
    assert _summary(700, 180).status == "on track"  # 700 + 1,081 = 1,781
    assert _summary(1700, 0, date(2030, 1, 2)).status == "met"  # within the tolerance
    assert _summary(1500, 0, date(2030, 1, 2)).status == "missed"


def test_a_ratio_has_a_status_but_no_projection() -> None:
    points = [Point(date(2027, 1, 15), Decimal("0.1"), Decimal("0.102"), None)]
    summary = summarise(SHARE, History(SHARE.id, AT, points))
    assert (summary.status, summary.projection) == ("on track", None)


def _alert(name: AlertName, state: AlertState, since: datetime) -> AlertTransition:
    labels = {
        "alertname": name.value,
        "indicator": "jobs_created",
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": "kz-by-2025-2029",
    }
    return AlertTransition(
        alertname=name,
        state=state,
        labels=labels,
        annotations={"summary": f"{name.value}: jobs <behind>"},
        since=since,
        started_at=AT,
        at=AT,
        dedup_key=f"k-{name.value}",
    )


def _page(alerts: list[AlertTransition] | None) -> str:
    summaries = [_summary(572, 18)] + [
        summarise(i, History(i.id, AT, [Point(date(2027, 1, 15), None, Decimal(1), None)]))
        for i in ROADMAP.indicators[1:]
    ]
    return render(
        ROADMAP,
        summaries,
        alerts,
        at=date(2027, 1, 15),
        generated_at=AT,
        sources="http://127.0.0.1:8002",
    )


def test_the_page_is_one_self_contained_file_with_every_indicator() -> None:
    page = _page([])
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert ' src="' not in page
    assert 'href="http' not in page
    assert page.count('<section class="indicator"') == len(ROADMAP.indicators)
    assert page.count("<svg") == len(ROADMAP.indicators)
    assert '<span class="status status-behind">behind</span>' in page
    assert page.count("no data") >= 6
    assert "14 projets ... qui devraient créer 1.800 emplois" in page  # the article's sentence
    assert "@page { size: A4" in page
    assert "No alert fired up to this date." in page


def test_the_alerts_of_the_period_are_listed_escaped_and_later_ones_left_out() -> None:
    page = _page(
        [
            _alert(AlertName.TARGET_BEHIND, AlertState.FIRING, datetime(2026, 8, 2, tzinfo=UTC)),
            _alert(AlertName.TARGET_AT_RISK, AlertState.RESOLVED, datetime(2026, 5, 1, tzinfo=UTC)),
            _alert(AlertName.INDICATOR_STALE, AlertState.FIRING, datetime(2027, 3, 1, tzinfo=UTC)),
            _alert(AlertName.DEADLINE_MISSED, AlertState.PENDING, datetime(2026, 1, 1, tzinfo=UTC)),
        ]
    )
    section = page[page.index('<section class="alerts">') :]
    assert section.index("RoadmapTargetAtRisk") < section.index("RoadmapTargetBehind")
    assert "<td>resolved</td><td>2026-05-01</td>" in section
    assert "<td>firing</td><td>2026-08-02</td>" in section
    assert "RoadmapIndicatorStale" not in section  # after the report's date
    assert "RoadmapDeadlineMissed" not in section  # pending: never fired
    assert "jobs &lt;behind&gt;" in section


def test_an_unreadable_alerts_service_is_said_so() -> None:
    assert "The alerts service could not be read" in _page(None)


def test_a_chart_draws_its_series_and_a_projection_only_when_there_is_one() -> None:
    points = [
        Point(date(2025, 1, 31), Decimal(30), Decimal(30), Decimal(30)),
        Point(date(2025, 2, 28), Decimal(55), Decimal(58), Decimal(55)),
    ]
    summary = summarise(JOBS, History(JOBS.id, AT, points))
    svg = chart(JOBS, points, summary.projection)
    for series in ("actual", "trajectory", "target", "deadline", "projection"):
        assert f'data-series="{series}"' in svg
    assert svg.count('class="actual-point"') == 2
    assert 'data-series="projection"' not in chart(JOBS, points, None)


def test_the_deadline_day_itself_is_still_judged_against_the_trajectory() -> None:
    """On 2029-12-31 the target is due by the end of the day: 1,500 is behind (the trajectory
    is near 1,800), not yet "missed"; the next day it is missed."""
    assert _summary(1500, 0, date(2029, 12, 31)).status == "behind"
    assert _summary(1500, 0, date(2030, 1, 1)).status == "missed"
