"""Whether a consumer makes progress on each partition it reads. Pure: readings in, verdicts out.

A partition is *stalled* when it has records to read (its position is below its end offset) and
its position has not moved past the furthest point it reached for ``stall_after_s``. The clock
starts again whenever the partition has nothing to read, so a consumer idle for an hour is not
stalled the moment a record arrives.

"Moved past the furthest point" rather than "changed": a consumer that re-reads a batch after a
failed publish goes back and forth over the same offsets, which is no progress. Where going
back is a real new start (metrics replays a partition it was given; an operator resets a
group's offsets), the caller says so: ``restart()``, or ``rewind_is_restart`` for readings of
committed offsets, which only move back deliberately.

A partition can also be *held*: a transaction left open on it keeps its last stable offset
(LSO) below its high-water mark, and a ``read_committed`` consumer cannot read past the LSO
however healthy it is. Its stall then names that cause, not the consumer's last error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PartitionId = tuple[str, int]
"""Topic and partition (aiokafka's ``TopicPartition`` is such a tuple)."""


@dataclass(frozen=True, slots=True)
class Reading:
    position: int
    """The next offset the consumer will take (or the group's committed offset)."""
    end: int
    """The partition's end offset: the offset the next record written will get."""
    stable: int | None = None
    """Its last stable offset, where known (a ``read_committed`` consumer's last fetch)."""


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    topic: str
    partition: int
    position: int
    end: int
    idle_s: float
    """Seconds since the position last moved forward or the partition was caught up."""
    stalled: bool
    stable: int | None = None

    @property
    def lag(self) -> int:
        return max(0, self.end - self.position)

    @property
    def held_by_transaction(self) -> bool:
        """The consumer has read up to the last stable offset and an open transaction keeps
        that below the high-water mark: nothing more is readable until it ends."""
        return self.stable is not None and self.position >= self.stable and self.stable < self.end


@dataclass(frozen=True, slots=True)
class ProgressReport:
    partitions: tuple[PartitionProgress, ...]
    began: tuple[PartitionProgress, ...]
    """Partitions whose stall began with this observation (log them once)."""
    ended: tuple[PartitionId, ...]
    """Partitions whose stall ended: they moved, caught up, or are no longer read."""

    @property
    def stalled(self) -> tuple[PartitionProgress, ...]:
        return tuple(p for p in self.partitions if p.stalled)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


EMPTY_REPORT = ProgressReport((), (), ())


@dataclass(frozen=True, slots=True)
class Stall:
    """A stalled partition, who is stalled on it, and why: the last error seen there, or the
    open transaction that holds it."""

    consumer: str
    """Who reads it, e.g. ``ingest (group roadmap-ingest)``."""
    progress: PartitionProgress
    error: str

    @property
    def reason(self) -> str:
        """``last error: ...``, or ``held by an open transaction: ...`` when one holds it."""
        if self.progress.held_by_transaction:
            return held_by(self.progress)
        return f"last error: {self.error}"


@dataclass(slots=True)
class _Track:
    furthest: int
    since: float
    last: Reading
    stalled: bool = False


class ProgressTracker:
    """Keeps, per partition, the furthest position seen and since when it has not moved."""

    def __init__(self, stall_after_s: float, *, rewind_is_restart: bool = False) -> None:
        self.stall_after_s = stall_after_s
        self._rewind_is_restart = rewind_is_restart
        self._tracks: dict[PartitionId, _Track] = {}

    def restart(self, partitions: Iterable[PartitionId]) -> None:
        """Forget ``partitions``: their next reading starts afresh (a deliberate re-read)."""
        for tp in partitions:
            self._tracks.pop((tp[0], tp[1]), None)

    def observe(self, now: float, readings: Mapping[PartitionId, Reading | None]) -> ProgressReport:
        """Take one reading per partition read now (``None``: read, but unknown this time).

        Partitions missing from ``readings`` are no longer read and are forgotten.
        """
        ended = [key for key in list(self._tracks) if key not in readings]
        ended = [key for key in ended if self._tracks.pop(key).stalled]
        partitions: list[PartitionProgress] = []
        began: list[PartitionProgress] = []
        for tp, reading in readings.items():
            key = (tp[0], tp[1])
            track = self._tracks.get(key)
            if track is None:
                if reading is None:
                    continue
                track = self._tracks[key] = _Track(reading.position, now, reading)
            was_stalled = track.stalled
            progress = self._advance(key, track, reading or track.last, now)
            if progress.stalled and not was_stalled:
                began.append(progress)
            elif was_stalled and not progress.stalled:
                ended.append(key)
            partitions.append(progress)
        return ProgressReport(tuple(partitions), tuple(began), tuple(ended))

    def _advance(
        self, key: PartitionId, track: _Track, reading: Reading, now: float
    ) -> PartitionProgress:
        moved_back = self._rewind_is_restart and reading.position < track.furthest
        if reading.position > track.furthest or moved_back:
            track.furthest, track.since = reading.position, now
        if reading.position >= reading.end:
            track.since = now  # nothing to read: not waiting on this consumer
        track.last = reading
        track.stalled = now - track.since >= self.stall_after_s
        return PartitionProgress(
            key[0],
            key[1],
            reading.position,
            reading.end,
            now - track.since,
            track.stalled,
            reading.stable,
        )


def where(progress: PartitionProgress) -> str:
    """``roadmap.trade.shipments partition 1 at offset 42, 17 records behind``."""
    return (
        f"{progress.topic} partition {progress.partition} at offset {progress.position}, "
        f"{progress.lag:,} records behind"
    )


def held_by(progress: PartitionProgress) -> str:
    """Why a held partition cannot be read (see ``PartitionProgress.held_by_transaction``)."""
    return (
        f"held by an open transaction: last stable offset {progress.stable} below high-water "
        f"mark {progress.end} (kafka-transactions describe-producers names its producer; "
        "see the runbook)"
    )


def describe(progress: PartitionProgress) -> str:
    """``where`` plus ``, no progress for 75 s``: a stalled partition, for logs and readiness."""
    return f"{where(progress)}, no progress for {progress.idle_s:.0f} s"
