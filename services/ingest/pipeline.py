"""Triage a batch, publish its outcomes, then count it: the one path for Kafka and HTTP.

Outcomes are published in input order in one go; the accepted ids join the dedup window and
the batch is counted only after the broker acknowledged every record, so a failed publish can
simply be retried (possibly duplicating, never losing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from services.common.publishing import OutboundRecord, RecordPublisher
from services.ingest.dedup import DedupWindow
from services.ingest.metrics import IngestMetrics
from services.ingest.outcomes import canonical_record, dlq_record, publisher_header
from services.ingest.triage import Canonical, DeadLetter, Outcome, Scope, SourceRecord, triage

KAFKA_PUBLISHER = "kafka"
"""The ``publisher`` of what came from an upstream topic (the broker authorised the producer)."""


class IngestPipeline:
    def __init__(
        self,
        publisher: RecordPublisher,
        dedup: DedupWindow,
        metrics: IngestMetrics,
        clock: Callable[[], datetime],
        *,
        canonical_topic: str,
        dlq_topic: str,
    ) -> None:
        self._canonical_topic = canonical_topic
        self._dlq_topic = dlq_topic
        self._publisher = publisher
        self._dedup = dedup
        self._metrics = metrics
        self._clock = clock
        self._one_at_a_time = asyncio.Lock()

    async def process(
        self,
        sources: Sequence[SourceRecord],
        *,
        source: str,
        publisher: str = KAFKA_PUBLISHER,
        scope: Scope | None = None,
    ) -> list[Outcome]:
        """Publish exactly one outcome per message (nothing for a duplicate); raise on failure.

        ``publisher`` is who sent the batch (a header on each outcome, a metrics label), and
        ``scope`` what it may publish (``None``: anything valid).
        Raises ``PublishError`` when the broker did not acknowledge everything; nothing is
        remembered or counted then.
        """
        # One batch at a time: a Kafka batch and an HTTP request (or two requests) in flight
        # together would each admit the same new event_id before either is committed.
        async with self._one_at_a_time:
            return await self._process(sources, source, publisher, scope)

    async def _process(
        self, sources: Sequence[SourceRecord], source: str, publisher: str, scope: Scope | None
    ) -> list[Outcome]:
        started = time.perf_counter()
        pending = self._dedup.pending()
        outcomes = [triage(record, pending, scope) for record in sources]
        now = self._clock()
        header = publisher_header(publisher)
        outbound: list[OutboundRecord] = []
        for outcome in outcomes:
            if isinstance(outcome, Canonical):
                outbound.append(
                    canonical_record(outcome, topic=self._canonical_topic, publisher=header)
                )
            elif isinstance(outcome, DeadLetter):
                outbound.append(
                    dlq_record(outcome, topic=self._dlq_topic, now=now, publisher=publisher)
                )
        await self._publisher.publish(outbound)
        pending.commit()
        self._metrics.count(outcomes, source=source, publisher=publisher)
        self._metrics.dedup_ids.set(len(self._dedup))
        self._metrics.batch_size.labels(source).observe(len(sources))
        self._metrics.batch_duration.labels(source).observe(time.perf_counter() - started)
        return outcomes
