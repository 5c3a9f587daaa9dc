"""The demo feed: publish the story to the upstream topics on an accelerated event-time clock.

``speed`` is simulated days per wall-clock second: at the default 20 the six years of the story
(2024-2029) take about two minutes. Messages are sent as they come due, in batches, each batch
acknowledged by the broker before the next; progress is reported once per simulated quarter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.publishing import BatchPublisher, OutboundRecord
from services.demo.story import DemoMessage

Report = Callable[[str], None]


@dataclass
class FeedProgress:
    sent: int = 0
    invalid: int = 0
    resent: int = 0


def _due_after(messages: Sequence[DemoMessage], speed: float) -> list[float]:
    """Wall-clock seconds after the start at which each message is due."""
    first = messages[0].at
    return [(m.at - first).total_seconds() / 86_400 / speed for m in messages]


async def run_feed(
    messages: Sequence[DemoMessage],
    kafka: KafkaSettings,
    *,
    speed: float,
    report: Report,
    stop: asyncio.Event | None = None,
) -> FeedProgress:
    """Publish ``messages`` as they come due; return what was sent (also when stopped early)."""
    progress = FeedProgress()
    if not messages:
        return progress
    stop = stop or asyncio.Event()
    publisher = BatchPublisher(kafka, service="demo")
    await publisher.start()
    due = _due_after(messages, speed)
    started = time.monotonic()
    quarter = None
    index = 0
    try:
        while index < len(messages) and not stop.is_set():
            elapsed = time.monotonic() - started
            batch_end = index
            while batch_end < len(messages) and due[batch_end] <= elapsed:
                batch_end += 1
            if batch_end == index:
                wait = due[index] - elapsed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(wait, 1.0))
                continue
            batch = messages[index:batch_end]
            await publisher.publish(
                [
                    OutboundRecord(
                        kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[m.event_type]), m.key, m.body
                    )
                    for m in batch
                ]
            )
            for message in batch:
                progress.sent += 1
                progress.invalid += message.note.startswith("invalid")
                progress.resent += message.note == "re-sent"
            index = batch_end
            at = batch[-1].at
            current = (at.year, (at.month - 1) // 3 + 1)
            if current != quarter:
                first, quarter = quarter is None, current
                if first:  # the story's first message is a pre-declared one: nothing to say yet
                    continue
                report(
                    f"demo: {at:%Y-%m} (Q{current[1]}), {progress.sent:,} messages sent "
                    f"({progress.invalid} invalid, {progress.resent} re-sent)"
                )
    finally:
        await publisher.stop()
    return progress
