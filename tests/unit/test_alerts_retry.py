"""Retry: what a status means, Retry-After, backoff with jitter and the retry budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.alerts_file import RetryPolicy
from services.alerts.retry import backoff, out_of_budget, retry_after_seconds, verdict

NOW = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
POLICY = RetryPolicy()  # initial 1 s, max 60 s, give up after 15 min
ALMOST_ONE = 1 - 1e-9


def _policy(**fields: Any) -> RetryPolicy:
    return RetryPolicy.model_validate(fields)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "accepted"),
        (202, "accepted"),
        (204, "accepted"),
        (299, "accepted"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (400, "rejected"),
        (401, "rejected"),
        (403, "rejected"),
        (404, "rejected"),
        (413, "rejected"),
        (301, "rejected"),
    ],
)
def test_verdict_by_status(status: int, expected: str) -> None:
    """2xx accepted; 429 and 5xx retried; other statuses (4xx, 3xx) are not retried."""
    assert verdict(status) == expected


# -- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 30.0),  # 30 s after NOW
        ("Wed, 21 Oct 2015 08:27:30 GMT", 3600.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: no wait
        ("Wed, 21 Oct 2015 09:28:00 +0200", 30.0),  # an offset: same instant as 07:28:00 UTC
    ],
)
def test_retry_after_seconds_and_http_date(header: str, seconds: float) -> None:
    """Retry-After as delta-seconds, or as an HTTP date measured from now (never negative)."""
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_date_is_measured_from_an_aware_now_in_any_zone() -> None:
    """now given at +06:00 is the same instant: still 30 s."""
    now = NOW.astimezone(timezone(timedelta(hours=6)))
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now) == 30.0


@pytest.mark.parametrize("header", [None, "", "   ", "soon", "-5", "1.5", "Wed, 99 Foo"])
def test_retry_after_absent_or_bad_is_none(header: str | None) -> None:
    """An absent or unreadable Retry-After is ignored (None)."""
    assert retry_after_seconds(header, NOW) is None


@pytest.mark.parametrize("header", ["\u00b2", "1\u00b9"])
def test_retry_after_with_non_ascii_digits_is_none(header: str) -> None:
    """A Retry-After made of characters that str.isdigit() accepts but float() does not (e.g.
    superscript two, the latin-1 byte 0xB2 as httpx decodes it) is bad, so None, not an
    exception."""
    assert retry_after_seconds(header, NOW) is None


@given(st.text(max_size=40))
def test_retry_after_never_negative_for_ascii_text(header: str) -> None:
    """For any ASCII header text: None or a non-negative number of seconds, no exception."""
    ascii_header = header.encode("ascii", "ignore").decode()
    result = retry_after_seconds(ascii_header, NOW)
    assert result is None or result >= 0


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        (1, 0.5, 1.0),  # window 1 s
        (2, 1.0, 2.0),  # window 2 s
        (3, 2.0, 4.0),
        (6, 16.0, 32.0),  # window 32 s
        (7, 30.0, 60.0),  # 64 s capped at 60 s
        (20, 30.0, 60.0),
    ],
)
def test_backoff_doubles_within_half_to_full_window_and_is_capped(
    attempt: int, low: float, high: float
) -> None:
    """The window is 1 s * 2^(attempt-1) capped at 60 s; jitter 0 waits half of it, jitter
    close to 1 almost all of it."""
    assert backoff(attempt, POLICY, 0.0, None) == low
    assert backoff(attempt, POLICY, ALMOST_ONE, None) == pytest.approx(high)
    assert backoff(attempt, POLICY, ALMOST_ONE, None) < high
    assert backoff(attempt, POLICY, 0.5, None) == pytest.approx((low + high) / 2)


def test_backoff_uses_the_policy() -> None:
    """initial 2 s, max 10 s: attempt 1 -> window 2, attempt 3 -> 8, attempt 4 -> 10 (capped)."""
    policy = _policy(initial_backoff="2s", max_backoff="10s")
    assert backoff(1, policy, 0.0, None) == 1.0
    assert backoff(3, policy, 0.0, None) == 4.0
    assert backoff(4, policy, 0.0, None) == 5.0


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        (10.0, 10.0),  # longer than the backoff: honoured
        (0.2, 2.0),  # shorter than the backoff (window 4 s, jitter 0 -> 2 s): backoff wins
        (600.0, 60.0),  # never beyond max_backoff
        (0.0, 2.0),
    ],
)
def test_backoff_honours_a_longer_retry_after_up_to_the_cap(
    retry_after: float, wait: float
) -> None:
    """Attempt 3 (window 4 s), jitter 0: wait = max(2, min(Retry-After, 60))."""
    assert backoff(3, POLICY, 0.0, retry_after) == wait


@given(
    attempt=st.integers(min_value=1, max_value=60),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
    retry_after=st.none() | st.floats(min_value=0, max_value=10_000),
)
def test_backoff_bounds(attempt: int, jitter: float, retry_after: float | None) -> None:
    """Never below half a second (half the first window) nor above the 60 s cap."""
    wait = backoff(attempt, POLICY, jitter, retry_after)
    assert 0.5 <= wait <= 60.0


# -- budget ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "wait", "over"),
    [
        (0.0, 1.0, False),
        (899.0, 1.0, False),  # exactly 900 s = 15 min: still within
        (899.5, 1.0, True),
        (840.0, 60.0, False),
        (841.0, 60.0, True),
    ],
)
def test_budget_is_give_up_after(elapsed: float, wait: float, over: bool) -> None:
    """Out of budget when elapsed + next wait would pass 15 minutes (900 s)."""
    assert out_of_budget(elapsed, wait, POLICY) is over


def test_shipped_retry_policy_sequence() -> None:
    """With jitter 0 the waits are 0.5, 1, 2, 4, 8, 16, 30, 30, ... s; the attempt after which
    waiting would pass 900 s is found by adding them by hand: 0.5+1+2+4+8+16 = 31.5, then 30 s
    steps: 31.5 + 28 * 30 = 871.5, and one more (901.5) is over budget."""
    elapsed = 0.0
    attempts = 0
    while True:
        attempts += 1
        wait = backoff(attempts, POLICY, 0.0, None)
        if out_of_budget(elapsed, wait, POLICY):
            break
        elapsed += wait
    assert elapsed == 871.5
    assert attempts == 6 + 28 + 1
