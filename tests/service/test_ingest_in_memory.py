"""Ingest's own handlers on FastStream's in-memory broker, its outputs captured in memory.

The Kafka batches arrive through ``TestKafkaBroker`` at ingest's real subscriber (the same
parser, decoder and handler as on Kafka); what ingest publishes lands in an ``InMemoryKafka``
log through ``InMemoryPublisher``. What ``test_ingest_stream.py`` checks against a real broker
in tens of seconds is checked here in one or two.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
import pytest
from faststream.kafka import KafkaBroker, KafkaResponse

from contracts.codec import RejectReason
from contracts.events import event_adapter
from contracts.http_api import EventsAnswer
from contracts.keys import entity_of, partition_key
from contracts.records import DLQ_HEADER_REASON, DlqRecord
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.partitioning import partition_for_key
from services.common.runtime import ServiceApp
from services.ingest.app import create_app
from services.ingest.openapi import openapi_document
from services.ingest.settings import IngestSettings
from tests.support.in_memory import InMemoryKafka, InMemoryPublisher, Record, running_in_memory
from tests.support.processes import metric_total
from tests.support.streams import EventFactory, Fate, Upstream, mixed_stream

BATCH = 40
KAFKA = KafkaSettings(topic_partitions=3)


@dataclass
class Ingest:
    app: ServiceApp
    broker: KafkaBroker
    kafka: InMemoryKafka
    publisher: InMemoryPublisher

    def canonical(self) -> list[Record]:
        return self.kafka.records(CANONICAL_EVENTS.name)

    def dead_letters(self) -> list[Record]:
        return self.kafka.records(DEAD_LETTERS.name)

    async def metrics(self) -> str:
        transport = httpx.ASGITransport(app=self.app.http)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            return (await client.get("/metrics")).text

    async def send(self, messages: Sequence[Upstream]) -> None:
        """``messages`` as Kafka batches of up to ``BATCH``, one upstream topic per batch, each
        topic's messages in their order (a tombstone alone: a batch cannot carry one here)."""
        by_topic: dict[str, list[Upstream]] = defaultdict(list)
        for message in messages:
            by_topic[UPSTREAM_TOPIC_BY_TYPE[message.topic_type].name].append(message)
        for topic, queued in by_topic.items():
            batch: list[KafkaResponse] = []
            for message in queued:
                if message.value is None:
                    await self._flush(topic, batch)
                    await self.broker.publish(None, topic, key=message.key or b"tombstone")
                    continue
                batch.append(KafkaResponse(message.value, key=message.key))
                if len(batch) == BATCH:
                    await self._flush(topic, batch)
            await self._flush(topic, batch)

    async def _flush(self, topic: str, batch: list[KafkaResponse]) -> None:
        if batch:
            await self.broker.publish_batch(*batch, topic=topic)
            batch.clear()


@pytest.fixture
async def ingest() -> AsyncIterator[Ingest]:
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    publisher = InMemoryPublisher(kafka)
    # A refused publish is retried after 0.5 s, then at most every 0.1 s.
    settings = IngestSettings(kafka=KAFKA, dedup_recall=False, retry_max_s=0.1)
    app = create_app(settings, publisher=publisher)
    async with running_in_memory(app) as broker:
        yield Ingest(app, broker, kafka, publisher)


def _event_id(record: Record) -> str:
    event_id: str = json.loads(record.value)["event_id"]
    return event_id


def _canonical_problems(records: Sequence[Record], stream: Sequence[Upstream]) -> list[str]:
    """One record per accepted event: its normalised form under its canonical key, in its
    entity's partition, the versions of an entity in the order upstream sent them."""
    expected = {m.event_id: m for m in stream if m.fate is Fate.CANONICAL}
    ids = Counter(_event_id(r) for r in records)
    problems = [f"{eid} published {n} times" for eid, n in ids.items() if n > 1]
    if set(ids) != set(expected):
        problems.append(f"ids: {len(set(expected) - set(ids))} missing, {len(ids)} published")
    order: dict[bytes, list[str | None]] = defaultdict(list)
    for record in records:
        want = expected.get(_event_id(record))
        if want is None:
            continue
        if (record.key, record.value) != (want.canonical_key, want.canonical_value):
            problems.append(f"{want.label} {want.event_id}: key or value differ")
        entity = partition_key(event_adapter.validate_json(record.value))
        if record.partition != partition_for_key(entity, KAFKA.topic_partitions):
            problems.append(f"{want.event_id} in partition {record.partition}")
        assert record.key is not None
        order[entity_of(record.key)].append(want.event_id)
    sent: dict[bytes, list[str | None]] = defaultdict(list)
    for message in stream:
        if message.fate is Fate.CANONICAL and message.canonical_key is not None:
            sent[entity_of(message.canonical_key)].append(message.event_id)
    problems += [f"{k!r}: out of order" for k, ids_ in sent.items() if order[k] != ids_]
    return problems


def _dead_letters(records: Sequence[Record]) -> Counter[tuple[str, bytes]]:
    """(reason, original bytes) of each DLQ record; the header and the JSON must agree."""
    found: Counter[tuple[str, bytes]] = Counter()
    for record in records:
        dlq = DlqRecord.model_validate_json(record.value)
        assert dict(record.headers)[DLQ_HEADER_REASON].decode() == dlq.reason
        original = base64.b64decode(dlq.original_base64)
        assert dlq.original_truncated == (len(original) < dlq.original_size)
        found[(dlq.reason, original)] += 1
    return found


async def test_a_mixed_stream_gives_every_message_its_outcome_and_counts_it(
    ingest: Ingest,
) -> None:
    """Valid events and corrections, exact and re-serialised re-deliveries, reused ids, every
    catalog example, garbage and oversized messages, in batches: in = canonical + DLQ +
    duplicates, each canonical record right and in order, each dead letter with its reason."""
    stream = mixed_stream(EventFactory("svc"), entities_per_type=40, seed=11)
    await ingest.send(stream.messages)

    canonical, dlq = ingest.canonical(), ingest.dead_letters()
    assert (len(canonical), len(dlq)) == (
        stream.count(Fate.CANONICAL),
        stream.count(Fate.DEAD_LETTER),
    ), stream.summary()
    assert _canonical_problems(canonical, stream.messages) == []
    assert _dead_letters(dlq) == Counter(
        (str(m.reason), (m.value or b"")[: 512 * 1024])
        for m in stream.messages
        if m.fate is Fate.DEAD_LETTER
    )

    text = await ingest.metrics()

    def total(outcome: str, **labels: str) -> float:
        return metric_total(
            text, f"roadmap_ingest_events_{outcome}_total", source="kafka", **labels
        )

    assert total("received") == len(stream.messages)
    assert total("accepted") == len(canonical)
    assert total("duplicate") == stream.count(Fate.DUPLICATE)
    reasons = Counter(m.reason for m in stream.messages if m.fate is Fate.DEAD_LETTER)
    assert {r: total("rejected", reason=r.value) for r in RejectReason} == {
        r: reasons.get(r, 0) for r in RejectReason
    }


async def test_a_correction_is_published_and_a_re_sent_batch_is_not(ingest: Ingest) -> None:
    factory = EventFactory("corr")
    first = [factory.event(t, n, 1) for t in UPSTREAM_TOPIC_BY_TYPE for n in range(5)]
    await ingest.send(first)
    await ingest.send(first)  # a re-delivery: nothing new
    assert len(ingest.canonical()) == 15

    corrections = [factory.event(t, n, 2) for t in UPSTREAM_TOPIC_BY_TYPE for n in range(5)]
    await ingest.send(corrections)
    canonical = ingest.canonical()
    assert len(canonical) == 30
    by_entity: dict[bytes, list[str]] = defaultdict(list)
    for record in canonical:
        assert record.key is not None
        by_entity[entity_of(record.key)].append(_event_id(record))
    # Both versions of each entity, the correction after the original, in one partition.
    assert len(by_entity) == 15
    assert {tuple(eid[-3:] for eid in ids) for ids in by_entity.values()} == {("-v1", "-v2")}
    text = await ingest.metrics()
    assert metric_total(text, "roadmap_ingest_events_duplicate_total", source="kafka") == 15


async def test_a_failed_publish_leaves_nothing_remembered_or_counted(ingest: Ingest) -> None:
    """The broker acknowledges nothing: no id joins the dedup window and nothing is counted, so
    the batch read again is published whole, not taken for a re-delivery."""
    batch = [EventFactory("fail").event(t, n, 1) for t in UPSTREAM_TOPIC_BY_TYPE for n in range(4)]
    ingest.publisher.failures = 3  # one per upstream topic's batch
    await ingest.send(batch)
    assert ingest.canonical() == []
    text = await ingest.metrics()
    assert metric_total(text, "roadmap_ingest_events_received_total") == 0
    assert metric_total(text, "roadmap_ingest_publish_failures_total") == 3
    assert metric_total(text, "roadmap_ingest_dedup_ids") == 0

    await ingest.send(batch)  # what Kafka re-delivers after the nack
    assert sorted(_event_id(r) for r in ingest.canonical()) == sorted(
        str(m.event_id) for m in batch
    )
    text = await ingest.metrics()
    assert metric_total(text, "roadmap_ingest_events_duplicate_total") == 0
    assert metric_total(text, "roadmap_ingest_events_accepted_total") == len(batch)


async def test_an_http_batch_takes_the_same_path_and_answers_per_event(ingest: Ingest) -> None:
    factory = EventFactory("http")
    good = [factory.body(t, n, 1) for t in UPSTREAM_TOPIC_BY_TYPE for n in range(3)]
    bad = {**good[0], "event_id": "http-bad", "occurred_at": "yesterday"}
    transport = httpx.ASGITransport(app=ingest.app.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        answer = await client.post("/v1/events", json=[*good, bad, good[1]])
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert [e["index"] for e in body["rejected"]] == [len(good)]
    assert body["accepted"] == [event["event_id"] for event in good]
    assert body["duplicates"] == [good[1]["event_id"]]
    assert len(ingest.canonical()) == len(good)
    assert len(ingest.dead_letters()) == 1
    text = await ingest.metrics()
    assert metric_total(text, "roadmap_ingest_events_accepted_total", source="http") == len(good)
    assert metric_total(text, "roadmap_ingest_events_duplicate_total", source="http") == 1


async def test_a_restarted_ingest_recalls_what_it_published_and_publishes_it_not_again() -> None:
    """Start-up reads the canonical topic's tail back into the dedup window (through the
    consumer a ``state_reader`` would be): a re-delivery of what an earlier instance published
    is a duplicate; a new event is not."""
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    kafka.log(CANONICAL_EVENTS.name)  # the topic exists
    factory = EventFactory("recall")
    earlier = [factory.event(t, n, 1) for t in UPSTREAM_TOPIC_BY_TYPE for n in range(6)]
    fresh = factory.event(next(iter(UPSTREAM_TOPIC_BY_TYPE)), 99, 1)
    for recall in (False, True):
        publisher = InMemoryPublisher(kafka)
        settings = IngestSettings(kafka=KAFKA, dedup_recall=recall)
        app = create_app(settings, publisher=publisher, readers=kafka.readers())
        async with running_in_memory(app) as broker:
            ingest = Ingest(app, broker, kafka, publisher)
            await ingest.send(earlier if not recall else [*earlier, fresh])
            transport = httpx.ASGITransport(app=app.http)
            async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
                readiness = (await client.get("/readyz")).json()
            text = await ingest.metrics()
    assert readiness["checks"]["dedup"]["detail"] == f"{len(earlier)} ids recalled"
    assert len(kafka.records(CANONICAL_EVENTS.name)) == len(earlier) + 1
    assert metric_total(text, "roadmap_ingest_events_duplicate_total") == len(earlier)
    assert metric_total(text, "roadmap_ingest_events_accepted_total") == 1


async def test_ingest_serves_its_openapi_document_and_answers_as_it_says() -> None:
    """GET /openapi.json is the document with this instance's limits; a 202 and a 422 body
    validate against the models the document names."""
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    kafka.log(CANONICAL_EVENTS.name)
    settings = IngestSettings(kafka=KAFKA, dedup_recall=False, http_max_events=25)
    app = create_app(settings, publisher=InMemoryPublisher(kafka), readers=kafka.readers())
    factory = EventFactory("openapi")
    good = factory.event(next(iter(UPSTREAM_TOPIC_BY_TYPE)), 1, 1).value
    assert good is not None
    async with running_in_memory(app):
        transport = httpx.ASGITransport(app=app.http)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
            served = (await client.get("/openapi.json")).json()
            accepted = await client.post("/v1/events", content=good)
            mixed = await client.post("/v1/events", content=b"[" + good + b", 7]")
    assert served == openapi_document(settings)
    array = served["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert array["schema"]["oneOf"][1]["maxItems"] == 25
    assert accepted.status_code == 202
    assert EventsAnswer.model_validate_json(accepted.content).accepted
    assert mixed.status_code == 422
    answer = EventsAnswer.model_validate_json(mixed.content)
    assert [r.index for r in answer.rejected] == [1]
