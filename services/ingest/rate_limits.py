"""Per-publisher rate limits: a token bucket per publisher, counted in events. Pure.

A request of ``n`` events takes ``n`` tokens at once or none: it is answered 429 with how long
until ``n`` tokens are there, so one runaway upstream waits while the others go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from contracts.publishers import Rate


@dataclass(slots=True)
class TokenBucket:
    rate: Rate
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: Rate, now: float) -> TokenBucket:
        return cls(rate, float(rate.burst), now)

    def take(self, events: int, now: float) -> float:
        """Take ``events`` tokens and return 0, or take none and return the seconds to wait.

        ``events`` must be at most the burst: a larger request can never pass (the caller
        answers 413, which makes clients split it)."""
        if events > self.rate.burst:
            raise ValueError(f"{events} events is over the burst of {self.rate.burst}")
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(
            float(self.rate.burst), self.tokens + elapsed * self.rate.events_per_second
        )
        self.updated = now
        if self.tokens >= events:
            self.tokens -= events
            return 0.0
        return (events - self.tokens) / self.rate.events_per_second

    def give_back(self, events: int) -> None:
        """Return what a request took when nothing of it was published (the broker refused):
        its retry should not count twice."""
        self.tokens = min(float(self.rate.burst), self.tokens + events)


def retry_after_header(wait: float) -> str:
    """``Retry-After`` in whole seconds (HTTP has no fractions), never 0 for a refusal."""
    return str(max(1, math.ceil(wait)))
