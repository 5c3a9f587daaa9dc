"""Which event ids were already accepted, and with what content: a bounded, pure window.

Memory grows with the window's capacity, never with the number of events: the oldest entries
are forgotten first. Content is remembered as a 64-bit hash of the canonical bytes (the window
lives in one process, so Python's keyed hash is stable for its lifetime); a false match would
need the same event_id *and* a hash collision. A batch works on a ``PendingIds`` overlay that
joins the window only once its publish was acknowledged, so an event whose publish failed is
not later mistaken for a duplicate of itself.

At start-up the window is refilled from what ingest itself published (``recall.py``): each
canonical record becomes a ``Remembered`` entry, and ``restore`` keeps the youngest of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import Enum
from typing import NamedTuple


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    """The id was accepted before with different content."""


def fingerprint(content: bytes) -> int:
    """What the window keeps of an event's canonical bytes (stable within one process)."""
    return hash(content)


class Remembered(NamedTuple):
    """One accepted event as read back from the canonical topic, with where it was read."""

    timestamp_ms: int
    partition: int
    offset: int
    event_id: str
    fingerprint: int


def remembered(timestamp_ms: int, partition: int, offset: int, value: bytes) -> Remembered | None:
    """The window entry for one canonical record, or None when its value names no event_id.

    The canonical value is exactly the bytes that were admitted, so its fingerprint is the one
    the window held before the restart.
    """
    try:
        event_id = json.loads(value).get("event_id")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return None
    if not isinstance(event_id, str):
        return None
    return Remembered(timestamp_ms, partition, offset, event_id, fingerprint(value))


class DedupWindow:
    """The last ``capacity`` accepted event ids with a hash of their canonical form."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._entries: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, event_id: str, content: bytes) -> Seen:
        """How an event with ``event_id`` and canonical bytes ``content`` relates to the window."""
        return _compare(self._entries.get(event_id), fingerprint(content))

    def restore(self, entries: Iterable[Remembered]) -> None:
        """Replace what the window holds with ``entries``, keeping the youngest ``capacity``.

        Age is the record's timestamp, then partition and offset, so the oldest is forgotten
        first afterwards too; for an id read more than once, its youngest content counts.
        """
        ordered = sorted(entries, key=lambda e: (e.timestamp_ms, e.partition, e.offset))
        self._entries = {}
        youngest = ordered[max(0, len(ordered) - self.capacity) :]
        self._remember((e.event_id, e.fingerprint) for e in youngest)

    def pending(self) -> PendingIds:
        """A fresh overlay for one batch; call ``PendingIds.commit`` after it is published."""
        return PendingIds(self)

    def _known(self, event_id: str) -> int | None:
        return self._entries.get(event_id)

    def _remember(self, items: Iterable[tuple[str, int]]) -> None:
        if self.capacity == 0:
            return
        entries = self._entries
        for event_id, content_hash in items:
            entries.pop(event_id, None)  # re-insert at the young end
            entries[event_id] = content_hash
        overflow = len(entries) - self.capacity
        if overflow > 0:
            for stale in [key for key, _ in zip(entries, range(overflow), strict=False)]:
                del entries[stale]


class PendingIds:
    """Ids accepted by one batch that is not published yet, checked before the window."""

    def __init__(self, window: DedupWindow) -> None:
        self._window = window
        self._entries: dict[str, int] = {}

    def admit(self, event_id: str, content: bytes) -> Seen:
        """Classify an event and, if it is new, hold it as pending."""
        content_hash = fingerprint(content)
        known = self._entries.get(event_id)
        if known is None:
            known = self._window._known(event_id)  # same-module partner
        seen = _compare(known, content_hash)
        if seen is Seen.NEW:
            self._entries[event_id] = content_hash
        return seen

    def commit(self) -> None:
        """The batch was published: its ids join the window."""
        self._window._remember(self._entries.items())  # same-module partner
        self._entries = {}


def _compare(known: int | None, content_hash: int) -> Seen:
    if known is None:
        return Seen.NEW
    return Seen.DUPLICATE if known == content_hash else Seen.CONFLICT
