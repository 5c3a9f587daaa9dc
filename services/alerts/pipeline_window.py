"""How much of ingest's recent output went to the DLQ. Pure: the caller passes the times.

Ingest writes each accepted message to the canonical topic and each rejected one to the DLQ
(exact duplicates go nowhere), so over a window the rejected share is ``dlq / (dlq + canonical)``.
Counts are kept in fixed 10-second buckets by the records' broker timestamps, so the window's
edge is exact to within one bucket; memory is bounded by the window, never by the number of
messages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import NamedTuple

BUCKET_MS = 10_000


class PipelineFigures(NamedTuple):
    rejected: int
    total: int
    window: timedelta

    @property
    def ratio(self) -> Decimal | None:
        return Decimal(self.rejected) / Decimal(self.total) if self.total else None


@dataclass
class PipelineWindow:
    window: timedelta
    _buckets: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def count(self, timestamp_ms: int, *, rejected: bool, messages: int = 1) -> None:
        """Count ``messages`` written at ``timestamp_ms`` (to the DLQ when ``rejected``)."""
        self._buckets[timestamp_ms // BUCKET_MS][0 if rejected else 1] += messages

    def figures(self, now_ms: int) -> PipelineFigures:
        """Counts over the window ending at ``now_ms``; older buckets are dropped."""
        oldest = (now_ms - int(self.window.total_seconds() * 1000)) // BUCKET_MS
        for bucket in [b for b in self._buckets if b < oldest]:
            del self._buckets[bucket]
        rejected = sum(c[0] for b, c in self._buckets.items() if b * BUCKET_MS <= now_ms)
        accepted = sum(c[1] for b, c in self._buckets.items() if b * BUCKET_MS <= now_ms)
        return PipelineFigures(rejected, rejected + accepted, self.window)
