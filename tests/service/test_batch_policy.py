"""One exception, injected once, into each of the four consumers: nothing is skipped, nothing is
counted twice, and the watchdog reports it (``services.common.batch_policy``).

Each consumer's own handler runs in memory. ``Redelivery`` plays the broker's part: it hands a
batch, and after a handler has sought a partition back it hands that partition again from the
offset sought, as Kafka's fetcher does after a ``seek``. Before the policy, metrics folded past
the failing record and lost the rest of the batch, delivery committed past its record, and the
evaluator dropped what followed the failing record in its fetch.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, cast

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from contracts.alerts_file import ReceiverSpec, RetryPolicy, Route, load_alerts_file
from contracts.codec import Accepted, decode_event, encode_event
from contracts.events import EventType
from contracts.records import AlertState
from contracts.roadmap.loader import load_roadmap
from contracts.topics import (
    ALERT_TRANSITIONS,
    CANONICAL_EVENTS,
    DEAD_LETTERS,
    KPI_SNAPSHOTS,
    TRADE_SHIPMENTS,
)
from services.alerts import delivery as delivery_module
from services.alerts.delivery import Deliverer, DeliveryHandler
from services.alerts.evaluator import Evaluator
from services.alerts.metrics import AlertsMetrics
from services.alerts.receivers import Attempt
from services.alerts.settings import AlertsSettings
from services.common.batch_policy import BatchPolicy
from services.common.config import KafkaSettings
from services.common.kafka import make_broker
from services.common.publishing import BatchPublisher, OutboundRecord
from services.common.watchdog import ConsumerGauges, ConsumerWatchdog
from services.ingest.consumer import UpstreamConsumer
from services.ingest.dedup import DedupWindow
from services.ingest.metrics import IngestMetrics
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings
from services.metrics import consumer as metrics_consumer
from services.metrics.consumer import CanonicalConsumer
from services.metrics.fold import PartitionState
from services.metrics.metrics import PipelineMetrics
from services.metrics.plan import compile_roadmap
from services.metrics.settings import MetricsSettings
from tests.support.alerts_stack import write_alerts_file
from tests.support.in_memory import InMemoryKafka, InMemoryPublisher
from tests.support.services import REPO
from tests.support.streams import EventFactory
from tests.unit.test_alerts_builders import transition, utc

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
ROADMAP = load_roadmap(REPO / "deploy" / "roadmap.yaml")


def _record(topic: str, partition: int, offset: int, value: bytes) -> Record:
    return ConsumerRecord(
        topic, partition, offset, 1_700_000_000_000, 0, None, value, None, 0, len(value), ()
    )


class SeekRecorder(AIOKafkaConsumer):  # type: ignore[misc]
    """An unstarted aiokafka consumer that notes where it is sought to."""

    def __init__(self) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1")
        self.sought: dict[TopicPartition, int] = {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.sought[partition] = offset


@dataclass
class Message:
    """What the handlers read of FastStream's message: the raw record(s), the body, ack."""

    raw_message: Any
    body: bytes = b""
    acked: int = 0

    async def ack(self) -> None:
        self.acked += 1


@dataclass
class Redelivery:
    """Hands ``records`` to a handler as one batch, then again from wherever it sought each
    partition back, until a batch goes through without a seek."""

    consumer: SeekRecorder
    batches: list[list[Record]] = field(default_factory=list)

    async def run(
        self, records: Sequence[Record], handle: Callable[[list[Record]], Awaitable[None]]
    ) -> None:
        batch = list(records)
        while batch:
            self.batches.append(batch)
            self.consumer.sought.clear()
            await handle(batch)
            sought = dict(self.consumer.sought)
            batch = [
                r
                for r in records
                if (tp := TopicPartition(r.topic, r.partition)) in sought and r.offset >= sought[tp]
            ]


def _no_wait(policy: BatchPolicy) -> None:
    async def no_sleep(_: float) -> None:
        return None

    policy._sleep = no_sleep


@contextmanager
def _raising_once(module: Any, name: str, on_call: int) -> Iterator[list[int]]:
    """``module.name`` raises ``RuntimeError("injected")`` on its ``on_call``-th call, once."""
    original = getattr(module, name)
    calls: list[int] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == on_call:
            raise RuntimeError("injected")
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, wrapper)
        yield calls


# -- ingest ------------------------------------------------------------------------------------


@dataclass
class FailingOncePublisher:
    calls: int = 0
    published: list[OutboundRecord] = field(default_factory=list)

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected")
        self.published.extend(records)


async def test_ingest_reads_a_batch_that_raised_again_from_each_partition_s_first_record() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    publisher = FailingOncePublisher()
    kafka = KafkaSettings()
    pipeline = IngestPipeline(
        cast(BatchPublisher, publisher),
        DedupWindow(100),
        metrics,
        lambda: datetime(2026, 12, 1, tzinfo=UTC),
        canonical_topic=CANONICAL_EVENTS.name,
        dlq_topic="roadmap.events.dlq",
    )
    upstream = UpstreamConsumer(
        make_broker(kafka, service="ingest"),
        IngestSettings(kafka=kafka),
        pipeline,
        metrics,
        ConsumerGauges(registry),
    )
    _no_wait(upstream.policy)
    consumer = SeekRecorder()
    upstream.subscriber.consumer = consumer
    factory = EventFactory("policy")
    records = [
        _record(TRADE_SHIPMENTS.name, n % 2, 10 + n // 2, cast(bytes, event.value))
        for n, event in enumerate(
            factory.event(EventType.TRADE_SHIPMENT, entity, 1) for entity in range(6)
        )
    ]
    messages: list[Message] = []

    async def handle(batch: list[Record]) -> None:
        messages.append(Message(tuple(batch)))
        await upstream.on_upstream_batch(cast(Any, messages[-1]))

    await Redelivery(consumer).run(records, handle)

    assert [len(batch) for batch in _batches(messages)] == [6, 6]  # all of it, once more
    assert [m.acked for m in messages] == [0, 1]
    ids = [json.loads(r.value or b"")["event_id"] for r in publisher.published]
    assert sorted(ids) == sorted(json.loads(r.value or b"")["event_id"] for r in records)
    assert registry.get_sample_value("roadmap_ingest_events_accepted_total", _labels()) == 6
    assert _errors(registry, "ingest") == 1
    assert "RuntimeError: injected" in upstream.watchdog.error_at((TRADE_SHIPMENTS.name, 0))


def _batches(messages: Sequence[Message]) -> list[tuple[Record, ...]]:
    return [cast(tuple[Record, ...], m.raw_message) for m in messages]


def _labels() -> dict[str, str]:
    return {"source": "kafka", "publisher": "kafka", "type": "trade.shipment"}


def _errors(registry: CollectorRegistry, service: str) -> float | None:
    consumers = [
        sample
        for family in registry.collect()
        if family.name == "roadmap_consumer_batch_errors"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["service"] == service
    ]
    return sum(sample.value for sample in consumers) if consumers else None


# -- metrics -----------------------------------------------------------------------------------


async def test_metrics_folds_on_from_the_record_that_raised_and_counts_each_record_once() -> None:
    registry = CollectorRegistry()
    kafka = KafkaSettings()
    plan = compile_roadmap(ROADMAP)
    snapshots: list[bool] = []

    async def after_batch() -> None:
        snapshots.append(True)

    canonical = CanonicalConsumer(
        make_broker(kafka, service="metrics"),
        MetricsSettings(kafka=kafka),
        plan,
        PipelineMetrics(registry),
        ConsumerGauges(registry),
        topic=CANONICAL_EVENTS.name,
        after_batch=after_batch,
    )
    _no_wait(canonical.policy)
    consumer = SeekRecorder()
    canonical.subscriber.consumer = consumer
    canonical.states[0] = PartitionState(plan)
    canonical.states[1] = PartitionState(plan)
    factory = EventFactory("policy")
    values = [
        encode_event(_decoded(cast(bytes, factory.event(EventType.TRADE_SHIPMENT, n, 1).value)))
        for n in range(8)
    ]
    records = [
        _record(CANONICAL_EVENTS.name, n % 2, n // 2, value) for n, value in enumerate(values)
    ]
    records.sort(key=lambda r: (r.partition, r.offset))  # a fetch holds partitions together

    async def handle(batch: list[Record]) -> None:
        await canonical.on_canonical_batch(cast(Any, Message(tuple(batch))))

    redelivery = Redelivery(consumer)
    with _raising_once(metrics_consumer, "apply_record", on_call=3):
        await redelivery.run(records, handle)

    # The third record (partition 0, offset 2) raised: partition 0 again from offset 2, and
    # partition 1, not reached in that batch, from its first record.
    assert [[(r.partition, r.offset) for r in b] for b in redelivery.batches[1:]] == [
        [(0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]
    ]
    folded = sum(
        len(state.entities[EventType.TRADE_SHIPMENT]) for state in canonical.states.values()
    )
    assert folded == 8
    events = registry.get_sample_value(
        "roadmap_metrics_events_total", {"type": "trade.shipment", "outcome": "new"}
    )
    assert events == 8, "a record folded before the error was counted again, or not at all"
    assert _errors(registry, "metrics") == 1
    assert "RuntimeError: injected" in canonical.watchdog.error_at((CANONICAL_EVENTS.name, 0))
    assert snapshots == [True], "the failed batch published no snapshot; the retried one did"


def _decoded(raw: bytes) -> Any:
    result = decode_event(raw)
    assert isinstance(result, Accepted)
    return result.event


# -- alerts delivery ---------------------------------------------------------------------------


@dataclass
class Receiving:
    name: str = "hook"
    got: list[str] = field(default_factory=list)

    async def attempt(self, record: Any) -> Attempt:
        self.got.append(record.dedup_key + ":" + record.state.value)
        return Attempt("accepted", "HTTP 200")


async def test_delivery_delivers_a_record_that_raised_again_instead_of_committing_past_it() -> None:
    registry = CollectorRegistry()
    receiver = Receiving()
    metrics = AlertsMetrics(registry, [receiver.name])
    gauges = ConsumerGauges(registry)
    spec = ReceiverSpec.model_validate(
        {"name": "hook", "kind": "webhook", "url": "http://hook.test", "secret_env": "HOOK"}
    )
    at = utc(2026, 12, 1, 9)
    deliverer = Deliverer(
        {receiver.name: receiver},
        {receiver.name: spec},
        [Route(receivers=[receiver.name])],
        RetryPolicy(),
        metrics,
        wall_clock=lambda: at,
    )
    consumer = SeekRecorder()
    watchdog = ConsumerWatchdog(
        service="alerts",
        consumer_name="alerts delivery",
        consumer=lambda: consumer,
        gauges=gauges,
        stall_after_s=60,
    )
    policy = watchdog.batch_policy(retry_max_s=1)
    _no_wait(policy)
    handler = DeliveryHandler(deliverer, metrics, policy, lambda: consumer)
    transitions = [
        transition(state, at=at + timedelta(minutes=n), started_at=at)
        for n, state in enumerate([AlertState.FIRING, AlertState.RESOLVED, AlertState.FIRING])
    ]
    records = [
        _record(ALERT_TRANSITIONS.name, 0, n, t.model_dump_json().encode())
        for n, t in enumerate(transitions)
    ]
    acked: list[int] = []

    async def handle(batch: list[Record]) -> None:
        for record in batch:  # one record at a time, as the delivery subscriber reads
            message = Message(record, body=record.value or b"")
            await handler.on_alert_record(cast(Any, message))
            if message.acked:
                acked.append(record.offset)
            elif consumer.sought:
                return  # the broker hands the rest again from the record sought

    with _raising_once(delivery_module, "route", on_call=2):
        await Redelivery(consumer).run(records, handle)

    want = [f"{t.dedup_key}:{t.state.value}" for t in transitions]
    assert receiver.got == want, "a notification was lost or sent twice"
    assert acked == [0, 1, 2], "committed in order, the failed record only once it went through"
    assert _errors(registry, "alerts") == 1
    assert "RuntimeError: injected" in watchdog.error_at((ALERT_TRANSITIONS.name, 0))


# -- alerts evaluator --------------------------------------------------------------------------


async def test_the_evaluator_counts_on_from_the_record_that_raised_and_each_record_once(
    tmp_path: Path,
) -> None:
    kafka = InMemoryKafka(partitions=3)
    for topic in (ALERT_TRANSITIONS, KPI_SNAPSHOTS, CANONICAL_EVENTS, DEAD_LETTERS):
        kafka.log(topic.name)
    registry = CollectorRegistry()
    settings = AlertsSettings(
        file=write_alerts_file(
            tmp_path / "alerts.yaml", receivers=[{"name": "console", "kind": "console"}]
        ),
        watch_groups={},
    )
    alerts_file = load_alerts_file(settings.file)
    now = datetime.now(UTC)
    evaluator = Evaluator(
        settings,
        ROADMAP,
        alerts_file,
        InMemoryPublisher(kafka),
        AlertsMetrics(registry, []),
        gauges=ConsumerGauges(registry),
        wall_clock=lambda: now,
        readers=kafka.readers(),
    )
    _no_wait(evaluator.policy)
    await evaluator.connect()
    consumer = evaluator._consumer
    assert consumer is not None
    for n in range(6):  # ingest's output while the evaluator follows: 4 canonical, 2 DLQ
        topic = DEAD_LETTERS if n % 3 == 2 else CANONICAL_EVENTS
        kafka.append(OutboundRecord(topic.name, f"k{n}".encode(), b"{}"), partition=0)
    counted = evaluator.window.count
    calls: list[bool] = []

    def count_raising_once(timestamp_ms: int, *, rejected: bool, messages: int = 1) -> None:
        calls.append(rejected)
        if len(calls) == 3:
            raise RuntimeError("injected")
        counted(timestamp_ms, rejected=rejected, messages=messages)

    evaluator.window.count = count_raising_once  # type: ignore[method-assign]
    for _ in range(5):
        await evaluator._step(consumer, timedelta(hours=1))

    figures = evaluator.window.figures(int(now.timestamp() * 1000) + 1)
    assert (figures.rejected, figures.total) == (2, 6), "a record was skipped or counted twice"
    assert _errors(registry, "alerts") == 1
    assert "RuntimeError: injected" in evaluator.watchdog.error_at((CANONICAL_EVENTS.name, 0))
    await evaluator.stop()
