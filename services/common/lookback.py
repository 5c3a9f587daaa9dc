"""Where to read from to get the last N records of a partition, when offsets may be sparse. Pure.

On a compacted topic (or one with transaction markers), a partition's offsets have gaps: the
last N offsets hold fewer than N records. Reading from ``end - N`` then gives too few: ingest
would recall part of its dedup window, alerts part of its DLQ-share window. ``LookBack`` plans
the reads: first ``[end - N, end)``, as before; then, while a partition has given fewer than N
records and has earlier offsets, the range just below the one read, twice as wide each time.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Span:
    """Offsets ``[lower, upper)`` of one partition to read."""

    lower: int
    upper: int


class LookBack(Generic[P]):
    """The ranges to read, round by round, until each partition gave ``want`` records."""

    def __init__(self, want: int, starts: Mapping[P, int], ends: Mapping[P, int]) -> None:
        self.want = want
        self._starts = dict(starts)
        self._width: dict[P, int] = {}
        self.found: dict[P, int] = {}
        self.next: dict[P, Span] = {}
        for partition, end in ends.items():
            lower = max(self._starts[partition], end - want)
            self.found[partition] = 0
            self._width[partition] = want
            if want > 0 and lower < end:
                self.next[partition] = Span(lower, end)

    def read(self, partition: P, offsets: Iterable[int]) -> int:
        """Note records read for ``partition`` at ``offsets``; those outside the span planned
        for it (a fetch may return more) are not counted. Returns how many counted."""
        span = self.next.get(partition)
        if span is None:
            return 0
        counted = sum(1 for offset in offsets if span.lower <= offset < span.upper)
        self.found[partition] += counted
        return counted

    def advance(self) -> dict[P, Span]:
        """After a round: the spans of the next one (empty when every partition is done)."""
        following: dict[P, Span] = {}
        for partition, span in self.next.items():
            start = self._starts[partition]
            if self.found[partition] >= self.want or span.lower <= start:
                continue
            self._width[partition] *= 2
            following[partition] = Span(max(start, span.lower - self._width[partition]), span.lower)
        self.next = following
        return following
