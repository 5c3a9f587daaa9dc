"""How an indicator's value follows from its additive components (DESIGN section 7).

Metrics publishes components per partition; whoever adds partial results up (the metrics
exporter, the alerts service combining replicas' snapshots) takes the value from the sums here,
so ratios are always taken after adding.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

Aggregation = Literal["sum", "count", "share", "yoy_growth"]

COMPONENTS: dict[Aggregation, tuple[str, ...]] = {
    "sum": ("sum",),
    "count": ("count",),
    "share": ("numerator", "denominator"),
    "yoy_growth": ("current", "previous"),
}
"""The additive parts each kind of indicator is computed from, in order."""


def indicator_value(aggregation: Aggregation, components: Sequence[Decimal]) -> Decimal | None:
    """The value from summed ``components`` (in ``COMPONENTS`` order); None for a ratio over 0."""
    if aggregation in ("sum", "count"):
        return components[0]
    top, bottom = components
    if bottom == 0:
        return None
    if aggregation == "share":
        return top / bottom
    return top / bottom - 1
