"""The progress watchdog every consumer of the product has.

Every ``interval_s`` it reads, for each partition its consumer is assigned, the consumer's
position and the partition's end offset (the larger of what ListOffsets answers and the
high-water mark of the last fetch: the embedded broker answers the former with the start of the
last batch), and feeds them to a ``ProgressTracker``. It keeps two gauges current for every
partition read, ``roadmap_consumer_lag_messages`` and ``roadmap_consumer_stalled``; logs one
error when a partition's stall begins and one line when it ends; and answers readiness: not
ready while a partition is stalled, naming topic, partition and offset and giving the last
error (what the fetch guard could not decode there, else what the consumer last failed on),
or, for a partition an open transaction holds, the last stable offset that holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.batch_policy import BatchPolicy
from services.common.fetch_guard import UNREADABLE
from services.common.http import CheckResult
from services.common.periodic import Periodic
from services.common.progress import (
    EMPTY_REPORT,
    PartitionId,
    ProgressReport,
    ProgressTracker,
    Reading,
    Stall,
    describe,
    where,
)

log = logging.getLogger(__name__)

OFFSETS_TIMEOUT_S = 2.0


def check_interval(stall_after_s: float) -> float:
    """How often progress is checked: four times per ``stall_after_s``, at most every 5 s."""
    return min(5.0, stall_after_s / 4)


class ConsumerGauges:
    """The watchdog's metrics, declared once per registry (a service may have several)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stalled = Gauge(
            "roadmap_consumer_stalled",
            "1 while a partition has records to read and its consumer has not moved for the "
            "service's STALL_AFTER; else 0.",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self.lag = Gauge(
            "roadmap_consumer_lag_messages",
            "Records between a consumer's position and the end of each partition it reads.",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self.batch_errors = Counter(
            "roadmap_consumer_batch_errors",
            "Batches (or records) a consumer failed on unexpectedly; each is read again from "
            "its first unprocessed record after a back-off.",
            ["service", "consumer"],
            registry=registry,
        )


ConsumerSource = Callable[[], AIOKafkaConsumer | None]


class ConsumerWatchdog:
    """Watches one consumer: ``check()`` once, or ``start()`` to check every ``interval_s``."""

    def __init__(
        self,
        *,
        service: str,
        consumer_name: str,
        consumer: ConsumerSource,
        gauges: ConsumerGauges,
        stall_after_s: float,
        interval_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.consumer_name = consumer_name
        self._consumer = consumer
        self._gauges = gauges
        self._tracker = ProgressTracker(stall_after_s)
        self._monotonic = monotonic
        self._labelled: set[PartitionId] = set()
        self._last_error: tuple[str, float] | None = None
        self.report = EMPTY_REPORT
        self._timer = Periodic(
            f"progress check of {consumer_name}",
            interval_s if interval_s is not None else check_interval(stall_after_s),
            self.check,
        )

    # -- what the consumer tells it ------------------------------------------------------------
    def note_error(self, error: BaseException | str) -> None:
        """The consumer's latest failure, given with a stall that has no decoding error."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._last_error = (text, self._monotonic())

    def restart(self, partitions: Iterable[PartitionId]) -> None:
        """``partitions`` are read again from an earlier offset on purpose (a replay)."""
        self._tracker.restart(partitions)

    # -- checking ------------------------------------------------------------------------------
    async def check(self) -> ProgressReport:
        """Read positions and end offsets once; update gauges, log stalls that begin or end."""
        consumer = self._consumer()
        readings: dict[PartitionId, Reading | None] = {}
        if consumer is not None:
            readings = await self._readings(consumer)
        report = self._tracker.observe(self._monotonic(), readings)
        self._publish(report)
        self.report = report
        return report

    async def _readings(self, consumer: AIOKafkaConsumer) -> dict[PartitionId, Reading | None]:
        assigned = sorted(consumer.assignment())
        if not assigned:
            return {}
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(assigned), OFFSETS_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - unreachable broker, rebalance: use the high-water mark
            ends = {}
        readings: dict[PartitionId, Reading | None] = {}
        for tp in assigned:
            position = await self._position(consumer, tp)
            end = max(ends.get(tp, -1), self._highwater(consumer, tp))
            stable = self._last_stable(consumer, tp)
            readings[tp] = None if position is None or end < 0 else Reading(position, end, stable)
        return readings

    @staticmethod
    async def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
        try:
            return int(await asyncio.wait_for(consumer.position(tp), OFFSETS_TIMEOUT_S))
        except Exception:  # noqa: BLE001 - no position yet, or no longer assigned
            return None

    @staticmethod
    def _highwater(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - aiokafka asserts the partition is still assigned
            return -1
        return -1 if highwater is None else int(highwater)

    @staticmethod
    def _last_stable(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
        """The LSO of the last fetch; ``None`` unknown (no fetch yet, ``read_uncommitted``)."""
        try:
            stable = consumer.last_stable_offset(tp)
        except Exception:  # noqa: BLE001 - aiokafka asserts the partition is still assigned
            return None
        return None if stable is None or stable < 0 else int(stable)

    def _publish(self, report: ProgressReport) -> None:
        service = self.service
        current = {(p.topic, p.partition): p for p in report.partitions}
        for topic, partition in self._labelled - set(current):
            for gauge in (self._gauges.lag, self._gauges.stalled):
                with contextlib.suppress(KeyError):
                    gauge.remove(service, topic, str(partition))
        for (topic, partition), progress in current.items():
            self._gauges.lag.labels(service, topic, str(partition)).set(progress.lag)
            self._gauges.stalled.labels(service, topic, str(partition)).set(progress.stalled)
        self._labelled = set(current)
        for progress in report.began:
            error = self.error_at((progress.topic, progress.partition))
            log.error(
                "consumer stalled: %s; %s",
                describe(progress),
                Stall(self.consumer_name, progress, error).reason,
                extra={
                    "consumer": self.consumer_name,
                    "topic": progress.topic,
                    "partition": progress.partition,
                    "offset": progress.position,
                    "lag": progress.lag,
                    "last_error": error,
                    "held_by_transaction": progress.held_by_transaction,
                },
            )
        for topic, partition in report.ended:
            now = current.get((topic, partition))
            log.info(
                "consumer moving again: %s",
                where(now) if now else f"{topic} partition {partition} no longer read",
                extra={"consumer": self.consumer_name, "topic": topic, "partition": partition},
            )

    def error_at(self, tp: PartitionId) -> str:
        """The last error for ``tp``: what could not be decoded there, else the consumer's."""
        unreadable = UNREADABLE.get(tp)
        if unreadable is not None:
            return f"{unreadable.error} (at offset {unreadable.offset})"
        if self._last_error is None:
            return "none seen (the records are readable; is the handler stuck?)"
        text, at = self._last_error
        return f"{text} ({self._monotonic() - at:.0f} s ago)"

    def batch_policy(self, retry_max_s: float) -> BatchPolicy:
        """The batch policy of the consumer watched here: its errors counted under its name and
        told to this watchdog."""
        return BatchPolicy(
            service=self.service,
            consumer=self.consumer_name,
            errors=self._gauges.batch_errors,
            note_error=self.note_error,
            retry_max_s=retry_max_s,
        )

    def stalls(self) -> list[Stall]:
        """The partitions stalled at the last check."""
        return [
            Stall(self.consumer_name, p, self.error_at((p.topic, p.partition)))
            for p in self.report.stalled
        ]

    async def readiness(self) -> CheckResult:
        """Not ready while a partition is stalled; else how far behind the consumer is."""
        stalled = self.stalls()
        if stalled:
            first = stalled[0]
            more = f" (and {len(stalled) - 1} more partitions)" if len(stalled) > 1 else ""
            return CheckResult(False, f"stalled: {describe(first.progress)}{more}; {first.reason}")
        partitions = self.report.partitions
        return CheckResult(
            True, f"{len(partitions)} partitions, {self.report.lag:,} records behind"
        )

    async def start(self) -> None:
        """Check every few seconds (``check_interval``) until ``stop()``."""
        await self._timer.start()

    async def stop(self) -> None:
        await self._timer.stop()


def subscriber_watchdog(
    subscriber: Any,
    *,
    service: str,
    consumer_name: str,
    gauges: ConsumerGauges,
    stall_after_s: float,
) -> ConsumerWatchdog:
    """A watchdog over a FastStream subscriber's consumer (made anew when the broker starts)."""
    return ConsumerWatchdog(
        service=service,
        consumer_name=consumer_name,
        consumer=lambda: subscriber.consumer,
        gauges=gauges,
        stall_after_s=stall_after_s,
    )
