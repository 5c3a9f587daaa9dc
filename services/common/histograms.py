"""Many observations into a Prometheus histogram at once.

``Histogram.observe`` costs about a microsecond each (a lock per bucket increment); ingest and
metrics observe each event's latency, a tenth of metrics' time in a replay. ``observe_all``
counts a batch's values per bucket first and adds each bucket once: the same counts afterwards,
and the same sum up to the rounding of adding a batch's total at once (a unit test compares
the exposition of both ways on the same values).

prometheus_client has no public call for this, so ``observe_all`` writes a histogram's
``_upper_bounds``, ``_buckets`` and ``_sum``. prometheus-client is pinned to the releases where
they are what is written here, and ``shape_problems`` (run at every service's start-up through
``services.common.private_apis``) observes the same values both ways on a scratch histogram and
reports any difference, naming the prometheus-client version.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import version

from prometheus_client import CollectorRegistry, Histogram


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every ``v`` of ``values``, in one go."""
    if not values:
        return
    bounds: list[float] = histogram._upper_bounds
    per_bucket = Counter(bisect_left(bounds, value) for value in values)
    for index, count in per_bucket.items():
        histogram._buckets[index].inc(count)
    histogram._sum.inc(sum(values))


_PROBE = (0.0005, 0.02, 0.02, 0.3, 1.5, 7.0, 12.0, 99.0)


def shape_problems() -> list[str]:
    """How ``observe_all`` and ``Histogram.observe`` disagree on this prometheus-client (empty
    when they agree on every bucket, the count and the sum)."""

    def exposed(observe: bool) -> list[tuple[str, dict[str, str], float]]:
        registry = CollectorRegistry()
        histogram = Histogram("probe_seconds", "probe", registry=registry)
        if observe:
            for value in _PROBE:
                histogram.observe(value)
        else:
            try:
                observe_all(histogram, _PROBE)
            except (AttributeError, TypeError, IndexError, KeyError) as exc:
                return [(f"observe_all failed: {type(exc).__name__}: {exc}", {}, 0.0)]
        return [
            (sample.name, dict(sample.labels), round(sample.value, 9))
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]

    one_by_one, at_once = exposed(True), exposed(False)
    if one_by_one == at_once:
        return []
    differing = [sample for sample in at_once if sample not in one_by_one][:3]
    return [
        f"prometheus-client {version('prometheus-client')}: observe_all no longer matches "
        f"Histogram.observe ({differing})"
    ]
