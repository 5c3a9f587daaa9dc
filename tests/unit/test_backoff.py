"""The product's one backoff: the window doubles up to the cap, each wait is in its upper half,
``Retry-After`` is honoured up to the cap, and a loop's attempts start over once it succeeds."""

from __future__ import annotations

import pytest

from services.common.backoff import Attempts, Backoff
from services.common.runtime import CONNECT_BACKOFF

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 0.25, 0.5), (2, 0.5, 1.0), (5, 4.0, 8.0), (6, 5.0, 10.0)]
)
def test_the_window_doubles_to_the_cap_and_the_wait_is_in_its_upper_half(
    attempt: int, low: float, high: float
) -> None:
    policy = Backoff(initial_s=0.5, max_s=10.0)
    assert policy.wait(attempt, 0.0) == low
    assert policy.wait(attempt, 0.999999) == pytest.approx(high, rel=1e-5)


def test_a_longer_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = Backoff(initial_s=1.0, max_s=60.0)
    assert policy.wait(1, 0.0, retry_after=30.0) == 30.0
    assert policy.wait(1, 0.0, retry_after=600.0) == 60.0
    assert policy.wait(4, 0.0, retry_after=1.0) == 4.0  # shorter: the backoff stands


def test_attempts_count_failures_and_start_over_after_a_success() -> None:
    draws = iter([0.0, 0.5, 0.0, 0.0])
    attempts = Attempts(CONNECT_BACKOFF, jitter=lambda: next(draws))
    assert [attempts.next_wait(), attempts.next_wait(), attempts.next_wait()] == [0.25, 0.75, 1.0]
    attempts.reset()
    assert attempts.next_wait() == 0.25
