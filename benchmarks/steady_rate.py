"""Latency at a steady rate: publish in 10 ms ticks, and time each event until a count shows it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from services.common.publishing import BatchPublisher, OutboundRecord

TICK_S = 0.01
POLL_S = 0.01


async def delays_at_rate(
    publisher: BatchPublisher,
    records: Sequence[OutboundRecord],
    *,
    rate: int,
    visible: Callable[[], Awaitable[int]],
    give_up_after_s: float,
) -> list[float]:
    """Publish ``records`` at ``rate`` per second; return each one's seconds from its publish
    to the first poll (every 10 ms) where ``visible()`` (how many of them can be seen) covers
    it. Events are taken to become visible in the order they were sent."""
    sent_at: list[float] = []
    per_tick = max(1, rate // round(1 / TICK_S))

    async def produce() -> None:
        start = time.perf_counter()
        for tick, i in enumerate(range(0, len(records), per_tick)):
            await asyncio.sleep(max(0.0, start + tick * TICK_S - time.perf_counter()))
            chunk = records[i : i + per_tick]
            now = time.perf_counter()
            sent_at.extend([now] * len(chunk))
            await publisher.publish(chunk)

    producer = asyncio.create_task(produce())
    seen_at: list[float] = []
    deadline = time.monotonic() + give_up_after_s
    try:
        while len(seen_at) < len(records):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(seen_at):,} of {len(records):,} became visible")
            count = await visible()
            now = time.perf_counter()
            while len(seen_at) < min(count, len(sent_at)):
                seen_at.append(now)
            await asyncio.sleep(POLL_S)
        await producer
    finally:
        if not producer.done():
            producer.cancel()
    return [seen - sent for seen, sent in zip(seen_at, sent_at, strict=True)]
