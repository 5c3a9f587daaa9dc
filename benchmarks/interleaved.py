"""Ratios of interleaved runs on a noisy machine: a stage's rate over the ceiling measured just
before it, taken as the median of several rounds, with the spread (min to max) shown."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def ratios(stage_rates: Sequence[float], ceiling_rates: Sequence[float]) -> list[float]:
    """Round by round, a stage's rate over the ceiling of the same round."""
    if len(stage_rates) != len(ceiling_rates) or not stage_rates:
        raise ValueError("a ratio needs one ceiling a stage run, and at least one run")
    return [stage / ceiling for stage, ceiling in zip(stage_rates, ceiling_rates, strict=True)]


def spread(values: Sequence[float], digits: int = 2) -> dict[str, float | int]:
    """Median, min and max of ``values`` (rounded to ``digits``), and how many runs."""
    if not values:
        raise ValueError("no runs")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


def ratio_spread(
    stage_rates: Sequence[float], ceiling_rates: Sequence[float]
) -> dict[str, float | int]:
    """The median ratio of interleaved runs and its spread."""
    return spread(ratios(stage_rates, ceiling_rates))


def median_run(rates: Sequence[float]) -> int:
    """The index of the run whose rate is the median (the lower middle of an even count)."""
    order = sorted(range(len(rates)), key=lambda i: rates[i])
    return order[(len(order) - 1) // 2]


def stage_figures(
    rates: Sequence[float], ceilings: Sequence[float], anchors: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """A stage's runs against the ceiling and each anchor measured in the same rounds: the
    median rate, and each ratio as its median and spread."""
    return {
        "events_per_s": round(statistics.median(rates)),
        "rates": [round(rate) for rate in rates],
        "ratio_to_batched": ratio_spread(rates, ceilings),
        **{f"ratio_to_{name}": ratio_spread(rates, runs) for name, runs in anchors.items()},
    }
