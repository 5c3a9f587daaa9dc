"""``GET /v1/indicators/{id}/history`` of the metrics service: an indicator at past month ends.

Each point carries its components per partition, so the answers of several metrics replicas
(each owning some partitions) add up exactly, as KPI snapshots do: take each partition once,
add the components, and compute the value from the sums (``contracts.roadmap.components``).

History is what the metrics service knows now, dated by business date: each entity counts with
its latest version on that version's date (a project cancelled in June no longer counts in
April), which is what the per-day sums hold.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, StrictInt, StrictStr

from contracts.events import Contract
from contracts.fields import Timestamp
from contracts.roadmap.components import Aggregation


class HistoryPoint(Contract):
    """The indicator at the end of ``on`` (a month's last day, or the evaluation day)."""

    on: date
    value: Decimal | None = Field(description="From the components over every partition given")
    expected: Decimal = Field(description="Where the trajectory says it should be by then")
    components: dict[str, Decimal]
    partition_components: dict[int, dict[str, Decimal]]


class IndicatorHistory(Contract):
    """One indicator month by month, from the month of its start to the evaluation day."""

    roadmap: StrictStr
    indicator: StrictStr
    title: StrictStr
    unit: StrictStr
    aggregation: Aggregation
    step: Literal["month"]
    evaluated_at: Timestamp
    partitions: list[StrictInt] = Field(description="The partitions this answer covers")
    partition_count: StrictInt = Field(ge=0)
    points: list[HistoryPoint]


def month_ends(first: date, last: date) -> list[date]:
    """The last day of every month from ``first``'s to ``last``'s; ``last`` itself ends the
    list (the month in progress)."""
    ends = []
    year, month = first.year, first.month
    while (year, month) < (last.year, last.month):
        following = date(year + month // 12, month % 12 + 1, 1)
        ends.append(date.fromordinal(following.toordinal() - 1))
        year, month = following.year, following.month
    ends.append(last)
    return ends
