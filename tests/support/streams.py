"""Upstream streams for tests: valid events in quantity, and mixed streams with known outcomes.

Every message says what ingest must make of it (``Fate``): one canonical event, nothing (an
exact duplicate), or one DLQ record with a given reason. Messages that must keep their relative
order (versions of one natural key, a duplicate after its original) share an upstream key, so
they land in one partition in publish order; otherwise lanes are interleaved at random.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.codec import MAX_EVENT_BYTES, Accepted, RejectReason, decode_event, encode_event
from contracts.events import EventType
from contracts.examples import invalid_examples, valid_examples
from contracts.keys import canonical_key, message_key
from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings


class Fate(Enum):
    CANONICAL = "canonical"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One message for an upstream topic and what ingest must do with it."""

    topic_type: EventType
    """The upstream topic it is published to (the topic of this event type)."""
    key: bytes | None
    value: bytes | None
    fate: Fate
    label: str
    reason: RejectReason | None = None
    event_id: str | None = None
    canonical_key: bytes | None = None
    canonical_value: bytes | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """An ``Upstream`` message with where the broker stored it."""

    message: Upstream
    topic: str
    partition: int
    offset: int


_SHORT = {
    EventType.TRADE_SHIPMENT: "sh",
    EventType.PROJECT_MILESTONE: "pm",
    EventType.HIRING_REPORT: "hr",
}


def _templates() -> dict[EventType, list[dict[str, Any]]]:
    templates: dict[EventType, list[dict[str, Any]]] = {t: [] for t in EventType}
    for example in valid_examples():
        templates[example.event_type].append(json.loads(example.raw))
    return templates


class EventFactory:
    """Valid upstream events built from the contract's valid examples.

    ``event(type, entity, version)`` is version ``version`` of entity number ``entity``: its
    natural key depends only on ``(type, entity)`` and one data field changes with the version,
    so two versions are a correction of one another.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._templates = _templates()

    def body(self, event_type: EventType, entity: int, version: int) -> dict[str, Any]:
        """The JSON object of one event, before serialisation."""
        options = self._templates[event_type]
        obj: dict[str, Any] = json.loads(json.dumps(options[entity % len(options)]))
        ident = f"{self.run_id}-{_SHORT[event_type]}{entity}"
        obj["event_id"] = f"{ident}-v{version}"
        data = obj["data"]
        if event_type is EventType.TRADE_SHIPMENT:
            data["shipment_id"] = ident
            data["tonnes"] = f"{version}.5" if isinstance(data["tonnes"], str) else version + 0.5
        elif event_type is EventType.PROJECT_MILESTONE:
            data["project_id"] = ident
            data["planned_jobs"] = version * 10
        else:
            data["project_id"] = ident
            data["jobs_created"] = version - 3
        return obj

    def event(self, event_type: EventType, entity: int, version: int) -> Upstream:
        """A valid event that ingest must publish as a canonical event."""
        return accepted(event_type, _dumps(self.body(event_type, entity, version)), "valid")


def _dumps(obj: Any, **options: Any) -> bytes:
    return json.dumps(obj, **options).encode("utf-8")


def accepted(topic_type: EventType, raw: bytes, label: str) -> Upstream:
    """``raw`` (which must decode), keyed and paired with the canonical record it must yield."""
    result = decode_event(raw, expected_type=topic_type)
    if not isinstance(result, Accepted):
        raise ValueError(f"test data: {label} does not decode: {result}")
    return Upstream(
        topic_type=topic_type,
        key=message_key(result.event),
        value=raw,
        fate=Fate.CANONICAL,
        label=label,
        event_id=result.event.event_id,
        canonical_key=canonical_key(result.event),
        canonical_value=encode_event(result.event),
    )


def versioned_events(
    factory: EventFactory, *, entities_per_type: int, versions: int
) -> list[Upstream]:
    """Every entity of every type in ``versions`` versions, version 1 of all before version 2.

    Versions of one entity are far apart in the stream and share an upstream key.
    """
    return [
        factory.event(event_type, entity, version)
        for version in range(1, versions + 1)
        for entity in range(entities_per_type)
        for event_type in EventType
    ]


def distinct_events(factory: EventFactory, count: int) -> list[Upstream]:
    """``count`` valid events, each with its own event_id and natural key, types in turn."""
    kinds = list(EventType)
    return [factory.event(kinds[n % 3], n, 1) for n in range(count)]


# ---------------------------------------------------------------------------------------------
# A mixed stream: corrections, duplicates, invalid examples, garbage, oversized messages.


@dataclass
class MixedStream:
    """The messages in publish order, and what the stream holds, for reports."""

    messages: list[Upstream] = field(default_factory=list)

    def count(self, fate: Fate) -> int:
        return sum(1 for m in self.messages if m.fate is fate)

    def summary(self) -> str:
        labels = Counter(
            "catalog example" if m.label.startswith("catalog:") else m.label for m in self.messages
        )
        return ", ".join(f"{n} {label}" for label, n in sorted(labels.items()))


def _rejected(
    topic_type: EventType, value: bytes | None, reason: RejectReason, label: str
) -> Upstream:
    return Upstream(topic_type, None, value, Fate.DEAD_LETTER, label, reason=reason)


def _variant(obj: dict[str, Any], event_type: EventType) -> bytes:
    """The same event re-serialised: other whitespace, key order, letter case, amount scale."""
    twin: dict[str, Any] = json.loads(json.dumps(obj))
    data = twin["data"]
    if event_type is EventType.TRADE_SHIPMENT:
        data["tonnes"] = f"{data['tonnes']}00"  # 1.5 -> "1.500", "2.5" -> "2.500"
        data["origin"] = data["origin"].lower()
        data["destination"] = data["destination"].swapcase()
        data["commodity"] = data["commodity"].upper()
    elif event_type is EventType.PROJECT_MILESTONE:
        data["sector"] = data["sector"].upper()
        amount = str(data["investment_usd"])
        data["investment_usd"] = amount + ("0" if "." in amount else ".000")
        data["name"] = f"  {data['name']}\t"
    reordered = dict(reversed(list(twin.items())))
    return _dumps(reordered, indent=2, separators=(",", " :  "))


def _entity_lane(
    factory: EventFactory, event_type: EventType, entity: int, rng: random.Random
) -> list[Upstream]:
    """Versions of one entity in order, with some re-deliveries and a reused id mixed in."""
    versions = rng.randint(1, 4)
    bodies = [factory.body(event_type, entity, v) for v in range(1, versions + 1)]
    lane = [
        accepted(event_type, _dumps(b), "valid" if i == 0 else "correction")
        for i, b in enumerate(bodies)
    ]
    roll = rng.random()
    original = rng.randrange(versions)
    first = lane[original]
    assert first.value is not None
    if roll < 0.08:
        lane.append(_same_fate(first, first.value, Fate.DUPLICATE, "duplicate: same bytes"))
    elif roll < 0.16:
        twin = _variant(bodies[original], event_type)
        lane.append(_same_fate(first, twin, Fate.DUPLICATE, "duplicate: re-serialised"))
    elif roll < 0.18:
        changed = dict(bodies[original], source="another-system")
        reused = Upstream(
            event_type,
            first.key,
            _dumps(changed),
            Fate.DEAD_LETTER,
            "reused event_id, other content",
            reason=RejectReason.EVENT_ID_REUSED,
            event_id=first.event_id,
        )
        lane.append(reused)
    return lane


def _same_fate(original: Upstream, value: bytes, fate: Fate, label: str) -> Upstream:
    return Upstream(
        original.topic_type, original.key, value, fate, label, event_id=original.event_id
    )


_TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([a-z.]+)"')


def _catalog_messages() -> list[Upstream]:
    """Every invalid example: on its ``sent_as`` topic, else on its own type's topic, else on all.

    Outside ``sent_as`` the catalog's reason must not depend on the topic, so an example whose
    body names a known type goes to that type's topic (elsewhere it would be a type mismatch).
    """
    messages: list[Upstream] = []
    for example in invalid_examples():
        label = f"catalog: {example.name}"
        if example.sent_as is not None:
            topics = [example.sent_as]
        else:
            found = _TYPE_FIELD.search(example.raw)
            known = {t.value: t for t in EventType}
            named = known.get(found.group(1).decode()) if found else None
            topics = [named] if named is not None else list(EventType)
        messages.extend(_rejected(t, example.raw, example.reason, label) for t in topics)
    return messages


def _oddities(factory: EventFactory, rng: random.Random) -> list[Upstream]:
    """Messages that are not events at all, oversized ones, and valid events on the wrong topic."""
    kinds = list(EventType)
    odd: list[Upstream] = []
    for n, event_type in enumerate(kinds):
        odd.append(
            _rejected(
                event_type,
                b"\x00garbage " + rng.randbytes(8).hex().encode(),
                RejectReason.NOT_JSON,
                "garbage text",
            )
        )
        odd.append(
            _rejected(
                event_type, b"\xff\xfe" + rng.randbytes(40), RejectReason.NOT_UTF8, "garbage binary"
            )
        )
        odd.append(_rejected(event_type, b"", RejectReason.NOT_JSON, "empty value"))
        tombstone = _rejected(event_type, None, RejectReason.TOMBSTONE, "null value (tombstone)")
        odd.append(replace(tombstone, key=b"tombstone-%d" % n))
        odd.append(
            _rejected(
                event_type,
                '{"event_id": "caf\u00e9"}'.encode("latin-1"),
                RejectReason.NOT_UTF8,
                "invalid UTF-8 (Latin-1)",
            )
        )
        # 'entity' numbers from 10**6 keep these ids apart from the lanes' ids
        body = factory.body(event_type, 10**6 + n, 1)
        padded = _padded(body, MAX_EVENT_BYTES)
        odd.append(accepted(event_type, padded, "exactly 64 KiB, valid"))
        over = _padded(factory.body(event_type, 10**6 + 10 + n, 1), MAX_EVENT_BYTES + 1)
        odd.append(_rejected(event_type, over, RejectReason.TOO_LARGE, "64 KiB + 1 byte"))
        wrong_topic = kinds[(n + 1) % 3]
        stray = _dumps(factory.body(event_type, 10**6 + 20 + n, 1))
        odd.append(
            _rejected(
                wrong_topic,
                stray,
                RejectReason.TYPE_MISMATCH,
                f"valid {event_type.value} on the {wrong_topic.value} topic",
            )
        )
    huge = _padded(factory.body(EventType.TRADE_SHIPMENT, 10**6 + 30, 1), 600 * 1024)
    odd.append(_rejected(EventType.TRADE_SHIPMENT, huge, RejectReason.TOO_LARGE, "600 KiB"))
    return odd


def _padded(obj: dict[str, Any], size: int) -> bytes:
    raw = _dumps(obj)
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


def mixed_stream(factory: EventFactory, *, entities_per_type: int, seed: int) -> MixedStream:
    """Valid events with corrections, re-deliveries, reused ids, every invalid example and
    assorted non-events, interleaved at random with each entity's own order kept."""
    rng = random.Random(seed)
    lanes: list[list[Upstream]] = [
        _entity_lane(factory, event_type, entity, rng)
        for entity in range(entities_per_type)
        for event_type in EventType
    ]
    lanes.extend([m] for m in _catalog_messages())
    lanes.extend([m] for m in _oddities(factory, rng))
    return MixedStream(_interleave(lanes, rng))


def _interleave(lanes: Sequence[list[Upstream]], rng: random.Random) -> list[Upstream]:
    pending = [list(lane) for lane in lanes if lane]
    merged: list[Upstream] = []
    while pending:
        index = rng.randrange(len(pending))
        merged.append(pending[index].pop(0))
        if not pending[index]:
            pending[index] = pending[-1]
            pending.pop()
    return merged


# ---------------------------------------------------------------------------------------------
# Publishing.


async def publish(settings: KafkaSettings, messages: Iterable[Upstream]) -> list[Published]:
    """Publish ``messages`` in order (acks=all) to their upstream topics under ``settings``.

    Returns where each one was stored. Same key, same partition, publish order kept: the
    producer has at most one request in flight per partition.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    try:
        sent = []
        for message in messages:
            topic = settings.topic_name(UPSTREAM_TOPIC_BY_TYPE[message.topic_type])
            future = await producer.send(topic, message.value, key=message.key)
            sent.append((message, topic, future))
        published = []
        for message, topic, future in sent:
            metadata = await future
            published.append(Published(message, topic, metadata.partition, metadata.offset))
        return published
    finally:
        await producer.stop()
