"""``POST /v1/events`` on a running ingest instance against a real broker.

What the response says must be what lands on the topics: accepted ids on the canonical topic,
rejected elements on the DLQ with their original bytes, nothing at all for a refused request.
Every test that reads topics serves its own instance, with its own topic prefix and consumer
group; the few that only measure changes share one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from contracts.codec import Accepted, RejectReason, decode_event, encode_event
from contracts.examples import InvalidExample, invalid_examples, valid_examples
from contracts.keys import AnyEvent, canonical_key
from contracts.publishers import new_token, token_sha256
from contracts.records import (
    DLQ_HEADER_PUBLISHER,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE_TOPIC,
    DlqRecord,
)
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.logs import JsonFormatter
from services.common.runtime import serve
from services.common.topics import ensure_topics
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.kafka import RealBroker, read_topic, unique_name
from tests.support.services import running_app, wait_ready

HTTP_SOURCE = "http:/v1/events"
REJECTED_AT = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
JSON = {"content-type": "application/json"}
MAX_BODY = 1024 * 1024
ODD_SEPARATOR = b" \r\n\t,\n\t  "
"""Whitespace that only survives if elements are cut out of the body, not re-serialised."""


@dataclass(frozen=True, slots=True)
class Ingest:
    """A served ingest instance: an HTTP client on it and where its outputs land."""

    client: httpx.AsyncClient
    bootstrap_servers: str
    canonical_topic: str
    dlq_topic: str

    async def post(self, body: bytes, **headers: str) -> httpx.Response:
        return await self.client.post("/v1/events", content=body, headers={**JSON, **headers})

    async def canonical(self) -> list[ConsumerRecord[bytes, bytes]]:
        """Everything on the canonical topic so far (202 comes only after the broker has it)."""
        return await read_topic(self.bootstrap_servers, self.canonical_topic, timeout=10)

    async def dead_letters(self) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_topic(self.bootstrap_servers, self.dlq_topic, timeout=10)

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples on /metrics whose labels include ``labels``."""
        text = (await self.client.get("/metrics")).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


@contextlib.asynccontextmanager
async def serve_ingest(
    broker: RealBroker, *, api_token: str | None = None, publishers_file: Path | None = None
) -> AsyncIterator[Ingest]:
    """An ingest instance on fresh topics, with a fixed clock, until the block ends."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("t") + "."
    )
    settings = IngestSettings(
        http_port=free_port(),
        kafka=kafka,
        group_id=unique_name("ingest"),
        api_token=SecretStr(api_token) if api_token is not None else None,
        publishers_file=publishers_file,
    )
    app = create_app(settings, clock=lambda: REJECTED_AT)
    async with (
        running_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        yield Ingest(
            client,
            broker.bootstrap_servers,
            kafka.topic_name(CANONICAL_EVENTS),
            kafka.topic_name(DEAD_LETTERS),
        )


@pytest.fixture
async def ingest(broker: RealBroker) -> AsyncIterator[Ingest]:
    async with serve_ingest(broker) as running:
        yield running


def decoded(raw: bytes) -> AnyEvent:
    result = decode_event(raw)
    assert isinstance(result, Accepted), result
    return result.event


def valid_example(name: str) -> bytes:
    """The valid example ``<type>/<file>``, without its trailing newline."""
    return next(e.raw for e in valid_examples() if e.name == name).strip()


def json_array(elements: Sequence[bytes], separator: bytes = b",") -> bytes:
    return b"[" + separator.join(elements) + b"]"


def odd_whitespace(element: bytes) -> bytes:
    """``element`` with unusual (but legal) whitespace just inside its brackets, if it has any."""
    element = element.strip()
    if element[:1] in (b"{", b"[") and len(element) > 2:
        return element[:1] + b"\r\n \t" + element[1:-1] + b" \t\n" + element[-1:]
    return element


def shipments(count: int, prefix: str) -> list[bytes]:
    """``count`` valid shipment events, each with its own event_id and shipment_id."""
    template = json.loads(valid_example("trade.shipment/road_flour_kz_by.json"))
    events = []
    for i in range(count):
        template["event_id"] = f"{prefix}-{i:04d}"
        template["data"]["shipment_id"] = f"{prefix.upper()}-{i:04d}"
        events.append(json.dumps(template, separators=(",", ":")).encode())
    return events


def ids(events: Sequence[bytes]) -> list[str]:
    return [decoded(raw).event_id for raw in events]


def array_element_examples() -> list[InvalidExample]:
    """Catalog examples that can be one element of an HTTP array.

    Left out: Latin-1 bytes and a truncated element make the whole array unparseable (400, not a
    per-element rejection), and a type mismatch needs a topic type that HTTP does not have.
    """
    unsplittable = {RejectReason.NOT_UTF8, RejectReason.TYPE_MISMATCH}
    return [
        example
        for example in invalid_examples()
        if example.reason not in unsplittable and example.name != "not_json_truncated.json"
    ]


def headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, bytes]:
    return dict(record.headers)


async def test_single_event_is_published_once_in_canonical_form(ingest: Ingest) -> None:
    """One event as the body: 202 naming its id; the canonical topic holds exactly that event,
    keyed by its natural key and normalised (string amounts as sent, offset timestamp in UTC)."""
    raw = valid_example("trade.shipment/rail_tractors_by_kz_string_amounts.json")
    event = decoded(raw)
    assert encode_event(event) != raw  # so the comparison below shows normalisation happened

    response = await ingest.post(raw)

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": [event.event_id], "duplicates": [], "rejected": []}
    records = await ingest.canonical()
    assert [(r.key, r.value) for r in records] == [(canonical_key(event), encode_event(event))]
    assert await ingest.dead_letters() == []


async def test_array_of_every_valid_example_is_accepted(ingest: Ingest) -> None:
    """A JSON array of all valid examples: 202 with every id in request order; each is on the
    canonical topic exactly once."""
    raws = [example.raw.strip() for example in valid_examples()]
    events = [decoded(raw) for raw in raws]

    response = await ingest.post(json_array(raws))

    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": [event.event_id for event in events],
        "duplicates": [],
        "rejected": [],
    }
    records = await ingest.canonical()
    assert len(records) == len(events) == 9
    assert sorted((r.key, r.value) for r in records) == sorted(
        (canonical_key(event), encode_event(event)) for event in events
    )


async def test_mixed_array_accepts_the_valid_and_dead_letters_the_rest(ingest: Ingest) -> None:
    """Valid and invalid events in one array: 422 listing each rejected index with the reason the
    catalog gives (and the field, for schema errors); the valid ones are still accepted and
    published; each invalid one is on the DLQ with reason and source headers, and its record keeps
    the element's bytes exactly as sent (elements are cut from the body, not re-serialised)."""
    valid = [example.raw.strip() for example in valid_examples()[:3]]
    invalid = array_element_examples()
    elements: list[bytes] = []
    expected: dict[int, InvalidExample] = {}
    for i, example in enumerate(invalid):
        if i < len(valid):
            elements.append(odd_whitespace(valid[i]))
        expected[len(elements)] = example
        elements.append(odd_whitespace(example.raw))
    body = b" \n[\t" + ODD_SEPARATOR.join(elements) + b"\r\n]\n "

    response = await ingest.post(body)

    assert response.status_code == 422, response.text
    summary = response.json()
    assert summary["accepted"] == ids(valid)
    assert summary["duplicates"] == []
    rejected = {item["index"]: item for item in summary["rejected"]}
    assert {i: item["reason"] for i, item in rejected.items()} == {
        i: example.reason.value for i, example in expected.items()
    }
    for i, example in expected.items():
        assert rejected[i]["detail"], example.name
        if example.field is not None:
            assert example.field in {error["loc"] for error in rejected[i]["errors"]}, example.name

    canonical = await ingest.canonical()
    assert sorted(r.value for r in canonical) == sorted(encode_event(decoded(v)) for v in valid)

    dead = await ingest.dead_letters()
    assert len(dead) == len(expected)
    reason_by_bytes = {elements[i]: example.reason for i, example in expected.items()}
    originals = []
    for record in dead:
        dlq = DlqRecord.model_validate_json(record.value)
        original = base64.b64decode(dlq.original_base64)
        originals.append(original)
        assert dlq.reason is reason_by_bytes[original]
        assert headers_of(record) == {
            DLQ_HEADER_REASON: dlq.reason.value.encode(),
            DLQ_HEADER_SOURCE_TOPIC: HTTP_SOURCE.encode(),
            DLQ_HEADER_PUBLISHER: b"anonymous",  # no publishers file
        }
        assert record.key is None  # an HTTP element has no key of its own
        assert (dlq.source_topic, dlq.source_partition, dlq.source_offset) == (
            HTTP_SOURCE,
            None,
            None,
        )
        assert (dlq.original_size, dlq.original_truncated) == (len(original), False)
        assert dlq.rejected_at == REJECTED_AT
    assert sorted(originals) == sorted(reason_by_bytes)


async def test_resent_event_is_a_duplicate_and_a_reused_id_is_rejected(ingest: Ingest) -> None:
    """The same event again (also re-formatted, or twice in one array) is reported as a duplicate
    and not published again; the same event_id with different content is rejected as
    event_id_reused and dead-lettered."""
    raw = valid_example("trade.shipment/road_flour_kz_by.json")
    event = decoded(raw)
    other = valid_example("hiring.report/monthly_hiring.json")
    other_id = decoded(other).event_id

    first = await ingest.post(raw)
    again = await ingest.post(raw)
    reformatted = await ingest.post(odd_whitespace(raw))
    twice_in_one = await ingest.post(json_array([other, other]))

    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == [event.event_id]
    for response in (again, reformatted):
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": [], "duplicates": [event.event_id], "rejected": []}
    assert twice_in_one.status_code == 202, twice_in_one.text
    assert twice_in_one.json() == {"accepted": [other_id], "duplicates": [other_id], "rejected": []}
    assert sorted(r.value for r in await ingest.canonical()) == sorted(
        [encode_event(event), encode_event(decoded(other))]
    )

    changed = raw.replace(b'"tonnes": 22.5', b'"tonnes": 23.5')
    assert changed != raw
    reused = await ingest.post(changed)

    assert reused.status_code == 422, reused.text
    body = reused.json()
    assert (body["accepted"], body["duplicates"]) == ([], [])
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [(0, "event_id_reused")]
    assert len(await ingest.canonical()) == 2
    [dead] = await ingest.dead_letters()
    assert base64.b64decode(DlqRecord.model_validate_json(dead.value).original_base64) == changed


async def test_bearer_token_guards_the_endpoint_and_never_leaks(
    broker: RealBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """With INGEST_API_TOKEN set, a missing or wrong bearer token gets 401 with WWW-Authenticate
    and publishes nothing; the right token gets 202. The token appears neither in any log record
    (as the service would format it) nor on /metrics."""
    caplog.set_level(logging.DEBUG)
    token = f"tok-{unique_name('secret')}"
    raw = valid_example("project.milestone/cancelled_project.json")
    invalid = next(e.raw for e in invalid_examples() if e.name == "unknown_type.json")

    async with serve_ingest(broker, api_token=token) as ingest:
        refused = [
            await ingest.post(raw),
            await ingest.post(invalid),  # refused before it could be dead-lettered
            await ingest.post(raw, authorization="Bearer wrong-token"),
            await ingest.post(raw, authorization=token),  # no scheme
            await ingest.post(raw, authorization=f"Bearer {token}x"),
            await ingest.post(raw, authorization=f"Basic {token}"),
        ]
        for response in refused:
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert await ingest.canonical() == []
        assert await ingest.dead_letters() == []

        allowed = await ingest.post(raw, authorization=f"Bearer {token}")

        assert allowed.status_code == 202, allowed.text
        assert allowed.json()["accepted"] == [decoded(raw).event_id]
        assert len(await ingest.canonical()) == 1
        assert await ingest.metric("roadmap_ingest_http_requests_total", code="401") == len(refused)
        assert token not in (await ingest.client.get("/metrics")).text

    formatter = JsonFormatter("ingest")
    assert caplog.records, "the service logged nothing, so the check below proves nothing"
    leaking = [r.getMessage() for r in caplog.records if token in formatter.format(r)]
    assert leaking == []


async def test_size_and_count_limits(ingest: Ingest) -> None:
    """A body over 1 MiB gets 413, whether its length is declared or it is streamed in chunks, and
    1,001 events get 413: nothing is published. A body of exactly 1 MiB and exactly 1,000 events
    are accepted. An element over 64 KiB is rejected as too_large, alone."""
    few = shipments(3, "pad")
    padding = MAX_BODY - len(json_array(few))
    exactly_max = json_array([few[0], b" " * padding + few[1], few[2]])
    assert len(exactly_max) == MAX_BODY
    over_max = exactly_max[:-1] + b" ]"

    async def chunked(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    declared = await ingest.post(over_max)
    streamed = await ingest.client.post("/v1/events", content=chunked(over_max), headers=JSON)
    too_many = await ingest.post(json_array(shipments(1001, "many")))

    for response in (declared, streamed, too_many):
        assert response.status_code == 413, response.text
        assert "error" in response.json()
    assert "transfer-encoding" in streamed.request.headers  # the length was not declared
    assert await ingest.canonical() == []
    assert await ingest.dead_letters() == []

    at_max = await ingest.post(exactly_max)
    thousand = shipments(1000, "bulk")
    at_count = await ingest.post(json_array(thousand))

    assert at_max.status_code == 202, at_max.text
    assert at_max.json()["accepted"] == ids(few)
    assert at_count.status_code == 202, at_count.text
    assert at_count.json()["accepted"] == ids(thousand)
    assert len(await ingest.canonical()) == 1003

    too_large = next(e for e in invalid_examples() if e.reason is RejectReason.TOO_LARGE).raw
    assert len(too_large.strip()) > 64 * 1024
    around = shipments(2, "around")
    response = await ingest.post(json_array([around[0], too_large.strip(), around[1]]))

    assert response.status_code == 422, response.text
    assert response.json()["accepted"] == ids(around)
    assert [(r["index"], r["reason"]) for r in response.json()["rejected"]] == [(1, "too_large")]


@pytest_asyncio.fixture(scope="class", loop_scope="class")
async def shared_ingest(broker: RealBroker) -> AsyncIterator[Ingest]:
    async with serve_ingest(broker) as running:
        yield running


@pytest.mark.asyncio(loop_scope="class")
class TestOneInstance:
    """Checks that need no topics of their own share one instance (a start takes seconds), so
    each measures what it changed rather than absolute counts."""

    async def test_unusable_bodies_are_refused_whole(self, shared_ingest: Ingest) -> None:
        """An array that cannot be parsed, or holds no events, gets 400 (reason not_json); a
        non-JSON media type gets 415. Nothing is published for either; a JSON media type with
        a charset parameter is fine."""
        ingest = shared_ingest
        published = len(await ingest.canonical()), len(await ingest.dead_letters())
        unusable = (b"[", b"[]", b" [ \n ] ", b'[{"a":1} {"b":2}]', b"[1,]", b"[1] 2", b"[\xe9]")
        for body in unusable:
            response = await ingest.post(body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["reason"] == "not_json"
            assert response.json()["error"]

        raw = valid_example("hiring.report/correction.json")
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            response = await ingest.client.post(
                "/v1/events", content=raw, headers={"content-type": content_type}
            )
            assert response.status_code == 415, (content_type, response.text)

        assert (len(await ingest.canonical()), len(await ingest.dead_letters())) == published
        charset = await ingest.client.post(
            "/v1/events", content=raw, headers={"content-type": "application/json; charset=utf-8"}
        )
        assert charset.status_code == 202, charset.text

    async def test_metrics_count_every_element_of_a_request(self, shared_ingest: Ingest) -> None:
        """After a request with accepted, duplicate and rejected elements, events received from
        http (summed over types) grow by the three added together, each outcome's counter by what
        the response says, nothing is counted for kafka, and the 422 is counted by status code."""
        ingest = shared_ingest
        valid = shipments(1, unique_name("metrics"))[0]
        schema = next(e for e in invalid_examples() if e.reason is RejectReason.SCHEMA).raw
        elements = [valid, valid, schema.strip(), b'"not an event"', b"NaN"]
        counters = {
            "received": ("roadmap_ingest_events_received_total", {"source": "http"}),
            "accepted": ("roadmap_ingest_events_accepted_total", {"source": "http"}),
            "duplicates": ("roadmap_ingest_events_duplicate_total", {"source": "http"}),
            "rejected": ("roadmap_ingest_events_rejected_total", {"source": "http"}),
            "dlq": ("roadmap_ingest_dlq_records_total", {}),
            "kafka": ("roadmap_ingest_events_received_total", {"source": "kafka"}),
            "422": ("roadmap_ingest_http_requests_total", {"code": "422"}),
        }
        before = {
            key: await ingest.metric(name, **labels) for key, (name, labels) in counters.items()
        }

        response = await ingest.post(json_array(elements))

        assert response.status_code == 422, response.text
        summary = response.json()
        counts = {key: len(summary[key]) for key in ("accepted", "duplicates", "rejected")}
        assert counts == {"accepted": 1, "duplicates": 1, "rejected": 3}
        after = {
            key: await ingest.metric(name, **labels) for key, (name, labels) in counters.items()
        }
        grown = {key: after[key] - before[key] for key in counters}
        assert grown == {
            "received": sum(counts.values()),
            **counts,
            "dlq": counts["rejected"],
            "kafka": 0,
            "422": 1,
        }

    async def test_concurrent_posts_of_one_event_id_publish_it_once(
        self, shared_ingest: Ingest
    ) -> None:
        """Two requests racing with the same event_id and different content: one is accepted,
        the other rejected as event_id_reused; the canonical topic gets one version of it."""
        ingest = shared_ingest
        published = len(await ingest.canonical())
        rounds = 5
        for n in range(rounds):
            [first] = shipments(1, unique_name(f"race{n}"))
            second = first.replace(b'"tonnes":22.5', b'"tonnes":23.5')
            assert second != first
            responses = await asyncio.gather(ingest.post(first), ingest.post(second))
            outcomes = sorted(
                (len(r.json()["accepted"]), [x["reason"] for x in r.json()["rejected"]])
                for r in responses
            )
            assert outcomes == [(0, ["event_id_reused"]), (1, [])], (n, outcomes)
        assert len(await ingest.canonical()) == published + rounds


async def test_requests_are_refused_until_the_dedup_window_is_recalled(broker: RealBroker) -> None:
    """While ingest cannot recall its dedup window (here: the canonical topic does not exist
    yet and ingest does not create topics), POST /v1/events answers 503 and publishes nothing,
    not even a DLQ record: an event admitted against an incomplete window could be a re-send
    published twice. Once the topic exists the recall succeeds on its own, /readyz turns 200,
    and the same request is accepted."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=unique_name("t") + ".",
        create_topics=False,
    )
    others = [*UPSTREAM_TOPIC_BY_TYPE.values(), DEAD_LETTERS]
    await ensure_topics(kafka, others)
    settings = IngestSettings(http_port=free_port(), kafka=kafka, group_id=unique_name("ingest"))
    body = json_array(
        [b'{"not": "an event"}', valid_example("trade.shipment/road_flour_kz_by.json")]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(create_app(settings), stop))
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30
        ) as client:
            checks = await _until_answered(client)
            assert checks["dedup"] == {
                "ok": False,
                "detail": "recalling accepted ids from the canonical topic",
            }
            refused = await client.post("/v1/events", content=body, headers=JSON)
            await asyncio.sleep(1.0)  # what a wrongly accepted request would have published
            dlq = await read_topic(broker.bootstrap_servers, kafka.topic_name(DEAD_LETTERS))

            await ensure_topics(kafka, [CANONICAL_EVENTS])
            await wait_ready(str(client.base_url), timeout=60)
            accepted = await client.post("/v1/events", content=body, headers=JSON)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    print(
        f"\nbefore the recall: {refused.status_code} {refused.json()}, {len(dlq)} DLQ records; "
        f"after it: {accepted.status_code}"
    )
    assert refused.status_code == 503
    assert "the producer is not started" in refused.json()["error"]
    assert dlq == []
    assert accepted.status_code == 422, accepted.text
    assert accepted.json()["accepted"] == ids(
        [valid_example("trade.shipment/road_flour_kz_by.json")]
    )
    assert [item["index"] for item in accepted.json()["rejected"]] == [0]


async def _until_answered(client: httpx.AsyncClient, timeout: float = 30) -> dict[str, Any]:
    """/readyz's checks once the HTTP server answers (it comes up before Kafka is connected)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            checks: dict[str, Any] = (await client.get("/readyz")).json()["checks"]
            return checks
        assert asyncio.get_running_loop().time() < deadline, "ingest's HTTP never answered"
        await asyncio.sleep(0.1)


def _metrics_by_publisher(text: str, name: str) -> dict[tuple[str, str], float]:
    """``name``'s samples summed by (publisher, reason or '')."""
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = (sample.labels["publisher"], sample.labels.get("reason", ""))
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


async def test_each_publisher_may_publish_only_its_own_events_at_its_own_rate(
    broker: RealBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a publishers file: the project office's token posting a shipment gets 403 (the event
    in the DLQ as forbidden, with the rule), customs KZ posting its own gets 202 (the canonical
    record says who sent it), an unknown token 401, and a burst over customs' rate 429 with
    Retry-After, nothing published. Metrics count by publisher. No token, and no hash of one,
    is in any log record or on /metrics."""
    caplog.set_level(logging.DEBUG)
    customs_token, office_token = new_token(), new_token()
    shipment = json.loads(valid_example("trade.shipment/road_flour_kz_by.json"))
    assert shipment["source"] == "kz-customs"
    milestone = valid_example("project.milestone/cancelled_project.json")
    file = tmp_path / "publishers.yaml"
    file.write_text(
        "publishers:\n"
        "  customs-kz:\n"
        f"    token_sha256: {token_sha256(customs_token)}\n"
        "    types: [trade.shipment]\n"
        "    sources: [kz-customs]\n"
        "    rate: {events_per_second: 0.5, burst: 3}\n"
        "  project-office:\n"
        f"    token_sha256: {token_sha256(office_token)}\n"
        "    types: [project.milestone]\n"
        "    sources: [project-office]\n"
        "  employment-agency:\n"
        "    token_sha256: null\n"
        "    types: [hiring.report]\n"
        "    sources: [employment-agency]\n",
        encoding="utf-8",
    )
    as_customs = {"authorization": f"Bearer {customs_token}"}
    as_office = {"authorization": f"Bearer {office_token}"}
    raw_shipment = json.dumps(shipment).encode()

    async with serve_ingest(broker, publishers_file=file) as ingest:
        forbidden = await ingest.post(json_array([milestone, raw_shipment]), **as_office)
        own = await ingest.post(raw_shipment, **as_customs)
        unknown = await ingest.post(raw_shipment, authorization=f"Bearer {new_token()}")
        hash_as_token = await ingest.post(
            raw_shipment, authorization=f"Bearer {token_sha256(customs_token)}"
        )
        two_more = await ingest.post(json_array(shipments(2, "kz-burst")), **as_customs)
        over_rate = await ingest.post(json_array(shipments(2, "kz-over")), **as_customs)
        too_many = await ingest.post(json_array(shipments(4, "kz-big")), **as_customs)
        canonical = await ingest.canonical()
        dead = await ingest.dead_letters()
        metrics_text = (await ingest.client.get("/metrics")).text

    assert forbidden.status_code == 403, forbidden.text
    answer = forbidden.json()
    assert answer["accepted"] == [decoded(milestone).event_id]
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(1, "forbidden")]
    assert answer["rejected"][0]["detail"] == (
        "publisher 'project-office' may publish project.milestone, not trade.shipment"
    )
    assert own.status_code == 202, own.text
    assert own.json()["accepted"] == [shipment["event_id"]]  # not remembered when forbidden
    for refused in (unknown, hash_as_token):
        assert refused.status_code == 401, refused.text
    assert two_more.status_code == 202, two_more.text
    assert over_rate.status_code == 429, over_rate.text
    assert int(over_rate.headers["retry-after"]) >= 1
    assert "over its rate" in over_rate.json()["error"]
    assert too_many.status_code == 413, too_many.text
    assert "at most 3 at once" in too_many.json()["error"]

    publishers = {
        json.loads(r.value)["event_id"]: headers_of(r)["x-roadmap-publisher"] for r in canonical
    }
    assert publishers == {
        decoded(milestone).event_id: b"project-office",
        shipment["event_id"]: b"customs-kz",
        **dict.fromkeys(ids(shipments(2, "kz-burst")), b"customs-kz"),
    }
    (refusal,) = dead
    assert headers_of(refusal)[DLQ_HEADER_REASON] == b"forbidden"
    assert headers_of(refusal)["x-roadmap-publisher"] == b"project-office"
    assert DlqRecord.model_validate_json(refusal.value).original_base64 == (
        base64.b64encode(raw_shipment).decode()
    )

    accepted = _metrics_by_publisher(metrics_text, "roadmap_ingest_events_accepted_total")
    assert accepted[("customs-kz", "")] == 3
    assert accepted[("project-office", "")] == 1
    assert accepted[("employment-agency", "")] == 0
    assert ("anonymous", "") not in accepted
    rejected = _metrics_by_publisher(metrics_text, "roadmap_ingest_events_rejected_total")
    assert rejected[("project-office", "forbidden")] == 1

    formatter = JsonFormatter("ingest")
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "employment-agency" in logged  # the start-up warning: so the logs were captured
    for secret in (customs_token, office_token):
        for form in (secret, token_sha256(secret)):
            assert form not in logged
            assert form not in metrics_text
