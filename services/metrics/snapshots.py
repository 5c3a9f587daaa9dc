"""Which KPI snapshots to publish: an indicator that changed, or one not published for a while.

Pure: the caller passes readings and the time; this says which to send and builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.records import KpiSnapshot
from services.metrics.readings import Reading


def snapshot_of(
    reading: Reading, *, roadmap: str, partitions: Sequence[int], partition_count: int
) -> KpiSnapshot:
    return KpiSnapshot(
        roadmap=roadmap,
        indicator=reading.indicator.id,
        value=reading.value,
        expected=reading.expected,
        target=reading.target,
        components=reading.components,
        partitions=list(partitions),
        partition_count=partition_count,
        partition_components=reading.partition_components,
        evaluated_at=reading.evaluated_at,
        last_event_at=reading.last_event_at,
        projected=None if reading.projection is None else reading.projection.projected,
        projected_completion_on=None
        if reading.projection is None
        else reading.projection.reached_on,
    )


def snapshot_key(snapshot: KpiSnapshot) -> bytes:
    """``roadmap/indicator/partitions``: one compacted entry per indicator and partition set."""
    partitions = ",".join(str(p) for p in snapshot.partitions)
    return f"{snapshot.roadmap}/{snapshot.indicator}/{partitions}".encode()


@dataclass
class SnapshotPolicy:
    """Remembers what was last published, per indicator."""

    interval_s: float
    _last: dict[str, tuple[object, float]] = field(default_factory=dict)

    def due(self, readings: Sequence[Reading], now_s: float, owned: Sequence[int]) -> list[Reading]:
        """Readings whose value, components, freshness or partitions changed, or whose interval
        passed. Freshness counts: an event that confirms a value is news to whoever watches for
        stale indicators."""
        due = []
        for reading in readings:
            fingerprint = _fingerprint(reading, owned)
            last = self._last.get(reading.indicator.id)
            if last is None or last[0] != fingerprint or now_s - last[1] >= self.interval_s:
                due.append(reading)
        return due

    def published(self, readings: Sequence[Reading], now_s: float, owned: Sequence[int]) -> None:
        for reading in readings:
            self._last[reading.indicator.id] = (_fingerprint(reading, owned), now_s)


def _fingerprint(reading: Reading, owned: Sequence[int]) -> object:
    return (
        reading.value,
        tuple(reading.components.items()),
        reading.last_event_at,
        tuple(owned),
    )
