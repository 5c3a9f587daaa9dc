"""``roadmap-monitor publish`` against a real ingest that refuses: a 503 while ingest is still
starting is waited out (each event published once), a wrong token stops with a message that
names the variable, an unreachable broker is named as the broker, and a publisher's rate and
burst are kept to (413 split, 429 waited out)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from pydantic import SecretStr

from contracts.events import EventType
from contracts.publishers import new_token, token_sha256
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.commands.publish import EXIT_OK, EXIT_UNREACHABLE, run_publish
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.runtime import serve
from services.common.topics import ensure_topics
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.kafka import RealBroker, read_until_quiet, unique_name
from tests.support.services import running_app
from tests.support.streams import EventFactory


def _file(tmp_path: Path, run: str, count: int) -> Path:
    factory = EventFactory(run)
    lines = [json.dumps(factory.body(EventType.TRADE_SHIPMENT, n, 1)) for n in range(count)]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


def _publish(
    path: Path,
    url: str,
    kafka: KafkaSettings,
    *,
    token: str | None = None,
    via: str = "http",
    wait_s: float = 60.0,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_publish(
        path, via=via, ingest_url=url, token=token, kafka=kafka, wait_s=wait_s, out=out, err=err
    )
    return code, out.getvalue(), err.getvalue()


async def test_a_503_while_ingest_recalls_is_waited_out_and_nothing_is_sent_twice(
    broker: RealBroker, tmp_path: Path
) -> None:
    """Ingest cannot recall its dedup window until the canonical topic exists, and answers 503
    (with Retry-After) until then; the topic appears 4 s into the publish."""
    run = unique_name("pub503")
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.", create_topics=False
    )
    await ensure_topics(kafka, [*UPSTREAM_TOPIC_BY_TYPE.values(), DEAD_LETTERS])
    settings = IngestSettings(http_port=free_port(), kafka=kafka, group_id=f"{run}-ingest")
    path = _file(tmp_path, run, 1_200)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(create_app(settings), stop))
    try:
        url = f"http://127.0.0.1:{settings.http_port}"
        publishing = asyncio.create_task(asyncio.to_thread(_publish, path, url, kafka))
        await asyncio.sleep(4)
        assert not publishing.done()
        await ensure_topics(kafka, [CANONICAL_EVENTS])
        code, out, err = await publishing
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert code == EXIT_OK, err
    assert "1,200 accepted, 0 exact duplicates, 0 rejected" in out
    records = await read_until_quiet(kafka, [kafka.topic_name(CANONICAL_EVENTS)], quiet_s=1)
    ids = [json.loads(r.value)["event_id"] for r in records]
    assert len(ids) == 1_200 == len(set(ids))


async def test_a_wrong_token_stops_at_once_and_names_the_variable(
    broker: RealBroker, tmp_path: Path
) -> None:
    run = unique_name("pub401")
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.")
    settings = IngestSettings(
        http_port=free_port(),
        kafka=kafka,
        group_id=f"{run}-ingest",
        api_token=SecretStr("the-right-token"),
    )
    path = _file(tmp_path, run, 10)
    async with running_app(create_app(settings)) as url:
        code, out, err = await asyncio.to_thread(_publish, path, url, kafka, token="wrong")
        good = await asyncio.to_thread(_publish, path, url, kafka, token="the-right-token")
    assert code == EXIT_UNREACHABLE
    assert "refused the token (401" in err
    assert "set INGEST_API_TOKEN to the token ingest was started with" in err
    assert "nothing from line 1 on was sent" in err
    assert "0 accepted" in out
    assert "does not answer" not in err
    assert good[0] == EXIT_OK, good[2]


def test_via_kafka_an_unreachable_broker_is_named(tmp_path: Path) -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    code, _, err = _publish(_file(tmp_path, "x", 1), "http://unused", kafka, via="kafka")
    assert code == EXIT_UNREACHABLE
    assert (
        f"the broker at 127.0.0.1:{port}" in err
        or f"broker does not answer at 127.0.0.1:{port}" in err
    )
    assert "ingest" not in err


async def test_publish_keeps_to_the_publishers_rate_and_burst(
    broker: RealBroker, tmp_path: Path
) -> None:
    """Ingest with a publishers file: customs KZ may send 10 events at once, 20 a second. Its
    40 events in one file: publish's 500-event batch is refused 413 (over the burst) and split
    until it fits, then waits out the 429s; every event is published once."""
    run = unique_name("pub429")
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.")
    token = new_token()
    publishers = tmp_path / "publishers.yaml"
    publishers.write_text(
        "publishers:\n"
        "  customs-kz:\n"
        f"    token_sha256: {token_sha256(token)}\n"
        "    types: [trade.shipment]\n"
        "    sources: [kz-customs]\n"
        "    rate: {events_per_second: 20, burst: 10}\n"
    )
    factory = EventFactory(run)
    lines = [
        json.dumps({**factory.body(EventType.TRADE_SHIPMENT, n, 1), "source": "kz-customs"})
        for n in range(40)
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    settings = IngestSettings(
        http_port=free_port(), kafka=kafka, group_id=f"{run}-ingest", publishers_file=publishers
    )
    async with running_app(create_app(settings)) as url:
        code, out, err = await asyncio.to_thread(_publish, path, url, kafka, token=token)
    assert code == EXIT_OK, err
    assert "40 accepted, 0 exact duplicates, 0 rejected" in out
    assert "slowed to the publisher's rate:" in out
    records = await read_until_quiet(kafka, [kafka.topic_name(CANONICAL_EVENTS)], quiet_s=1)
    ids = [json.loads(r.value)["event_id"] for r in records]
    assert len(ids) == 40 == len(set(ids))
    assert {dict(r.headers)["x-roadmap-publisher"] for r in records} == {b"customs-kz"}
