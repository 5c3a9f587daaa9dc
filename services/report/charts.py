"""One indicator as an inline SVG chart: the actual value by month against the trajectory and
the projection, with the target and the deadline. Pure: text in, text out.

Every series carries ``data-series`` (``actual``, ``trajectory``, ``projection``, ``target``,
``deadline``) so a reader, or a test in a browser, can find it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import escape

from contracts.history import month_ends
from contracts.roadmap.model import Indicator
from contracts.roadmap.projection import Projection
from contracts.roadmap.trajectory import TargetTrajectory
from services.alerts.wording import amount
from services.report.combine import Point

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 16, 34
Y_TICKS = 4


@dataclass(frozen=True, slots=True)
class _Frame:
    """Day ordinals and values to pixels."""

    first_day: int
    last_day: int
    low: float
    high: float

    def x(self, day: date) -> float:
        span = max(1, self.last_day - self.first_day)
        return LEFT + (day.toordinal() - self.first_day) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: Decimal) -> float:
        span = (self.high - self.low) or 1.0
        return TOP + (self.high - float(value)) / span * (HEIGHT - TOP - BOTTOM)


def chart(indicator: Indicator, points: list[Point], projection: Projection | None) -> str:
    """The SVG of ``indicator``: ``points`` (its history), its trajectory from start to deadline,
    and ``projection`` from the last point to the deadline when there is one."""
    trajectory = TargetTrajectory(indicator)
    path_days = month_ends(indicator.start, indicator.deadline)
    expected = [
        (day, trajectory.expected(datetime.combine(day + timedelta(days=1), time.min, UTC)))
        for day in path_days
    ]
    actual = [(p.on, p.value) for p in points if p.value is not None and p.on >= indicator.start]
    last = actual[-1] if actual else None
    values = [indicator.target, indicator.baseline, *(v for _, v in expected)]
    values += [v for _, v in actual]
    if projection is not None and last is not None:
        values.append(projection.projected)
    low = min(0.0, *(float(v) for v in values))
    step = _nice_step((max(float(v) for v in values) * 1.05 - low) / Y_TICKS)
    high = low + step * Y_TICKS
    while high < max(float(v) for v in values):  # a rounded step can fall a little short
        high += step
    frame = _Frame(indicator.start.toordinal(), indicator.deadline.toordinal(), low, high)
    unit = indicator.unit
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(indicator.title)}: actual, trajectory and projection">',
        *_axes(frame, unit),
        _line(
            "target",
            (LEFT, frame.y(indicator.target)),
            (WIDTH - RIGHT, frame.y(indicator.target)),
        ),
        f'<text class="label" x="{LEFT + 4}" y="{frame.y(indicator.target) - 4:.1f}">target '
        f"{escape(amount(indicator.target, unit))}</text>",
        _line(
            "deadline",
            (frame.x(indicator.deadline), TOP),
            (frame.x(indicator.deadline), HEIGHT - BOTTOM),
        ),
        _polyline("trajectory", [(frame.x(d), frame.y(v)) for d, v in expected]),
    ]
    if actual:
        parts.append(_polyline("actual", [(frame.x(d), frame.y(v)) for d, v in actual]))
        parts += [
            f'<circle class="actual-point" data-on="{d.isoformat()}" data-value="{v}" '
            f'cx="{frame.x(d):.1f}" cy="{frame.y(v):.1f}" r="2.5"/>'
            for d, v in actual
        ]
    if projection is not None and last is not None and last[0] < indicator.deadline:
        parts.append(
            _line(
                "projection",
                (frame.x(last[0]), frame.y(last[1])),
                (frame.x(indicator.deadline), frame.y(projection.projected)),
            )
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _axes(frame: _Frame, unit: str) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    out = [
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
    ]
    first, last = date.fromordinal(frame.first_day), date.fromordinal(frame.last_day)
    for year in range(first.year, last.year + 1):
        day = max(date(year, 1, 1), first)
        x = frame.x(day)
        out.append(
            f'<line class="tick" x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}"/>'
        )
        out.append(f'<text class="tick-label" x="{x:.1f}" y="{bottom + 16}">{year}</text>')
    ticks = round((frame.high - frame.low) / _nice_step((frame.high - frame.low) / Y_TICKS))
    for step in range(ticks + 1):
        value = Decimal(str(round(frame.low + (frame.high - frame.low) * step / ticks, 12)))
        y = frame.y(value)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        label = escape(amount(value, unit))
        out.append(f'<text class="tick-label y" x="{LEFT - 6}" y="{y + 4:.1f}">{label}</text>')
    return out


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def _polyline(series: str, xy: list[tuple[float, float]]) -> str:
    coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    return f'<polyline class="{series}" data-series="{series}" points="{coordinates}"/>'


def _line(series: str, start: tuple[float, float], end: tuple[float, float]) -> str:
    (x1, y1), (x2, y2) = start, end
    return (
        f'<line class="{series}" data-series="{series}" '
        f'x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'
    )
