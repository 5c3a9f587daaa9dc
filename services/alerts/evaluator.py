"""The evaluating side: read what the alerts need, evaluate, publish alert records.

One aiokafka consumer with manual assignment (no group: every instance reads everything):
- at start, the alerts topic from the beginning, to rebuild the alert book (the topic is the
  alert state, so a restart neither forgets a firing alert nor fires it again);
- the KPI topic from the beginning (latest snapshot per key), then followed;
- the canonical and DLQ topics from a little before their end, only counted (not decoded), for
  the DLQ share over the pipeline window.
Evaluation starts once the KPI topic has been read to where it ended at start-up, runs after
every fetch that brought a snapshot and on a timer, and only settles the book once its records
are acknowledged by the broker; a failed publish is simply evaluated again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts.alerts_file import AlertsFile
from contracts.keys import alert_key
from contracts.records import AlertName, AlertState, AlertTransition, KpiSnapshot
from contracts.roadmap.model import RoadmapFile, Severity
from contracts.topics import ALERT_TRANSITIONS, CANONICAL_EVENTS, DEAD_LETTERS, KPI_SNAPSHOTS
from services.alerts.board import IndicatorBoard
from services.alerts.conditions import conditions_at
from services.alerts.lifecycle import AlertBook, Moment, evaluate
from services.alerts.metrics import AlertsMetrics
from services.alerts.pipeline_window import PipelineWindow
from services.alerts.settings import AlertsSettings
from services.common.batch_policy import Progress
from services.common.http import CheckResult
from services.common.progress import Stall
from services.common.publishing import OutboundRecord, PublishError, RecordPublisher
from services.common.reading import (
    ReadTo,
    StateReader,
    StateReaders,
    read_last,
    read_to_end,
    state_readers,
    topic_partitions,
)
from services.common.watchdog import ConsumerGauges, ConsumerWatchdog

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Evaluator:
    """Owns the alert book, the indicator board and the pipeline window of one instance."""

    def __init__(
        self,
        settings: AlertsSettings,
        roadmap: RoadmapFile,
        alerts_file: AlertsFile,
        publisher: RecordPublisher,
        metrics: AlertsMetrics,
        *,
        gauges: ConsumerGauges,
        stalls: Callable[[], Sequence[Stall]] = list,
        wall_clock: Callable[[], datetime] = _utc_now,
        readers: StateReaders | None = None,
    ) -> None:
        self._settings = settings
        self._roadmap = roadmap
        self._file = alerts_file
        self._publisher = publisher
        self._metrics = metrics
        self._wall_clock = wall_clock
        kafka = settings.kafka
        self._readers = readers or state_readers(kafka)
        self._alerts_topic = kafka.topic_name(ALERT_TRANSITIONS)
        self._kpi_topic = kafka.topic_name(KPI_SNAPSHOTS)
        self._counted = {
            kafka.topic_name(DEAD_LETTERS): True,  # topic -> counts as rejected
            kafka.topic_name(CANONICAL_EVENTS): False,
        }
        self.book = AlertBook()
        self.board = IndicatorBoard(roadmap)
        self.window = PipelineWindow(alerts_file.pipeline.window)
        self._consumer: StateReader | None = None
        self._start_read: ReadTo | None = None
        self._recovered = False
        self._caught_up = False
        self._task: asyncio.Task[None] | None = None
        self._last_evaluation: datetime | None = None
        self._other_stalls = stalls
        self._failing: str | None = None
        self.watchdog = ConsumerWatchdog(
            service="alerts",
            consumer_name="alerts evaluator",
            consumer=lambda: self._consumer,
            gauges=gauges,
            stall_after_s=settings.stall_after,
        )
        self.policy = self.watchdog.batch_policy(settings.retry_max_s)
        for alertname in AlertName:
            for severity in Severity:
                for state in (AlertState.PENDING, AlertState.FIRING):
                    metrics.alerts.labels(alertname.value, severity.value, state.value).set(0)

    # -- start and stop -------------------------------------------------------------------
    async def connect(self) -> None:
        """Start the consumer and rebuild the alert book; retried by the runtime until it works."""
        if self._consumer is not None:
            return
        consumer = self._readers(f"{self._settings.kafka.client_id}-alerts-evaluator")
        await consumer.start()
        try:
            topics = [self._alerts_topic, self._kpi_topic, *self._counted]
            partitions = {topic: await topic_partitions(consumer, topic) for topic in topics}
            await self._recover(consumer, partitions[self._alerts_topic])
            await self._follow_from(
                consumer,
                partitions[self._kpi_topic],
                [tp for topic in self._counted for tp in partitions[topic]],
            )
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def _recover(self, consumer: StateReader, partitions: list[TopicPartition]) -> None:
        """Read the alerts topic from the beginning: the latest record per alert is its state."""
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        read_to = ReadTo(consumer, await consumer.end_offsets(partitions))
        book = AlertBook()
        recovered = 0

        def apply(_: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            nonlocal recovered
            for record in records:
                try:
                    book.apply(AlertTransition.model_validate_json(record.value or b""))
                    recovered += 1
                except ValidationError:
                    self._metrics.invalid_records.inc()

        await read_to_end(consumer, read_to, apply, what="alerts topic")
        self.book = book
        self._recovered = True
        self._update_gauges()
        log.info(
            "alert state recovered",
            extra={"records": recovered, "open_alerts": len(book.open_records())},
        )

    async def _follow_from(
        self, consumer: StateReader, kpi: list[TopicPartition], counted: list[TopicPartition]
    ) -> None:
        """Count the last ``pipeline_lookback`` records of the canonical and DLQ partitions
        (further back where offsets are sparse), then follow them, and read the KPI snapshots
        from the beginning.

        Evaluation waits until the KPI topic is read to where it ended at start-up; the look-back
        is read whole before, as a DLQ share taken while the (small) DLQ is counted but the
        canonical look-back is not would be too high."""
        consumer.assign(counted)

        def count(tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            rejected = self._counted[tp.topic]
            for record in records:
                self.window.count(record.timestamp, rejected=rejected)

        reached = await read_last(
            consumer, counted, self._settings.pipeline_lookback, count, what="pipeline look-back"
        )
        consumer.assign(kpi + counted)
        await consumer.seek_to_beginning(*kpi)
        for tp, offset in reached.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(kpi)
        self._start_read = ReadTo(consumer, ends)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts-evaluator")
        await self.watchdog.start()

    async def stop(self) -> None:
        await self.watchdog.stop()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    # -- the loop -------------------------------------------------------------------------
    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        interval = self._file.lifecycle.evaluation_interval
        while True:
            try:
                await self._step(consumer, interval)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                self._failed(exc, "fetch failed; retrying")
                await asyncio.sleep(1.0)
            except Exception as exc:  # noqa: BLE001 - keep trying; the log says what broke
                self._failed(exc, "evaluation step failed; retrying", trace=True)
                await asyncio.sleep(1.0)
            else:
                self._failing = None

    def _failed(self, exc: Exception, message: str, *, trace: bool = False) -> None:
        """Note the error for the watchdog; log it once until a step succeeds again."""
        error = f"{type(exc).__name__}: {exc}"
        self.watchdog.note_error(error)
        if error != self._failing:
            self._failing = error
            log.warning(message, extra={"error": error}, exc_info=exc if trace else None)

    async def _step(self, consumer: StateReader, interval: timedelta) -> None:
        """One fetch, then an evaluation when a snapshot came or the interval passed."""
        batches = await consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=5000)
        progress = Progress(record for records in batches.values() for record in records)
        try:
            fresh = self._take(batches, progress)
        except Exception as exc:  # noqa: BLE001 - a bug: read them again (stall loudly), skip none
            await self.policy.failed(exc, progress, consumer)
            return
        if batches:
            self.policy.succeeded()
        if not self._caught_up:
            assert self._start_read is not None
            left = await self._start_read.remaining()
            if left != 0:
                return
            self._caught_up = True
            log.info(
                "KPI snapshots and the pipeline look-back read; evaluating",
                extra={"indicators": len(self.board.views())},
            )
            fresh = True
        wall = self._wall_clock()
        due = self._last_evaluation is None or wall - self._last_evaluation >= interval
        if fresh or due:
            await self.evaluate_now()

    def _take(
        self,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        progress: Progress,
    ) -> bool:
        """Fold fetched records in, marking each in ``progress``; True when a KPI snapshot was
        kept."""
        fresh = False
        for tp, records in batches.items():
            snapshots = tp.topic == self._kpi_topic
            rejected = self._counted.get(tp.topic)
            for record in records:
                if snapshots:
                    fresh = self._take_snapshot(record) or fresh
                elif rejected is not None:
                    self.window.count(record.timestamp, rejected=rejected)
                progress.processed(record)
        return fresh

    def _take_snapshot(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            snapshot = KpiSnapshot.model_validate_json(record.value or b"")
        except ValidationError:
            self.policy.invalid(
                "not a KPI snapshot",
                self._metrics.snapshots.labels("invalid"),
                partition=record.partition,
                offset=record.offset,
            )
            return False
        kept = self.board.add(snapshot)
        self._metrics.snapshots.labels("used" if kept else "ignored").inc()
        return kept

    def _now(self) -> Moment | None:
        wall = self._wall_clock()
        if self._settings.clock == "wall":
            return Moment(wall, wall)
        roadmap_time = self.board.newest_evaluation
        return Moment(roadmap_time, wall) if roadmap_time is not None else None

    async def evaluate_now(self) -> None:
        """Evaluate every condition now and publish what changed (a no-op until caught up)."""
        now = self._now()
        if now is None or not self._caught_up:
            return
        self._last_evaluation = now.wall
        figures = self.window.figures(int(now.wall.timestamp() * 1000))
        # No message in the window: nothing rejected either (the gauge must not keep an old share).
        self._metrics.dlq_ratio.set(float(figures.ratio or 0))
        holding = conditions_at(
            self._roadmap,
            self.board.views(),
            now.roadmap,
            rule=self._file.pipeline,
            pipeline=figures,
            stall_rule=self._file.stalled,
            stalls=[*self.watchdog.stalls(), *self._other_stalls()],
            runbook_base=self._settings.runbook_base_url,
        )
        evaluation = evaluate(self.book, holding, now, self._file.lifecycle)
        self._metrics.evaluations.inc()
        self._metrics.roadmap_time.set(now.roadmap.timestamp())
        if evaluation.records:
            outbound = [
                OutboundRecord(
                    self._alerts_topic, alert_key(r.labels), r.model_dump_json().encode()
                )
                for r in evaluation.records
            ]
            try:
                await self._publisher.publish(outbound)
            except PublishError as exc:
                self._metrics.publish_failures.inc()
                log.warning(
                    "alert records not published; evaluating again", extra={"error": str(exc)}
                )
                return
        self.book.settle(evaluation)
        for record in evaluation.records:
            self._metrics.transitions.labels(record.alertname.value, record.state.value).inc()
            if record.repeat == 0:
                log.info(
                    "alert " + record.state.value,
                    extra={
                        "alertname": record.alertname.value,
                        "indicator": record.labels.get("indicator", ""),
                        "summary": record.annotations.get("summary", ""),
                    },
                )
        self._update_gauges()

    def _update_gauges(self) -> None:
        counts = self.book.counts()
        for alertname in AlertName:
            for severity in Severity:
                for state in (AlertState.PENDING, AlertState.FIRING):
                    value = counts.get((alertname.value, severity.value, state.value), 0)
                    self._metrics.alerts.labels(alertname.value, severity.value, state.value).set(
                        value
                    )

    # -- readiness ------------------------------------------------------------------------
    async def readiness(self) -> CheckResult:
        if not self._recovered:
            return CheckResult(False, "reading the alerts topic to recover alert state")
        if not self._caught_up:
            left = await self._start_read.remaining() if self._start_read else None
            detail = "waiting for the first fetch" if left is None else f"{left} records to go"
            return CheckResult(False, f"reading KPI snapshots and the pipeline look-back: {detail}")
        task = self._task
        if task is None or task.done():
            return CheckResult(False, "the evaluation loop is not running")
        progress = await self.watchdog.readiness()
        if not progress.ok:
            return progress
        return CheckResult(True, f"{len(self.book.open_records())} open alerts; {progress.detail}")
