"""One backoff policy for every retry loop of the product. Pure: the randomness is passed in.

The wait window doubles from ``initial_s`` up to ``max_s``, and each wait is drawn from the
window's upper half: jitter, so replicas that lost the broker together do not come back in step,
that never becomes a hot loop. A server's ``Retry-After`` is honoured when longer, up to
``max_s``. Used by the services' connection loop (``runtime``), ingest's re-publication of a
batch the broker did not acknowledge, and the alerts service's notification delivery (whose
policy, with its retry budget, is the alerts file's ``retry``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float
    max_s: float

    def wait(self, attempt: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``jitter`` in
        [0, 1) picks the point of the window's upper half."""
        window = min(self.max_s, self.initial_s * 2.0 ** (attempt - 1))
        wait = window / 2 + window / 2 * jitter  # at least half the window: never a hot loop
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_s))
        return wait


@dataclass(slots=True)
class Attempts:
    """The failures of a loop so far, for its next wait; ``reset`` once it succeeds."""

    policy: Backoff
    jitter: Callable[[], float] = field(default=random.random)
    failed: int = 0

    def next_wait(self) -> float:
        self.failed += 1
        return self.policy.wait(self.failed, self.jitter())

    def reset(self) -> None:
        self.failed = 0
