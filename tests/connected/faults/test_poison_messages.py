"""Fault 3: poison messages mixed into a valid stream never stall ingest, and each is dead-lettered.

A hostile upstream sends random bytes, values over ingest's 64 KiB limit up to 64 MiB (Apache
Kafka refuses records over ``max.message.bytes``, about 1 MB by default, at the producer; the
test raises it to 96 MiB on its upstream topics, as a deployment might, so that the large ones
reach ingest; 100 MiB would be over the broker's ``socket.request.max.bytes``), JSON nested
10,000 to 100,000 levels deep, invalid UTF-8 of every common kind, and other things a parser can
choke on. Every poison message is followed in its own partition by valid events: those must all
be published (the consumer did not stall on the poison), and each poison message must appear
once on the DLQ with the reason worked out here by hand, its source position and its original
bytes (truncated beyond 512 KiB).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import httpx
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client.parser import text_string_to_metric_families

from contracts.codec import MAX_EVENT_BYTES, RejectReason
from contracts.events import EventType
from contracts.records import (
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE_OFFSET,
    DLQ_HEADER_SOURCE_PARTITION,
    DLQ_HEADER_SOURCE_TOPIC,
    DLQ_MAX_KEY_BYTES,
    DLQ_MAX_ORIGINAL_BYTES,
    DlqRecord,
)
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE, TopicSpec
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from tests.support.fault_report import FaultReport
from tests.support.kafka import RealBroker, read_until_quiet, unique_name
from tests.support.services import spawn_service, wait_ready
from tests.support.streams import EventFactory

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

KIB, MIB = 1024, 1024 * 1024
ALL_TOPICS = [*UPSTREAM_TOPIC_BY_TYPE.values(), CANONICAL_EVENTS, DEAD_LETTERS]
RAISED_MAX_MESSAGE = 96 * 1024 * 1024
"""The upstream topics' ``max.message.bytes`` in the stream test: the largest poison fits."""
KAFKA_DEFAULT_MAX_MESSAGE = 1_048_588
"""Apache Kafka's default ``message.max.bytes``: what a DLQ record must fit under (records.py
promises the truncation at 512 KiB keeps it there)."""
VALID_AFTER_EACH = 3
"""Valid events published right after each poison message, in the same partition."""


@dataclass(frozen=True, slots=True)
class Poison:
    label: str
    topic_type: EventType
    value: bytes | None
    reason: RejectReason
    key: bytes | None = None


def _nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _padded(raw: bytes, size: int) -> bytes:
    """``raw`` (a JSON object) with spaces before its last brace, ``size`` bytes in all."""
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


def _poison(factory: EventFactory, rng: random.Random) -> list[Poison]:
    """What a hostile upstream sends, each with the reason the contract gives it (README,
    "Events"): the size is checked first, then UTF-8, then JSON, then the object's shape."""
    ship, mile, hire = (
        EventType.TRADE_SHIPMENT,
        EventType.PROJECT_MILESTONE,
        EventType.HIRING_REPORT,
    )

    def event(event_type: EventType, entity: int) -> bytes:
        return json.dumps(factory.body(event_type, entity, 1)).encode()

    too_large, not_utf8, not_json = (
        RejectReason.TOO_LARGE,
        RejectReason.NOT_UTF8,
        RejectReason.NOT_JSON,
    )
    valid = event(ship, 900_000)
    assert b'"tonnes": ' in valid  # the NaN case below edits this field
    escaped = factory.body(mile, 900_001, 1)
    escaped["source"] = "upstream-\ud800"  # a lone surrogate, \-escaped in JSON
    deep_in_data = factory.body(hire, 900_002, 1)
    deep_in_data["data"]["extra"] = "PLACEHOLDER"
    deep = json.dumps(deep_in_data).encode().replace(b'"PLACEHOLDER"', _nested_arrays(20_000))
    return [
        # random bytes (0xFF never occurs in UTF-8)
        Poison("random bytes, 1 byte", ship, b"\xff", not_utf8),
        Poison("random bytes, 16 B", mile, b"\xff" + rng.randbytes(15), not_utf8),
        Poison("random bytes, 1 KiB", hire, b"\xff" + rng.randbytes(KIB - 1), not_utf8),
        Poison(
            "random bytes, 64 KiB", ship, b"\xff" + rng.randbytes(MAX_EVENT_BYTES - 1), not_utf8
        ),
        Poison("random letters", mile, "".join(rng.choices("qwxz", k=500)).encode(), not_json),
        Poison("1 KiB of NUL bytes", hire, b"\x00" * KIB, not_json),
        # over the 64 KiB limit, up to what the upstream topics here take (96 MiB)
        Poison(
            "valid event padded to 64 KiB + 1", ship, _padded(valid, MAX_EVENT_BYTES + 1), too_large
        ),
        Poison(
            "512 KiB exactly (kept whole)", mile, _padded(valid, DLQ_MAX_ORIGINAL_BYTES), too_large
        ),
        Poison(
            "512 KiB + 1 (truncated)", hire, _padded(valid, DLQ_MAX_ORIGINAL_BYTES + 1), too_large
        ),
        Poison("1 MiB (real Kafka's default max)", ship, b"\xff" * MIB, too_large),
        Poison("4 MiB + 1 (over ingest's fetch size)", mile, rng.randbytes(4 * MIB + 1), too_large),
        Poison("16 MiB", hire, _padded(valid, 16 * MIB), too_large),
        Poison("64 MiB", ship, b"[" * (64 * MIB), too_large),
        # deep nesting
        Poison("arrays 100,000 deep (200 KB)", mile, _nested_arrays(100_000), too_large),
        Poison("arrays 30,000 deep (60 KB)", hire, _nested_arrays(30_000), not_json),
        Poison("objects 10,000 deep", ship, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, not_json),
        Poison("valid envelope, data 20,000 deep", hire, deep, not_json),
        # invalid UTF-8
        Poison("overlong encoding of '/'", mile, b'{"event_id": "\xc0\xaf"}', not_utf8),
        Poison("UTF-16 surrogate as UTF-8 (CESU)", hire, b'{"event_id": "\xed\xa0\x80"}', not_utf8),
        Poison("truncated multi-byte sequence", ship, valid[:-2] + b"\xe2\x82", not_utf8),
        Poison("Latin-1 text", mile, '{"source": "caf\u00e9"}'.encode("latin-1"), not_utf8),
        Poison("valid event in UTF-16", hire, valid.decode().encode("utf-16"), not_utf8),
        Poison("code point above U+10FFFF", ship, b'{"x": "\xf4\x90\x80\x80"}', not_utf8),
        # other things a parser can choke on
        Poison(
            "UTF-8 byte order mark before a valid event", mile, b"\xef\xbb\xbf" + valid, not_json
        ),
        Poison("10,000-digit integer", hire, b"[" + b"9" * 10_000 + b"]", not_json),
        Poison("NaN amount", ship, valid.replace(b'"tonnes": ', b'"tonnes": NaN, "x": '), not_json),
        Poison("empty value", mile, b"", not_json),
        Poison("null value (tombstone)", hire, None, RejectReason.TOMBSTONE, key=b"tombstone"),
        Poison("JSON null", ship, b"null", RejectReason.NOT_OBJECT),
        Poison("array of valid events", mile, b"[" + valid + b"]", RejectReason.NOT_OBJECT),
        Poison(
            "lone surrogate escape in source",
            mile,
            json.dumps(escaped).encode(),
            RejectReason.SCHEMA,
        ),
        Poison(
            "valid shipment on the hiring topic",
            hire,
            event(ship, 900_003),
            RejectReason.TYPE_MISMATCH,
        ),
        Poison(
            "key of 64 KiB random bytes", ship, b"\xff\xfe", not_utf8, key=rng.randbytes(64 * KIB)
        ),
    ]


@dataclass(frozen=True, slots=True)
class Slot:
    """One upstream message, where it goes, and what it is."""

    topic_type: EventType
    partition: int
    key: bytes | None
    value: bytes | None
    poison: Poison | None = None
    event_id: str | None = None


def _stream(factory: EventFactory, poison: Sequence[Poison], partitions: int) -> list[Slot]:
    """Valid events, then each poison message followed by ``VALID_AFTER_EACH`` valid events in
    the same partition of the same topic. Poison is spread over the partitions."""
    slots: list[Slot] = []
    entity = 0

    def valid(event_type: EventType, partition: int) -> Slot:
        nonlocal entity
        entity += 1
        body = factory.body(event_type, entity, 1)
        return Slot(
            event_type, partition, None, json.dumps(body).encode(), event_id=body["event_id"]
        )

    for event_type in EventType:
        slots.extend(valid(event_type, p) for p in range(partitions) for _ in range(5))
    for n, bad in enumerate(poison):
        partition = n % partitions
        slots.append(Slot(bad.topic_type, partition, bad.key, bad.value, poison=bad))
        slots.extend(valid(bad.topic_type, partition) for _ in range(VALID_AFTER_EACH))
    return slots


@dataclass(frozen=True, slots=True)
class Stored:
    slot: Slot
    topic: str
    partition: int
    offset: int


async def _publish(kafka: KafkaSettings, slots: Sequence[Slot]) -> list[Stored]:
    """Publish in order to each slot's partition (acks=all); return where each was stored."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        max_request_size=128 * MIB,
        request_timeout_ms=120_000,
    )
    await producer.start()
    try:
        sent = []
        for slot in slots:
            topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[slot.topic_type])
            future = await producer.send(topic, slot.value, key=slot.key, partition=slot.partition)
            sent.append((slot, topic, future))
        stored = []
        for slot, topic, future in sent:
            metadata = await future
            stored.append(Stored(slot, topic, metadata.partition, metadata.offset))
        return stored
    finally:
        await producer.stop()


async def _raise_max_message_bytes(
    kafka: KafkaSettings, specs: Iterable[TopicSpec], limit: int
) -> None:
    """Let records up to ``limit`` bytes into these topics (Apache Kafka's default: ~1 MB)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    kafka.topic_name(spec),
                    configs={"max.message.bytes": str(limit)},
                )
                for spec in specs
            ]
        )
    finally:
        await admin.close()


def _metric(text: str, sample: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _watch_ready(base_url: str, stop: asyncio.Event, seen: Counter[int]) -> None:
    """Poll ``/readyz`` every second until ``stop``; count the status codes."""
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            try:
                seen[(await client.get(f"{base_url}/readyz")).status_code] += 1
            except httpx.HTTPError:
                seen[0] += 1
            await asyncio.sleep(1)


def _ingest_env(kafka: KafkaSettings, port: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "INGEST_HTTP_PORT": str(port),
        "INGEST_GROUP_ID": unique_name("ingest-poison"),
        "INGEST_LOG_FORMAT": "text",
    }


def _dlq_source(record: Record) -> tuple[str, int, int]:
    headers = {k: v.decode() for k, v in record.headers}
    return (
        headers[DLQ_HEADER_SOURCE_TOPIC],
        int(headers[DLQ_HEADER_SOURCE_PARTITION]),
        int(headers[DLQ_HEADER_SOURCE_OFFSET]),
    )


def _expected_dlq_key(key: bytes | None) -> bytes | None:
    """The original key, or ``sha256:<hex>`` of it when it is over DLQ_MAX_KEY_BYTES."""
    if key is None or len(key) <= DLQ_MAX_KEY_BYTES:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode("ascii")


def _check_dead_letter(record: Record, stored: Stored) -> list[str]:
    """The DLQ record says the expected reason (header and JSON) and source, keeps the key,
    and keeps the original bytes (the first 512 KiB, flagged, when longer)."""
    poison = stored.slot.poison
    assert poison is not None
    headers = {k: v.decode() for k, v in record.headers}
    body = DlqRecord.model_validate_json(record.value)
    original = poison.value or b""
    kept = original[:DLQ_MAX_ORIGINAL_BYTES]
    checks = {
        "header reason": headers[DLQ_HEADER_REASON] == poison.reason.value,
        "JSON reason": body.reason == poison.reason,
        "JSON source": (body.source_topic, body.source_partition, body.source_offset)
        == (stored.topic, stored.partition, stored.offset),
        "key": record.key == _expected_dlq_key(poison.key),
        "original size": body.original_size == len(original),
        "original bytes": base64.b64decode(body.original_base64) == kept,
        "truncated flag": body.original_truncated == (len(original) > DLQ_MAX_ORIGINAL_BYTES),
    }
    return [
        f"{poison.label}: {name} wrong (got reason {body.reason}: {body.detail[:80]})"
        for name, ok in checks.items()
        if not ok
    ]


@pytest.mark.timeout(600)
async def test_poison_mixed_into_a_stream_never_stalls_and_each_lands_on_the_dlq(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """33 kinds of poison (random bytes, 64 KiB + 1 up to 64 MiB, JSON nested 10,000-100,000
    deep, seven kinds of invalid UTF-8, a byte order mark, a 10,000-digit number, NaN, empty,
    tombstone, non-objects, a lone surrogate escape, a wrong-topic event, a 64 KiB key), each
    followed in its partition by three valid events, among 45 more valid events, into a real
    ingest process. Every valid event, including each one right after a poison message, is
    published exactly once on the canonical topic; each poison message is on the DLQ exactly
    once, at its source position, with its hand-worked reason, key and original bytes (cut at
    512 KiB and flagged beyond); ingest's rejected counters by reason equal the DLQ's reasons,
    its DLQ record counter the DLQ's length; it ends ready with no lag."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("poison") + "."
    )
    factory = EventFactory(unique_name("run"))
    poison = _poison(factory, random.Random(3))
    slots = _stream(factory, poison, kafka.topic_partitions)
    valid_ids = {s.event_id for s in slots if s.event_id is not None}
    biggest = max(len(p.value or b"") for p in poison)
    fault_report.injected(
        f"{len(poison)} poison messages ({', '.join(p.label for p in poison)}) among "
        f"{len(valid_ids)} valid events, {VALID_AFTER_EACH} valid right after each poison in "
        f"its partition; largest value {biggest / MIB:.0f} MiB; broker {broker.kind}"
    )
    await ensure_topics(kafka, ALL_TOPICS)
    await _raise_max_message_bytes(kafka, UPSTREAM_TOPIC_BY_TYPE.values(), RAISED_MAX_MESSAGE)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "ingest.log"
    with spawn_service("ingest", _ingest_env(kafka, port), log_path=log_path) as process:
        try:
            await wait_ready(base_url, timeout=120)
            readiness: Counter[int] = Counter()
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_ready(base_url, stop, readiness))
            started = time.monotonic()
            stored = await _publish(kafka, slots)
            published_s = time.monotonic() - started
            canonical = await read_until_quiet(
                kafka, [kafka.topic_name(CANONICAL_EVENTS)], at_least=len(valid_ids), timeout=240
            )
            dlq = await read_until_quiet(
                kafka, [kafka.topic_name(DEAD_LETTERS)], at_least=len(poison), timeout=120
            )
            settled_s = time.monotonic() - started
            stop.set()
            await watcher
            assert process.poll() is None, f"ingest exited with {process.returncode}"
            async with httpx.AsyncClient(timeout=10) as client:
                final_ready = await client.get(f"{base_url}/readyz")
                metrics = (await client.get(f"{base_url}/metrics")).text
            process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(process.wait, 30)
        except BaseException:
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-40:]))
            raise

    fault_report.saw(
        f"published {len(stored)} messages in {published_s:.1f} s; canonical {len(canonical)}, "
        f"DLQ {len(dlq)} records {settled_s:.1f} s after the first send; /readyz during the run "
        f"{dict(readiness)}, at the end {final_ready.status_code}; exit {exit_code} on SIGTERM"
    )

    canonical_ids = Counter(json.loads(r.value)["event_id"] for r in canonical)
    assert set(canonical_ids) == valid_ids, f"{len(valid_ids - set(canonical_ids))} missing"
    assert max(canonical_ids.values()) == 1, canonical_ids.most_common(3)
    after_poison = Counter[str]()
    by_partition: dict[tuple[str, int], list[Stored]] = {}
    for item in stored:
        by_partition.setdefault((item.topic, item.partition), []).append(item)
    for items in by_partition.values():
        items.sort(key=lambda s: s.offset)
        for index, item in enumerate(items):
            if item.slot.poison is None:
                continue
            following = items[index + 1 : index + 1 + VALID_AFTER_EACH]
            assert [f.slot.poison for f in following] == [None] * VALID_AFTER_EACH
            assert all(canonical_ids[f.slot.event_id or ""] == 1 for f in following)
            after_poison[item.slot.poison.label] += len(following)
    assert len(after_poison) == len(poison)
    fault_report.checked(
        f"never stalled: all {len(valid_ids)} valid events canonical exactly once, among them "
        f"the {sum(after_poison.values())} published right after a poison message in its "
        "partition (later offsets than the poison)"
    )

    by_source = {(s.topic, s.partition, s.offset): s for s in stored if s.slot.poison}
    sources = Counter(_dlq_source(r) for r in dlq)
    assert set(sources) == set(by_source), (
        f"missing: {[by_source[s].slot.poison for s in set(by_source) - set(sources)]}; "
        f"unexpected: {set(sources) - set(by_source)}"
    )
    assert max(sources.values()) == 1, sources.most_common(3)
    problems = [p for r in dlq for p in _check_dead_letter(r, by_source[_dlq_source(r)])]
    assert problems == []
    truncated = [p.label for p in poison if len(p.value or b"") > DLQ_MAX_ORIGINAL_BYTES]
    fault_report.checked(
        f"each of the {len(poison)} poison messages on the DLQ exactly once at its source "
        f"position, with its expected reason (header and JSON), key, size and bytes; "
        f"{len(truncated)} over 512 KiB kept as their first 512 KiB and flagged truncated "
        f"({', '.join(truncated)})"
    )
    largest_dlq = max(len(r.value) + len(r.key or b"") for r in dlq)
    fault_report.saw(f"largest DLQ record {largest_dlq:,} bytes (key + value)")

    dlq_reasons = Counter(DlqRecord.model_validate_json(r.value).reason.value for r in dlq)
    counted = {
        reason.value: _metric(
            metrics, "roadmap_ingest_events_rejected_total", source="kafka", reason=reason.value
        )
        for reason in RejectReason
    }
    assert counted == {reason.value: float(dlq_reasons[reason.value]) for reason in RejectReason}
    assert _metric(metrics, "roadmap_ingest_dlq_records_total") == len(dlq)
    assert _metric(metrics, "roadmap_ingest_events_received_total", source="kafka") == len(stored)
    assert _metric(metrics, "roadmap_ingest_events_accepted_total", source="kafka") == len(
        valid_ids
    )
    assert _metric(metrics, "roadmap_ingest_consumer_lag_messages") == 0
    fault_report.checked(
        f"ingest's rejected counters by reason equal the DLQ's: "
        f"{ {r: int(n) for r, n in counted.items() if n} }; dlq_records_total {len(dlq)}, "
        f"received {len(stored)}, accepted {len(valid_ids)}, consumer lag 0"
    )
    assert final_ready.status_code == 200, final_ready.text
    assert exit_code == 0


async def test_dlq_record_of_a_poison_message_with_a_large_key_fits_under_one_megabyte(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """A poison message a default Apache Kafka accepts upstream (a 400 KiB key and 520 KiB of
    garbage: 920 KiB in all) must give a DLQ record that a default Kafka accepts too (key +
    value + headers under ``message.max.bytes`` = 1,048,588), as ``DLQ_MAX_ORIGINAL_BYTES``
    promises. Otherwise, on a real Kafka, the DLQ publish is refused, ingest re-reads the batch
    forever and the partition stalls (Apache Kafka refuses it at its default limit, and the test
    measures the record too). The over-long key is replaced by its SHA-256."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("poisonkey") + "."
    )
    rng = random.Random(9)
    bad = Poison(
        "520 KiB of garbage under a 400 KiB key",
        EventType.TRADE_SHIPMENT,
        b"\xff" + rng.randbytes(520 * KIB - 1),
        RejectReason.TOO_LARGE,
        key=rng.randbytes(400 * KIB),
    )
    upstream_size = len(bad.value or b"") + len(bad.key or b"")
    assert upstream_size < KAFKA_DEFAULT_MAX_MESSAGE
    fault_report.injected(f"{bad.label}: {upstream_size:,} bytes upstream")
    await ensure_topics(kafka, ALL_TOPICS)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with spawn_service("ingest", _ingest_env(kafka, port), log_path=tmp_path / "ingest.log"):
        await wait_ready(base_url, timeout=120)
        stored = await _publish(kafka, [Slot(bad.topic_type, 0, bad.key, bad.value, poison=bad)])
        dlq = await read_until_quiet(
            kafka, [kafka.topic_name(DEAD_LETTERS)], at_least=1, timeout=120
        )
    assert len(dlq) == 1
    assert _check_dead_letter(dlq[0], stored[0]) == []
    record = dlq[0]
    size = (
        len(record.key or b"") + len(record.value) + sum(len(k) + len(v) for k, v in record.headers)
    )
    fault_report.saw(
        f"DLQ record: key {len(record.key or b''):,} + value {len(record.value):,} bytes "
        f"(+ headers) = {size:,}; Kafka's default limit {KAFKA_DEFAULT_MAX_MESSAGE:,}"
    )
    over = size - KAFKA_DEFAULT_MAX_MESSAGE
    fault_report.checked(
        "the DLQ record fits under Kafka's default message.max.bytes: "
        + ("yes" if over <= 0 else f"NO, {over:,} bytes over")
    )
    assert size <= KAFKA_DEFAULT_MAX_MESSAGE
