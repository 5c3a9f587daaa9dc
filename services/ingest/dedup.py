"""Which event ids were already accepted, and with what content: a bounded, pure window.

Memory grows with the window's capacity, never with the number of events: ids and contents are
kept as 128-bit digests and the oldest entries are forgotten first. A batch works on a
``PendingIds`` overlay that joins the window only once its publish was acknowledged, so an
event whose publish failed is not later mistaken for a duplicate of itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from enum import Enum


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    """The id was accepted before with different content."""


def digest(data: bytes) -> bytes:
    """A 128-bit digest: collisions are negligible at any window size this service can hold."""
    return hashlib.blake2b(data, digest_size=16).digest()


class DedupWindow:
    """The last ``capacity`` accepted event ids with the digest of their canonical form."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._entries: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, event_id: str, content: bytes) -> Seen:
        """How an event with ``event_id`` and canonical bytes ``content`` relates to the window."""
        known = self._entries.get(digest(event_id.encode("utf-8")))
        return _compare(known, digest(content))

    def pending(self) -> PendingIds:
        """A fresh overlay for one batch; call ``PendingIds.commit`` after it is published."""
        return PendingIds(self)

    def _remember(self, items: Iterator[tuple[bytes, bytes]]) -> None:
        if self.capacity == 0:
            return
        entries = self._entries
        for id_digest, content_digest in items:
            entries.pop(id_digest, None)  # re-insert at the young end
            entries[id_digest] = content_digest
        overflow = len(entries) - self.capacity
        if overflow > 0:
            for stale in [key for key, _ in zip(entries, range(overflow), strict=False)]:
                del entries[stale]


class PendingIds:
    """Ids accepted by one batch that is not published yet, checked before the window."""

    def __init__(self, window: DedupWindow) -> None:
        self._window = window
        self._entries: dict[bytes, bytes] = {}

    def admit(self, event_id: str, content: bytes) -> Seen:
        """Classify an event and, if it is new, hold it as pending."""
        id_digest = digest(event_id.encode("utf-8"))
        content_digest = digest(content)
        known = self._entries.get(id_digest)
        if known is None:
            known = self._window._entries.get(id_digest)  # same-module partner
        seen = _compare(known, content_digest)
        if seen is Seen.NEW:
            self._entries[id_digest] = content_digest
        return seen

    def commit(self) -> None:
        """The batch was published: its ids join the window."""
        self._window._remember(iter(self._entries.items()))
        self._entries = {}


def _compare(known: bytes | None, content_digest: bytes) -> Seen:
    if known is None:
        return Seen.NEW
    return Seen.DUPLICATE if known == content_digest else Seen.CONFLICT
