"""``observe_all`` leaves a histogram exactly as observing each value in turn does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.common.histograms import observe_all

BUCKETS = (0.005, 0.01, 0.1, 0.5, 1.0, 5.0)


def _exposition(values: list[float], *, bulk: bool, labelled: bool) -> bytes:
    registry = CollectorRegistry()
    if labelled:
        family = Histogram("h", "h", ["source"], buckets=BUCKETS, registry=registry)
        histogram = family.labels("kafka")
    else:
        histogram = Histogram("h", "h", buckets=BUCKETS, registry=registry)
    if bulk:
        observe_all(histogram, values)
    else:
        for value in values:
            histogram.observe(value)
    text = generate_latest(registry).decode()
    return "\n".join(line for line in text.splitlines() if "_created" not in line).encode()


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0.0, *BUCKETS, 7.0]) | st.floats(0, 20, allow_nan=False), max_size=50
    ),
    labelled=st.booleans(),
)
def test_bulk_observation_equals_one_by_one(values: list[float], labelled: bool) -> None:
    one_by_one = _exposition(values, bulk=False, labelled=labelled)
    assert _exposition(values, bulk=True, labelled=labelled) == one_by_one
