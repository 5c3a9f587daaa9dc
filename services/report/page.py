"""The report as one HTML file: a summary table, a chart and the article's sentence per
indicator, and the alerts that fired in the period. Pure; no external asset (styles inline,
charts inline SVG), and laid out to print on A4 from a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import escape

from contracts.records import AlertState, AlertTransition
from contracts.roadmap.model import Indicator, RoadmapFile
from contracts.roadmap.projection import Projection, outlook, project
from contracts.roadmap.trajectory import TargetTrajectory
from services.alerts.wording import amount, percent
from services.report.charts import chart
from services.report.combine import History, Point


@dataclass(frozen=True, slots=True)
class Summary:
    indicator: Indicator
    points: list[Point]
    latest: Point | None
    projection: Projection | None
    status: str
    """``on track``, ``at risk``, ``behind``, ``met``, ``missed`` or ``no data``."""


def summarise(indicator: Indicator, history: History) -> Summary:
    """The indicator's status at the report's last point, and its projection from there."""
    latest = history.points[-1] if history.points else None
    if latest is None or latest.value is None:
        return Summary(indicator, history.points, latest, None, "no data")
    projection = None
    if latest.recent is not None:
        projection = project(indicator, latest.value, latest.recent, latest.on)
    if latest.on > indicator.deadline:  # the deadline day itself still counts as before it
        met = latest.value >= indicator.target * (1 - indicator.tolerance)
        return Summary(indicator, history.points, latest, projection, "met" if met else "missed")
    end = datetime.combine(latest.on + timedelta(days=1), time.min, UTC)
    behind = TargetTrajectory(indicator).is_behind(latest.value, end)
    status = outlook(indicator, behind, projection).value.replace("_", " ")
    return Summary(indicator, history.points, latest, projection, status)


def render(
    roadmap: RoadmapFile,
    summaries: Sequence[Summary],
    alerts: Sequence[AlertTransition] | None,
    *,
    at: date,
    generated_at: datetime,
    sources: str,
) -> str:
    """The whole page. ``alerts`` None: the alerts service could not be read (said so)."""
    body = [
        f"<header><h1>{escape(roadmap.title)}</h1>",
        f'<p class="meta">Progress report at {at.isoformat()} for the joint commission. '
        f"Generated {generated_at:%Y-%m-%d %H:%M} UTC from {escape(sources)}.</p></header>",
        _summary_table(summaries),
        *(_section(s) for s in summaries),
        _alerts(alerts, at),
    ]
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(roadmap.title)}: progress at {at.isoformat()}</title>",
            f"<style>{_STYLE}</style></head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def _show(value: Decimal | None, unit: str) -> str:
    return "-" if value is None else escape(amount(value, unit))


def _summary_table(summaries: Sequence[Summary]) -> str:
    rows = []
    for s in summaries:
        i, latest = s.indicator, s.latest
        value = latest.value if latest else None
        rows.append(
            "<tr>"
            f'<td><a href="#{i.id}">{escape(i.title)}</a></td>'
            f'<td class="n">{_show(value, i.unit)}</td>'
            f'<td class="n">{_show(latest.expected if latest else None, i.unit)}</td>'
            f'<td class="n">{_show(i.target, i.unit)}</td>'
            f'<td class="n">{"-" if value is None else percent(value, i.target)}</td>'
            f'<td class="n">{_show(s.projection.projected if s.projection else None, i.unit)}</td>'
            f"<td>{_reached(s)}</td>"
            f'<td><span class="status {_css(s.status)}">{s.status}</span></td>'
            "</tr>"
        )
    return (
        '<section class="summary"><h2>Summary</h2><table><thead><tr><th>indicator</th>'
        '<th class="n">actual</th><th class="n">expected now</th><th class="n">target</th>'
        '<th class="n">progress</th><th class="n">projected</th>'
        "<th>reached on</th><th>status</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _reached(summary: Summary) -> str:
    projection, latest = summary.projection, summary.latest
    if latest is not None and latest.value is not None and latest.value >= summary.indicator.target:
        return "reached"
    if projection is None:
        return "not projected"
    if projection.reached_on is None:
        return "not at this pace"
    return projection.reached_on.isoformat()


def _section(summary: Summary) -> str:
    i = summary.indicator
    latest = summary.latest
    facts = [
        ("actual", _show(latest.value if latest else None, i.unit)),
        ("expected now", _show(latest.expected if latest else None, i.unit)),
        ("target", f"{_show(i.target, i.unit)} by {i.deadline.isoformat()}"),
    ]
    if summary.projection is not None:
        facts.append(
            (
                f"pace (last {i.pace_window.days} days)",
                f"{_show(summary.projection.pace_per_day, i.unit)} a day",
            )
        )
        facts.append(("projected at the deadline", _show(summary.projection.projected, i.unit)))
        facts.append(("target reached", _reached(summary)))
    listed = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    quote = (
        f'<blockquote cite="the source article">{escape(i.source)}</blockquote>' if i.source else ""
    )
    return (
        f'<section class="indicator" id="{i.id}"><h2>{escape(i.title)} '
        f'<span class="status {_css(summary.status)}">{summary.status}</span></h2>'
        f"<figure>{chart(i, summary.points, summary.projection)}"
        '<figcaption><span class="key actual">actual, month by month</span>'
        '<span class="key trajectory">trajectory</span>'
        + (
            '<span class="key projection">projection at the recent pace</span>'
            if summary.projection is not None
            else ""
        )
        + '<span class="key target">target</span><span class="key deadline">deadline</span>'
        "</figcaption></figure>"
        f"<dl>{listed}</dl>{quote}</section>"
    )


def _alerts(alerts: Sequence[AlertTransition] | None, at: date) -> str:
    head = '<section class="alerts"><h2>Alerts in the period</h2>'
    if alerts is None:
        return head + "<p>The alerts service could not be read; no alerts are listed.</p></section>"
    end = datetime.combine(at + timedelta(days=1), time.min, UTC)
    fired = [
        a for a in alerts if a.state in (AlertState.FIRING, AlertState.RESOLVED) and a.since < end
    ]
    if not fired:
        return head + "<p>No alert fired up to this date.</p></section>"
    # Each alert's latest record: firing, or resolved; ``since`` on the roadmap clock, as the
    # alerts service records it.
    ordered = sorted(fired, key=lambda a: (a.since, a.alertname.value))
    rows = "".join(_alert_row(a) for a in ordered)
    summaries = "".join(f"<li>{escape(a.annotations.get('summary', ''))}</li>" for a in ordered)
    return (
        head + "<table><thead><tr><th>alert</th><th>indicator</th><th>severity</th>"
        "<th>state</th><th>since (roadmap clock)</th></tr></thead><tbody>"
        + rows
        + f'</tbody></table><ul class="alert-summaries">{summaries}</ul></section>'
    )


def _alert_row(alert: AlertTransition) -> str:
    cells = (
        alert.alertname.value,
        alert.labels.get("indicator", ""),
        alert.labels.get("severity", ""),
        alert.state.value,
        f"{alert.since:%Y-%m-%d}",
    )
    return "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def _css(status: str) -> str:
    return "status-" + status.replace(" ", "-")


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2430; margin: 24px auto; max-width: 780px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 18px 0 8px; }
.meta { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
.summary td:first-child { min-width: 170px; }
th, td { border-bottom: 1px solid #d8dce3; padding: 4px 6px; text-align: left;
  vertical-align: top; }
.n { text-align: right; white-space: nowrap; }
.status { border-radius: 3px; padding: 1px 6px; font-size: 12px; font-weight: 600; }
.status-on-track, .status-met { background: #dff3e4; color: #17602b; }
.status-at-risk { background: #fff1cc; color: #7a5400; }
.status-behind, .status-missed { background: #fbdcdc; color: #8d1f1f; }
.status-no-data { background: #eceff3; color: #444; }
section.indicator { break-inside: avoid; page-break-inside: avoid; margin-top: 20px; }
figure { margin: 0; } svg.chart { width: 100%; height: auto; }
svg .axis { stroke: #666; } svg .grid { stroke: #e6e9ee; } svg .tick { stroke: #666; }
svg .tick-label { font-size: 10px; fill: #555; text-anchor: middle; }
svg .tick-label.y { text-anchor: end; } svg .label { font-size: 10px; fill: #555; }
svg .trajectory { fill: none; stroke: #7a8699; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .actual { fill: none; stroke: #1f5fbf; stroke-width: 2.2; }
svg .actual-point { fill: #1f5fbf; }
svg .projection { stroke: #c77700; stroke-width: 2; stroke-dasharray: 2 3; }
svg .target { stroke: #2f8f46; stroke-width: 1; stroke-dasharray: 8 4; }
svg .deadline { stroke: #8d1f1f; stroke-width: 1; }
figcaption { font-size: 12px; color: #444; display: flex; flex-wrap: wrap; gap: 12px; }
.key::before { content: ""; display: inline-block; width: 18px; height: 0; margin-right: 5px;
  vertical-align: middle; border-top: 2px solid; }
.key.actual::before { border-color: #1f5fbf; }
.key.trajectory::before { border-top: 1px dashed #7a8699; }
.key.projection::before { border-top: 2px dotted #c77700; }
.key.target::before { border-top: 1px dashed #2f8f46; }
.key.deadline::before { border-color: #8d1f1f; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 8px 0; }
dt { color: #555; } dd { margin: 0; }
blockquote { margin: 8px 0; padding: 4px 12px; border-left: 3px solid #c9d1dc; color: #333;
  font-style: italic; }
@media print { body { margin: 0; max-width: none; } a { color: inherit; text-decoration: none; } }
@page { size: A4; margin: 16mm; }
"""
