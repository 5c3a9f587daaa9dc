"""Many observations into a Prometheus histogram at once.

``Histogram.observe`` costs about a microsecond each (a lock per bucket increment); ingest and
metrics observe each event's latency, a tenth of metrics' time in a replay. ``observe_all``
counts a batch's values per bucket first and adds each bucket once: the same counts afterwards,
and the same sum up to the rounding of adding a batch's total at once (a unit test compares
the exposition of both ways on the same values).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

from prometheus_client import Histogram


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every ``v`` of ``values``, in one go."""
    if not values:
        return
    bounds: list[float] = histogram._upper_bounds
    per_bucket = Counter(bisect_left(bounds, value) for value in values)
    for index, count in per_bucket.items():
        histogram._buckets[index].inc(count)
    histogram._sum.inc(sum(values))
