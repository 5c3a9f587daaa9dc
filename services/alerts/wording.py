"""Numbers and sentences an on-call person can act on. Pure.

"Jobs created: 1,120 of 1,800 jobs (62%); expected 1,350 by now on the linear trajectory to
2029-12-31; 230 behind (17%)."
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from contracts.roadmap.model import CheckpointTrajectory, Indicator

_MILLION = Decimal(1_000_000)


def amount(value: Decimal, unit: str) -> str:
    """``value`` for a reader: ``10.2%`` for a ratio, ``USD 277.5 M``, ``1,120`` otherwise."""
    if unit == "ratio":
        return f"{_rounded(value * 100, 1)}%"
    if unit == "USD":
        if abs(value) >= _MILLION:
            return f"USD {_rounded(value / _MILLION, 1)} M"
        return f"USD {_grouped(value)}"
    return _grouped(value)


def difference(value: Decimal, unit: str) -> str:
    """A gap between two amounts: percentage points for ratios."""
    if unit == "ratio":
        return f"{_rounded(value * 100, 1)} points"
    return amount(value, unit)


def with_unit(value: Decimal, unit: str) -> str:
    """``1,800 jobs``; ratios and USD carry their unit in :func:`amount` already."""
    text = amount(value, unit)
    return text if unit in ("ratio", "USD") else f"{text} {unit}"


def percent(part: Decimal, whole: Decimal) -> str:
    """``part / whole`` as a whole percentage, ``n/a`` over zero."""
    if whole == 0:
        return "n/a"
    return f"{(part / whole * 100).quantize(Decimal(1), ROUND_HALF_EVEN):f}%"


def trajectory_name(indicator: Indicator) -> str:
    if isinstance(indicator.trajectory, CheckpointTrajectory):
        return "checkpoint trajectory"
    return "linear trajectory"


def moment(at: datetime) -> str:
    """``2027-03-01 10:00 UTC``."""
    return f"{at:%Y-%m-%d %H:%M} UTC"


def duration(span: timedelta) -> str:
    """``45 days``, ``3 hours``, ``10 minutes``: the largest whole unit that fits."""
    seconds = int(span.total_seconds())
    for size, name in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _grouped(value: Decimal) -> str:
    places = 0 if abs(value) >= 100 or value == value.to_integral_value() else 1
    return f"{_rounded(value, places):,}"


def _rounded(value: Decimal, places: int) -> Decimal:
    exponent = Decimal(1).scaleb(-places)
    result = value.quantize(exponent, ROUND_HALF_EVEN)
    return result if result != 0 else abs(result)  # never "-0"
