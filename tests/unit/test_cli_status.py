"""`roadmap-monitor status`: the scorecard built from a /metrics text and the open alerts.

The metrics text is written by hand in the Prometheus exposition format the metrics service
serves (``roadmap_indicator_info`` with title and unit labels, the ``roadmap_indicator_*``
gauges and ``roadmap_evaluation_timestamp_seconds``); every expected cell is worked out here.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from services.commands.status import Row, render, scorecard

RULE = "─" * 135
EVALUATED = 1794744000.0
"""2026-11-15 12:00 UTC: 2026-01-01 is day 20454 since 1970 (56 years, 14 leap days), plus 318
days to November 15 and 12 hours."""

INFO = (
    'roadmap_indicator_info{{indicator="{id}",kind="{kind}",owner="office",'
    'roadmap="kz-by-2025-2029",severity="warning",title="{title}",unit="{unit}"}} 1.0'
)

METRICS_TEXT = "\n".join(
    [
        "# HELP roadmap_indicator_value Actual value now (absent while undefined).",
        "# TYPE roadmap_indicator_value gauge",
        'roadmap_indicator_value{indicator="jobs_created"} 560.0',
        'roadmap_indicator_value{indicator="industrial_projects_value_usd"} 2.775e+08',
        'roadmap_indicator_value{indicator="road_freight_growth_ratio"} 0.1888',
        "# HELP roadmap_indicator_target Target at the deadline.",
        "# TYPE roadmap_indicator_target gauge",
        'roadmap_indicator_target{indicator="jobs_created"} 1800.0',
        'roadmap_indicator_target{indicator="industrial_projects_value_usd"} 2.775e+08',
        'roadmap_indicator_target{indicator="road_freight_growth_ratio"} 0.19',
        'roadmap_indicator_target{indicator="flour_export_share_ratio"} 0.102',
        "# HELP roadmap_indicator_expected Where the trajectory says it should be now.",
        "# TYPE roadmap_indicator_expected gauge",
        'roadmap_indicator_expected{indicator="jobs_created"} 673.8',
        'roadmap_indicator_expected{indicator="industrial_projects_value_usd"} 2.5e+08',
        'roadmap_indicator_expected{indicator="road_freight_growth_ratio"} 0.19',
        'roadmap_indicator_expected{indicator="flour_export_share_ratio"} 0.102',
        "# HELP roadmap_indicator_progress_ratio Value divided by target.",
        "# TYPE roadmap_indicator_progress_ratio gauge",
        'roadmap_indicator_progress_ratio{indicator="jobs_created"} 0.3111111',
        'roadmap_indicator_progress_ratio{indicator="industrial_projects_value_usd"} 1.0',
        'roadmap_indicator_progress_ratio{indicator="road_freight_growth_ratio"} 0.9936842',
        "# HELP roadmap_indicator_projected The value at the deadline at the recent pace.",
        "# TYPE roadmap_indicator_projected gauge",
        'roadmap_indicator_projected{indicator="jobs_created"} 1220.4',
        'roadmap_indicator_projected{indicator="industrial_projects_value_usd"} 2.9e+08',
        "# HELP roadmap_indicator_outlook 1 for the indicator's outlook now.",
        "# TYPE roadmap_indicator_outlook gauge",
        'roadmap_indicator_outlook{indicator="jobs_created",outlook="at_risk"} 0.0',
        'roadmap_indicator_outlook{indicator="jobs_created",outlook="behind"} 1.0',
        'roadmap_indicator_outlook{indicator="jobs_created",outlook="on_track"} 0.0',
        'roadmap_indicator_outlook{indicator="industrial_projects_value_usd",outlook="on_track"}'
        " 1.0",
        'roadmap_indicator_outlook{indicator="road_freight_growth_ratio",outlook="on_track"} 1.0',
        "# HELP roadmap_indicator_component Additive parts of the value.",
        "# TYPE roadmap_indicator_component gauge",
        'roadmap_indicator_component{component="sum",indicator="jobs_created"} 560.0',
        "# HELP roadmap_indicator_info What each indicator is.",
        "# TYPE roadmap_indicator_info gauge",
        INFO.format(
            id="jobs_created",
            kind="sum",
            title="Jobs created by joint industrial projects",
            unit="jobs",
        ),
        INFO.format(
            id="industrial_projects_value_usd",
            kind="sum",
            title="Value of joint industrial projects",
            unit="USD",
        ),
        INFO.format(
            id="road_freight_growth_ratio",
            kind="yoy_growth",
            title="Year-over-year growth of road freight (year to date)",
            unit="ratio",
        ),
        INFO.format(
            id="flour_export_share_ratio",
            kind="share",
            title="Flour share of Kazakh exports to Belarus (by value, year to date)",
            unit="ratio",
        ),
        "# HELP roadmap_evaluation_timestamp_seconds The time indicators are evaluated at.",
        "# TYPE roadmap_evaluation_timestamp_seconds gauge",
        f"roadmap_evaluation_timestamp_seconds {EVALUATED}",
        "# HELP roadmap_freight_tonnes Tonnes shipped.",
        "# TYPE roadmap_freight_tonnes gauge",
        'roadmap_freight_tonnes{direction="KZ_to_BY",mode="road",commodity="other"} 12.0',
        "",
    ]
)


def alert(name: str, state: str, indicator: str) -> dict[str, Any]:
    """An alert as ``GET /v1/alerts`` lists it (the fields the scorecard reads, and more)."""
    return {
        "alertname": name,
        "state": state,
        "labels": {
            "alertname": name,
            "indicator": indicator,
            "severity": "warning",
            "owner": "office",
            "roadmap": "kz-by-2025-2029",
        },
        "annotations": {"summary": "..."},
        "dedup_key": f"{name}-{indicator}",
    }


ALERTS = [
    alert("RoadmapTargetBehind", "firing", "jobs_created"),
    alert("RoadmapIndicatorStale", "resolved", "road_freight_growth_ratio"),
    alert("RoadmapTargetBehind", "inactive", "industrial_projects_value_usd"),
    alert("RoadmapIndicatorStale", "pending", "flour_export_share_ratio"),
    alert("RoadmapPipelineRejecting", "firing", "ingest_dlq_ratio"),
]


def test_rows_follow_the_info_series_with_their_figures_and_open_alerts() -> None:
    """One row per roadmap_indicator_info, in its order, then the pipeline alert's own row."""
    rows, evaluated = scorecard(METRICS_TEXT, ALERTS)
    assert evaluated == EVALUATED
    assert rows == [
        Row(
            "jobs_created",
            "Jobs created by joint industrial projects",
            "jobs",
            Decimal(560),
            Decimal("673.8"),
            Decimal(1800),
            Decimal("0.3111111"),
            "firing: TargetBehind",
            Decimal("1220.4"),
            "behind",
        ),
        Row(
            "industrial_projects_value_usd",
            "Value of joint industrial projects",
            "USD",
            Decimal(277_500_000),
            Decimal(250_000_000),
            Decimal(277_500_000),
            Decimal(1),
            "ok",
            Decimal(290_000_000),
            "on track",
        ),
        Row(
            "road_freight_growth_ratio",
            "Year-over-year growth of road freight (year to date)",
            "ratio",
            Decimal("0.1888"),
            Decimal("0.19"),
            Decimal("0.19"),
            Decimal("0.9936842"),
            "ok",
            None,  # a ratio is not projected
            "on track",
        ),
        Row(
            "flour_export_share_ratio",
            "Flour share of Kazakh exports to Belarus (by value, year to date)",
            "ratio",
            None,
            Decimal("0.102"),
            Decimal("0.102"),
            None,
            "pending: IndicatorStale",
        ),
        Row(
            "ingest_dlq_ratio",
            "ingest_dlq_ratio",
            "",
            None,
            None,
            None,
            None,
            "firing: PipelineRejecting",
        ),
    ]


def _rendered(rows: list[Row], evaluated: float) -> str:
    out = io.StringIO()
    render(rows, evaluated, out)
    return out.getvalue()


def test_rendered_table() -> None:
    """The table (``rich``), as a file or a pipe gets it: plain text, whole lines, no trailing
    spaces. Units: jobs grouped, USD in millions, ratios in percent; "-" where unknown; figures
    right-aligned, names, outlooks and alerts left. 1,220.4 jobs show as 1,220."""
    rows, evaluated = scorecard(METRICS_TEXT, ALERTS)
    assert _rendered(rows, evaluated) == (
        "Roadmap scorecard, evaluated at 2026-11-15 12:00 UTC\n"
        "indicator                            actual      expected        target   progress"
        "     projected   outlook    alerts\n"
        f"{RULE}\n"
        "jobs_created                            560           674         1,800        31%"
        "         1,220   behind     firing: TargetBehind\n"
        "industrial_projects_value_usd   USD 277.5 M   USD 250.0 M   USD 277.5 M       100%"
        "   USD 290.0 M   on track   ok\n"
        "road_freight_growth_ratio             18.9%         19.0%         19.0%        99%"
        "             -   on track   ok\n"
        "flour_export_share_ratio                  -         10.2%         10.2%          -"
        "             -   -          pending: IndicatorStale\n"
        "ingest_dlq_ratio                          -             -             -          -"
        "             -   -          firing: PipelineRejecting\n"
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_states_are_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Firing red, pending yellow, ok and on track green, behind red (ANSI codes); the same
    words as in plain text."""
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: nothing wrapped
    monkeypatch.delenv("NO_COLOR", raising=False)
    rows, evaluated = scorecard(METRICS_TEXT, ALERTS)
    out = Terminal()
    render(rows, evaluated, out)
    text = out.getvalue()
    assert "\x1b[1;31mfiring\x1b[0m" in text
    assert "\x1b[33mpending\x1b[0m" in text
    assert "\x1b[32mok\x1b[0m" in text
    assert "\x1b[31mbehind\x1b[0m" in text
    assert "\x1b[32mon track\x1b[0m" in text
    assert "\x1b" not in _rendered(rows, evaluated)


def test_resolved_and_inactive_alerts_are_not_shown() -> None:
    """Only pending and firing alerts appear; a resolved or inactive one leaves "ok"."""
    rows, _ = scorecard(
        METRICS_TEXT,
        [
            alert("RoadmapTargetBehind", "resolved", "jobs_created"),
            alert("RoadmapIndicatorStale", "inactive", "jobs_created"),
            alert("RoadmapPipelineRejecting", "resolved", "ingest_dlq_ratio"),
        ],
    )
    assert [(r.indicator, r.alerts) for r in rows] == [
        ("jobs_created", "ok"),
        ("industrial_projects_value_usd", "ok"),
        ("road_freight_growth_ratio", "ok"),
        ("flour_export_share_ratio", "ok"),
    ]


def test_several_open_alerts_of_one_indicator_are_listed_together() -> None:
    """Two open alerts of one indicator share its cell, sorted: firing before pending."""
    rows, _ = scorecard(
        METRICS_TEXT,
        [
            alert("RoadmapIndicatorStale", "pending", "jobs_created"),
            alert("RoadmapTargetBehind", "firing", "jobs_created"),
        ],
    )
    assert rows[0].alerts == "firing: TargetBehind, pending: IndicatorStale"


def test_open_alerts_of_indicators_without_info_get_rows_sorted_by_name() -> None:
    """Alerts for indicators the metrics text does not describe each get a bare row."""
    rows, _ = scorecard(
        METRICS_TEXT,
        [
            alert("RoadmapPipelineRejecting", "firing", "ingest_dlq_ratio"),
            alert("RoadmapTargetBehind", "pending", "custom_indicator"),
        ],
    )
    assert rows[4:] == [
        Row(
            "custom_indicator",
            "custom_indicator",
            "",
            None,
            None,
            None,
            None,
            "pending: TargetBehind",
        ),
        Row(
            "ingest_dlq_ratio",
            "ingest_dlq_ratio",
            "",
            None,
            None,
            None,
            None,
            "firing: PipelineRejecting",
        ),
    ]


def test_empty_metrics_text_gives_no_rows_and_an_unknown_time() -> None:
    """No series and no alerts: no rows, and the evaluation time shows as "?"."""
    rows, evaluated = scorecard("", [])
    assert (rows, evaluated) == ([], 0.0)
    assert _rendered(rows, evaluated) == (
        "Roadmap scorecard, evaluated at ?\n"
        "indicator   actual   expected   target   progress   projected   outlook   alerts\n"
        f"{'─' * 80}\n"
    )


def test_small_amounts_keep_one_decimal_and_usd_below_a_million_is_grouped() -> None:
    """Below 100 a fraction keeps one decimal; USD under a million is written out in full."""
    rows = [
        Row("a", "A", "tonnes", Decimal("12.34"), Decimal(12), Decimal(1500), None, "ok"),
        Row("b", "B", "USD", Decimal("950000"), Decimal("1000000"), Decimal("2e6"), None, "ok"),
    ]
    lines = _rendered(rows, EVALUATED).splitlines()
    # Columns 3 apart; widths: indicator 9 (header), actual 11, expected 9, target 9, progress
    # 8, projected 9, outlook 7 (the headers); no progress, projection or outlook: "-".
    rest = "          -           -   -         ok"
    assert lines[3] == "a" + " " * 18 + "12.3" + " " * 10 + "12" + " " * 7 + "1,500" + rest
    assert lines[4] == "b           USD 950,000   USD 1.0 M   USD 2.0 M" + rest
