"""A record the services publish: its topic, key, value, headers and partitioning. Pure data.

Kept apart from ``publishing`` (the aiokafka producer) so that the pure modules that build
records (``services.ingest.outcomes``) import no Kafka client; ``publishing`` re-exports it.
"""

from __future__ import annotations

from typing import NamedTuple


class OutboundRecord(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    partition_key: bytes | None = None
    """Hashed to choose the partition instead of ``key`` (records of one entity together)."""
