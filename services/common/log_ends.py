"""Where each partition's log ended when reading began. Pure: the high-water marks come from a
function the caller passes (the consumer's ``highwater``).

Kafka answers the end-offset request with the offset after the last record. The embedded broker
answers it with the start of the last record batch plus one, and under load a first fetch
answered without records can report that same low mark. Taken alone, either once declared a
partition read after 2 of its 5,001 records. So the target starts at the end offset asked for and
is raised to every high-water mark fetches report until the position first reaches it; from then
on that partition has been read to its end for good (records published later do not put it back).
Since the marks are only followed up to the first time the position meets one, the wait ends as
soon as the reader has caught up once: a stream it keeps up with cannot prolong it. On Kafka the
end offset is already right and the marks never raise it.

One policy for every reader that must know it has read "everything there was": the metrics
service's replay, and state recovery (``services.common.reading.ReadTo``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class LogEnds(Generic[P]):
    def __init__(self, highwater: Callable[[P], int | None]) -> None:
        self._highwater = highwater
        self._targets: dict[P, int] = {}
        self._exact: set[P] = set()
        self._reached: set[P] = set()

    def expect(self, partition: P, end: int, *, exact: bool = False) -> None:
        """Read ``partition`` up to ``end`` (the end offset asked for). ``exact``: ``end`` is an
        offset to stop at, never raised. An end of 0 is an empty partition: nothing to wait for.
        """
        self._targets[partition] = end
        self._reached.discard(partition)
        self._exact.discard(partition)
        if exact or end == 0:
            self._exact.add(partition)

    def forget(self, partition: P) -> None:
        self._targets.pop(partition, None)
        self._reached.discard(partition)
        self._exact.discard(partition)

    def target(self, partition: P) -> int:
        """The offset read up to counts as the end: records from it on were not there."""
        return self._targets.get(partition, 0)

    def left(self, partition: P, position: int) -> int | None:
        """Records still to read before ``position`` reaches the end; 0 once it has (for good);
        ``None`` while no fetch has told where the end really is."""
        if partition in self._reached:
            return 0
        target = self._targets.get(partition, 0)
        if partition not in self._exact:
            highwater = self._highwater(partition)
            if highwater is None:
                return None
            target = self._targets[partition] = max(target, highwater)
        if position >= target:
            self._reached.add(partition)
            return 0
        return target - position
