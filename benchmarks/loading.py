"""Filling the embedded broker before a benchmark measures anything."""

from __future__ import annotations

import time
from collections.abc import Iterable

from benchmarks.report import say
from services.common.config import KafkaSettings
from services.common.publishing import BatchPublisher, OutboundRecord

CHUNK = 5000
REPORT_EVERY = 50_000


async def preload(kafka: KafkaSettings, records: Iterable[OutboundRecord], count: int) -> float:
    """Publish ``records`` (``count`` of them) in acknowledged chunks, saying how far it got.

    Returns the rate in records/s.
    """
    publisher = BatchPublisher(kafka, service="bench-loader")
    await publisher.start()
    started = time.perf_counter()
    chunk: list[OutboundRecord] = []
    try:
        for n, record in enumerate(records, start=1):
            chunk.append(record)
            if len(chunk) == CHUNK or n == count:
                await publisher.publish(chunk)
                chunk = []
                if n % REPORT_EVERY == 0 or n == count:
                    say(f"  pre-loaded {n:,}/{count:,}")
        if chunk:
            await publisher.publish(chunk)
    finally:
        await publisher.stop()
    return count / (time.perf_counter() - started)
