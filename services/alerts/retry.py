"""When to try a notification again, and when to stop. Pure: randomness and time are passed in.

Retried: connection errors, timeouts, 5xx and 429 (``Retry-After`` honoured, in seconds or as an
HTTP date). Not retried: any other 4xx (the request itself is wrong; repeating it cannot help).
The wait window doubles from ``initial_backoff`` up to ``max_backoff`` and the wait is drawn
from its upper half (jitter that never becomes a hot loop); a notification is given up once
``give_up_after`` has passed since its first attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from contracts.alerts_file import RetryPolicy
from services.common.backoff import Backoff

Verdict = Literal["accepted", "retry", "rejected"]


def verdict(status: int) -> Verdict:
    """What an HTTP status means for a notification."""
    if 200 <= status < 300:
        return "accepted"
    if status == 429 or status >= 500:
        return "retry"
    return "rejected"


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds from ``now`` (delta or HTTP date); None if absent or bad."""
    if not header:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff(attempt: int, policy: RetryPolicy, jitter: float, retry_after: float | None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): the product's one
    backoff (``services.common.backoff``) with the alerts file's ``initial_backoff`` and
    ``max_backoff``; a server's ``Retry-After`` is honoured when longer, never beyond the max.
    """
    limits = Backoff(policy.initial_backoff.total_seconds(), policy.max_backoff.total_seconds())
    return limits.wait(attempt, jitter, retry_after)


def out_of_budget(elapsed: float, next_wait: float, policy: RetryPolicy) -> bool:
    """True when waiting ``next_wait`` more would pass ``give_up_after`` (seconds elapsed)."""
    return elapsed + next_wait > policy.give_up_after.total_seconds()
