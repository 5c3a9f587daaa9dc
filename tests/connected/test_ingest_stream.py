"""Ingest's Kafka path against a real broker: conservation, outcomes, order, crash safety.

Each test has its own topic prefix and consumer group. Upstream streams come from
``tests.support.streams``; every message there says what ingest must make of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from contracts.codec import RejectReason
from contracts.events import event_adapter
from contracts.keys import entity_of, partition_key
from contracts.records import (
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE_OFFSET,
    DLQ_HEADER_SOURCE_PARTITION,
    DLQ_HEADER_SOURCE_TOPIC,
    DLQ_MAX_ORIGINAL_BYTES,
    DlqRecord,
)
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.kafka import RealBroker, read_topic, read_until_quiet, unique_name
from tests.support.services import running_app, spawn_service, wait_ready
from tests.support.streams import (
    EventFactory,
    Fate,
    Published,
    Upstream,
    accepted,
    distinct_events,
    mixed_stream,
    publish,
    versioned_events,
)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
ALL_TOPICS = [*UPSTREAM_TOPIC_BY_TYPE.values(), CANONICAL_EVENTS, DEAD_LETTERS]


def _kafka(broker: RealBroker) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("t") + "."
    )


def _metric(text: str, sample: str, **labels: str) -> float:
    """The sum of every ``sample`` series in Prometheus ``text`` whose labels include ``labels``."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _scrape(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.get("/metrics")
        response.raise_for_status()
        return response.text


def _event_id(record: Record) -> str:
    event_id: str = json.loads(record.value)["event_id"]
    return event_id


async def _settled(bootstrap: str, topic: str, expect: int, *, timeout: float) -> list[Record]:
    """The topic once it holds ``expect`` records, re-read after a pause to catch extra ones."""
    first = await read_topic(bootstrap, topic, expect=expect, timeout=timeout)
    assert len(first) >= expect, f"{topic}: {len(first)} records after {timeout}s, want {expect}"
    await asyncio.sleep(2)
    return await read_topic(bootstrap, topic, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# 1. Conservation and outcomes on a mixed stream.


def _check_canonical(
    records: Sequence[Record], stream: Sequence[Upstream], partitions: int
) -> list[str]:
    """One record per accepted event: its normalised form, keyed by its natural key and version,
    in the partition any Kafka client's default partitioner gives its entity (``partition_key``)."""
    expected = {m.event_id: m for m in stream if m.fate is Fate.CANONICAL}
    everywhere = list(range(partitions))
    problems = []
    ids = Counter(_event_id(r) for r in records)
    if set(ids) != set(expected):
        problems.append(
            f"event ids: {len(set(expected) - set(ids))} missing, "
            f"{len(set(ids) - set(expected))} unexpected"
        )
    problems += [f"{eid} published {n} times" for eid, n in ids.items() if n > 1]
    for record in records:
        want = expected.get(_event_id(record))
        if want is not None and (record.key, record.value) != (
            want.canonical_key,
            want.canonical_value,
        ):
            problems.append(f"{want.event_id} ({want.label}): key {record.key!r} or value differ")
        entity = partition_key(event_adapter.validate_json(record.value))
        if record.partition != DefaultPartitioner()(entity, everywhere, everywhere):
            problems.append(f"{record.key!r} in partition {record.partition}")
    return problems


def _check_order_per_key(records: Sequence[Record], stream: Sequence[Upstream]) -> list[str]:
    """Every version of a natural key in one partition, in the order upstream published them."""
    published: dict[bytes | None, list[str | None]] = defaultdict(list)
    for message in stream:
        if message.fate is Fate.CANONICAL:
            published[message.key].append(message.event_id)
    seen: dict[bytes | None, list[str | None]] = defaultdict(list)
    partitions: dict[bytes | None, set[int]] = defaultdict(set)
    for record in records:  # read_topic: partition by partition, in offset order
        seen[entity_of(record.key)].append(_event_id(record))
        partitions[entity_of(record.key)].add(record.partition)
    problems = [f"{key!r} in partitions {p}" for key, p in partitions.items() if len(p) > 1]
    problems += [
        f"{key!r}: canonical order {seen[key]}, published {ids}"
        for key, ids in published.items()
        if seen[key] != ids
    ]
    return problems


def _check_dead_letters(records: Sequence[Record], published: Sequence[Published]) -> list[str]:
    by_source = {(p.topic, p.partition, p.offset): p.message for p in published}
    problems = []
    sources: Counter[tuple[str, int, int]] = Counter()
    for record in records:
        headers = {name: value.decode() for name, value in record.headers}
        dlq = DlqRecord.model_validate_json(record.value)
        source = (
            headers[DLQ_HEADER_SOURCE_TOPIC],
            int(headers[DLQ_HEADER_SOURCE_PARTITION]),
            int(headers[DLQ_HEADER_SOURCE_OFFSET]),
        )
        sources[source] += 1
        message = by_source.get(source)
        if message is None:
            problems.append(f"DLQ record for an unknown source {source}")
            continue
        original = message.value or b""
        kept = original[:DLQ_MAX_ORIGINAL_BYTES]
        checks = {
            "fate": message.fate is Fate.DEAD_LETTER,
            "header reason": headers[DLQ_HEADER_REASON] == message.reason,
            "JSON reason": dlq.reason == message.reason,
            "JSON source": (dlq.source_topic, dlq.source_partition, dlq.source_offset) == source,
            "key": record.key == message.key,
            "original bytes": base64.b64decode(dlq.original_base64) == kept,
            "original size": dlq.original_size == len(original),
            "truncated flag": dlq.original_truncated == (len(kept) < len(original)),
        }
        problems += [
            f"{message.label} at {source}: {check} wrong (reason {dlq.reason}: {dlq.detail})"
            for check, ok in checks.items()
            if not ok
        ]
    problems += [f"{n} DLQ records for {source}" for source, n in sources.items() if n > 1]
    missing = [
        p.message.label
        for p in published
        if p.message.fate is Fate.DEAD_LETTER and (p.topic, p.partition, p.offset) not in sources
    ]
    problems += [f"no DLQ record for: {label}" for label in missing]
    return problems


async def test_mixed_stream_is_conserved_and_each_message_gets_its_expected_outcome(
    broker: RealBroker,
) -> None:
    """A few thousand messages over the three upstream topics (valid events and corrections,
    exact and re-serialised re-deliveries, reused ids, every catalog example, garbage, empty and
    null values, invalid UTF-8, oversized messages, events on the wrong topic) come out as
    in = canonical + DLQ + duplicates and no more. Each canonical record is the normalised
    event keyed by its natural key, versions of a key in publish order in one partition; each
    DLQ record carries the expected reason (header and JSON), its source and original bytes;
    /metrics counts agree."""
    kafka = _kafka(broker)
    settings = IngestSettings(
        http_port=free_port(), group_id=unique_name("ingest"), kafka=kafka, log_format="text"
    )
    stream = mixed_stream(EventFactory(unique_name("run")), entities_per_type=300, seed=7)
    want_canonical, want_dlq = stream.count(Fate.CANONICAL), stream.count(Fate.DEAD_LETTER)
    async with running_app(create_app(settings)) as base_url:
        published = await publish(kafka, stream.messages)
        canonical = await _settled(
            kafka.bootstrap_servers, kafka.topic_name(CANONICAL_EVENTS), want_canonical, timeout=60
        )
        dlq = await _settled(
            kafka.bootstrap_servers, kafka.topic_name(DEAD_LETTERS), want_dlq, timeout=60
        )
        metrics = await _scrape(base_url)

    duplicates = _metric(metrics, "roadmap_ingest_events_duplicate_total", source="kafka")
    print(
        f"\nmixed stream: {len(published)} in ({stream.summary()}); "
        f"out: {len(canonical)} canonical, {len(dlq)} DLQ, {duplicates:.0f} duplicates"
    )
    assert len(published) == len(canonical) + len(dlq) + duplicates
    assert (len(canonical), len(dlq), duplicates) == (
        want_canonical,
        want_dlq,
        stream.count(Fate.DUPLICATE),
    )
    assert _check_canonical(canonical, stream.messages, kafka.topic_partitions) == []
    assert _check_order_per_key(canonical, stream.messages) == []
    assert _check_dead_letters(dlq, published) == []

    def total(sample: str, **labels: str) -> float:
        return _metric(metrics, f"roadmap_ingest_events_{sample}_total", source="kafka", **labels)

    assert total("received") == len(published)
    assert total("accepted") == len(canonical)
    assert total("rejected") == len(dlq)
    reasons = Counter(m.reason for m in stream.messages if m.fate is Fate.DEAD_LETTER)
    assert {r: total("rejected", reason=r.value) for r in RejectReason} == {
        r: reasons.get(r, 0) for r in RejectReason
    }


# ---------------------------------------------------------------------------------------------
# Running ingest as a process.


@dataclass(frozen=True, slots=True)
class IngestProcess:
    env: dict[str, str]
    base_url: str


def _ingest_env(kafka: KafkaSettings, group: str, batch: int) -> IngestProcess:
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "INGEST_HTTP_PORT": str(port),
        "INGEST_GROUP_ID": group,
        "INGEST_LOG_FORMAT": "text",
        "INGEST_BATCH_MAX_RECORDS": str(batch),
    }
    return IngestProcess(env, f"http://127.0.0.1:{port}")


class CanonicalTail:
    """Reads the canonical topic from the beginning and keeps every record it has seen.

    Counting records read, rather than asking for end offsets: the embedded broker's end offsets
    can lag hundreds of records behind what a fetch returns.
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.records: list[Record] = []

    async def poll(self) -> int:
        """Read what arrived since the last call; return how many records that was."""
        batch = await self._consumer.getmany(timeout_ms=50)
        new = [record for records in batch.values() for record in records]
        self.records.extend(new)
        return len(new)

    async def until(self, at_least: int, process: subprocess.Popen[bytes]) -> int:
        """Read until ``at_least`` records were seen; fail if ``process`` dies meanwhile."""
        deadline = time.monotonic() + 60
        while len(self.records) < at_least:
            assert process.poll() is None, f"ingest exited early with {process.returncode}"
            assert time.monotonic() < deadline, f"only {len(self.records)} canonical records"
            await self.poll()
        return len(self.records)

    async def until_quiet(self, quiet_s: float = 1.0) -> int:
        """Read until nothing new arrived for ``quiet_s``."""
        last_news = time.monotonic()
        while time.monotonic() - last_news < quiet_s:
            if await self.poll():
                last_news = time.monotonic()
        return len(self.records)

    async def until_covered(self, want: set[str], *, timeout: float = 90) -> None:
        """Read until the event ids seen cover ``want``."""
        seen = {_event_id(r) for r in self.records}
        deadline = time.monotonic() + timeout
        while not want <= seen:
            assert time.monotonic() < deadline, f"{len(want - seen)} events never published"
            before = len(self.records)
            await self.poll()
            seen.update(_event_id(r) for r in self.records[before:])


@asynccontextmanager
async def _tail(kafka: KafkaSettings) -> AsyncIterator[CanonicalTail]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
    await consumer.start()
    try:
        topic = kafka.topic_name(CANONICAL_EVENTS)
        partitions = [TopicPartition(topic, p) for p in range(kafka.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield CanonicalTail(consumer)
    finally:
        await consumer.stop()


async def _committed_total(kafka: KafkaSettings, group: str) -> int:
    """How many upstream records ``group`` committed, over every partition (without joining)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for spec in UPSTREAM_TOPIC_BY_TYPE.values():
            for partition in range(kafka.topic_partitions):
                tp = TopicPartition(kafka.topic_name(spec), partition)
                total += await consumer.committed(tp) or 0
        return total
    finally:
        await consumer.stop()


async def _published_before_start(kafka: KafkaSettings, stream: list[Upstream]) -> int:
    await ensure_topics(kafka, ALL_TOPICS)
    return len(await publish(kafka, stream))


# ---------------------------------------------------------------------------------------------
# 2. SIGKILL mid-stream.

KILL_BATCH = 500
KILL_STREAM = 100_000
"""Enough that ingest is still mid-stream when the kill lands: at about 70,000 events/s, 20,000
were sometimes all done between the tail seeing a quarter of them and the SIGKILL."""


async def test_sigkill_mid_stream_loses_nothing_and_repeats_nothing(
    broker: RealBroker, tmp_path: Path
) -> None:
    """100,000 distinct valid events; ingest is SIGKILLed mid-stream and a new process of the same
    group takes over. Every event_id reaches the canonical topic exactly once. What can be in
    flight at the kill is bounded: ingest handles one batch at a time (at most
    INGEST_BATCH_MAX_RECORDS records over all partitions) and commits it as soon as the broker
    acknowledged its outcomes, so at most that batch is published and not committed. The new
    process resumes from the committed offsets (it receives total - committed records) and,
    having refilled its dedup window from the canonical topic, counts the published but
    uncommitted ones as duplicates instead of publishing them again."""
    kafka, group = _kafka(broker), unique_name("ingest")
    events = distinct_events(EventFactory(unique_name("run")), KILL_STREAM)
    want = {e.event_id for e in events if e.event_id is not None}
    total = await _published_before_start(kafka, events)
    async with _tail(kafka) as canonical:
        first = _ingest_env(kafka, group, KILL_BATCH)
        with spawn_service("ingest", first.env, log_path=tmp_path / "ingest-1.log") as process:
            seen = await canonical.until(total // 4, process)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        at_kill = await canonical.until_quiet()
        committed = await _committed_total(kafka, group)
        assert 0 < committed <= at_kill < total, (committed, at_kill, total)

        second = _ingest_env(kafka, group, KILL_BATCH)
        with spawn_service("ingest", second.env, log_path=tmp_path / "ingest-2.log") as process:
            await wait_ready(second.base_url, timeout=60)
            await canonical.until_covered(want)
            metrics = await _scrape(second.base_url)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        records = canonical.records

    ids = Counter(_event_id(r) for r in records)
    duplicates = len(records) - len(ids)
    in_flight = at_kill - committed
    received = _metric(metrics, "roadmap_ingest_events_received_total", source="kafka")
    print(
        f"\nSIGKILL: {total} in; killed after {seen}+ canonical seen: {at_kill} canonical, "
        f"{committed} committed, {in_flight} published but uncommitted; "
        f"restart received {received:.0f}, counted "
        f"{_metric(metrics, 'roadmap_ingest_events_duplicate_total'):.0f} duplicates; "
        f"{len(records)} canonical = {len(ids)} distinct + {duplicates} duplicates"
    )
    assert set(ids) == want
    assert in_flight <= KILL_BATCH
    assert duplicates == 0
    assert _metric(metrics, "roadmap_ingest_events_duplicate_total") == in_flight
    assert total - committed <= received < total


# ---------------------------------------------------------------------------------------------
# 3. Order per key across a graceful restart.


async def test_last_version_per_key_survives_a_graceful_restart(
    broker: RealBroker, tmp_path: Path
) -> None:
    """Five versions of each of 6,300 natural keys, published version by version; ingest is
    stopped with SIGTERM mid-stream and restarted in the same group. Nothing is missing, each
    key's versions first appear in publish order, and the last canonical record of every natural
    key is the last version published."""
    kafka, group = _kafka(broker), unique_name("ingest")
    # 31,500 events: with 10,500, the tail had seen a tenth when ingest had done 85% of them.
    events = versioned_events(EventFactory(unique_name("run")), entities_per_type=2100, versions=5)
    want = {e.event_id for e in events if e.event_id is not None}
    total = await _published_before_start(kafka, events)
    async with _tail(kafka) as canonical:
        # Small batches and an early stop: the tail reads behind ingest, and with batches of
        # 1,000 a fast run had published everything by the time the tail had seen a third.
        first = _ingest_env(kafka, group, 100)
        with spawn_service("ingest", first.env, log_path=tmp_path / "ingest-1.log") as process:
            await canonical.until(total // 10, process)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        at_stop = await canonical.until_quiet()
        committed = await _committed_total(kafka, group)
        print(f"\ngraceful stop: {at_stop} of {total} canonical at the stop")
        assert at_stop < total, "ingest finished before it was stopped"

        second = _ingest_env(kafka, group, 1000)
        with spawn_service("ingest", second.env, log_path=tmp_path / "ingest-2.log") as process:
            await wait_ready(second.base_url, timeout=60)
            await canonical.until_covered(want)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        records = canonical.records

    published: dict[bytes | None, list[str | None]] = defaultdict(list)
    for event in events:
        published[event.key].append(event.event_id)
    seen: dict[bytes | None, list[str]] = defaultdict(list)
    for record in records:
        seen[entity_of(record.key)].append(_event_id(record))
    duplicates = len(records) - len({_event_id(r) for r in records})
    print(
        f"\nSIGTERM restart: {total} in ({len(published)} keys x 5 versions); {at_stop} canonical "
        f"and {committed} committed at stop; {len(records)} canonical, {duplicates} duplicates"
    )
    assert {key: ids[-1] for key, ids in seen.items()} == {
        key: ids[-1] for key, ids in published.items()
    }
    assert {key: list(dict.fromkeys(ids)) for key, ids in seen.items()} == published


# ---------------------------------------------------------------------------------------------
# 4. The dedup window across a restart.


@pytest.mark.parametrize("recall", [True, False], ids=["recall", "no-recall"])
async def test_a_restarted_ingest_still_knows_the_ids_it_accepted(
    broker: RealBroker, recall: bool
) -> None:
    """60 events are accepted and ingest is stopped. Then upstream re-sends one of them exactly,
    reuses another one's event_id with other content, and sends one new event. The restarted
    ingest refills its dedup window from the canonical topic (INGEST_DEDUP_RECALL, the default):
    the re-send is a counted duplicate, the reused id goes to the DLQ as event_id_reused, only
    the new event is published, and /readyz and the window gauge show the 60 recalled ids. With
    the recall off the window starts empty: the re-send and the reused id are published again."""
    kafka, group = _kafka(broker), unique_name("ingest")
    factory = EventFactory(unique_name("run"))
    first = distinct_events(factory, 60)
    kind = first[1].topic_type
    reused_body = factory.body(kind, 1, 2)  # entity 1 corrected...
    reused_body["event_id"] = first[1].event_id  # ...under its first version's event_id
    reused = accepted(kind, json.dumps(reused_body).encode(), "reused event_id")
    new = factory.event(kind, 1_000, 1)
    second = [first[0], reused, new]

    def settings_for() -> IngestSettings:
        return IngestSettings(
            http_port=free_port(),
            group_id=group,
            kafka=kafka,
            log_format="text",
            dedup_recall=recall,
        )

    canonical_topic, dlq_topic = kafka.topic_name(CANONICAL_EVENTS), kafka.topic_name(DEAD_LETTERS)
    await ensure_topics(kafka, ALL_TOPICS)
    await publish(kafka, first)
    async with running_app(create_app(settings_for())):
        before = await read_until_quiet(kafka, [canonical_topic], at_least=60, quiet_s=1.0)
    assert len(before) == 60

    await publish(kafka, second)
    async with running_app(create_app(settings_for())) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            ready = (await client.get("/readyz")).json()["checks"]["dedup"]
        expect_new = 1 if recall else 3
        after = await read_until_quiet(
            kafka, [canonical_topic], at_least=60 + expect_new, quiet_s=2.0
        )
        dlq = await read_until_quiet(kafka, [dlq_topic], quiet_s=1.0)
        metrics = await _scrape(base_url)

    new_ids = Counter(_event_id(r) for r in after) - Counter(_event_id(r) for r in before)
    reasons = [DlqRecord.model_validate_json(r.value).reason for r in dlq]
    duplicates = _metric(metrics, "roadmap_ingest_events_duplicate_total")
    window = _metric(metrics, "roadmap_ingest_dedup_window_ids")
    print(
        f"\nrestart with recall={recall}: readyz dedup {ready}; published again "
        f"{sorted(new_ids.elements())}; DLQ {[r.value for r in reasons]}; "
        f"{duplicates:.0f} duplicates; window {window:.0f} ids"
    )
    if recall:
        assert ready == {"ok": True, "detail": "60 ids recalled"}
        assert dict(new_ids) == {new.event_id: 1}
        assert reasons == [RejectReason.EVENT_ID_REUSED]
        assert duplicates == 1
        assert window == 61
    else:
        assert ready == {"ok": True, "detail": "not recalled (off)"}
        assert dict(new_ids) == {first[0].event_id: 1, first[1].event_id: 1, new.event_id: 1}
        assert reasons == []
        assert duplicates == 0
        assert window == 3
