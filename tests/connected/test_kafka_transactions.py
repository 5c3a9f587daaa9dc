"""Upstream transactions on Apache Kafka: ingest reads only what was committed, a transaction
left open is named as the reason a partition is held, and the markers that close transactions
never look like records waiting.

A librdkafka transactional producer commits some transactions and aborts others on one upstream
partition while a producer without transactions writes between them and inside them, so
committed, aborted and plain records interleave offset by offset. What breaks it:
- ingest reading ``read_uncommitted`` (``KAFKA_ISOLATION_LEVEL``): aborted events become
  canonical, are counted, and the aborted invalid messages are dead-lettered;
- a watchdog that ignores the last stable offset: the held partition's stall says
  "last error: none seen" instead of naming the open transaction and its offsets;
- lag taken against the committed offset alone: after the last transaction's commit marker
  (an offset with no record to read) the partition stays one record "behind" for ever, and the
  alerts service's group watch calls ingest stalled.

The open transaction is found and aborted as the runbook says, with Kafka's own
``kafka-transactions`` (``list``, ``describe-producers``, ``abort``) from the jars: its start
offset must be the last stable offset the watchdog named.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import confluent_kafka
import httpx

from contracts.events import EventType
from contracts.records import DlqRecord
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, TOPICS, UPSTREAM_TOPIC_BY_TYPE
from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.common.apache_kafka import tool_command
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from tests.support.alerts_stack import write_alerts_file
from tests.support.kafka import read_until_quiet, unique_name
from tests.support.processes import metric_samples, metric_total, scrape
from tests.support.services import running_app
from tests.support.streams import EventFactory
from tests.support.waiting import until

STALL_AFTER = 2.0
PARTITION = 0
TRANSACTIONS = 8
PER_TRANSACTION = 15
INVALID = b'{"event_id": "not an event"'
BATCH = 20
TRANSACTION_TIMEOUT_MS = 120_000
"""Longer than the test: the coordinator must not abort the open transaction by itself."""


@dataclass
class Ledger:
    """What was written upstream, by fate: the event ids that must be canonical, those that must
    never be, and the invalid messages that must (committed) or must not (aborted) be DLQ'd."""

    committed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    committed_invalid: list[bytes] = field(default_factory=list)
    aborted_invalid: list[bytes] = field(default_factory=list)


class Upstream:
    """A transactional and a plain librdkafka producer on one upstream partition."""

    def __init__(self, kafka: KafkaSettings, run: str) -> None:
        self.topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[EventType.TRADE_SHIPMENT])
        self.factory = EventFactory(run)
        self.ledger = Ledger()
        self.offsets: list[int] = []
        self._entity = 0
        self.transactional_id = f"{run}-tx"
        self._base = {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0}
        self.transactional = self._transactional()
        self.plain = confluent_kafka.Producer(self._base)

    def _transactional(self) -> confluent_kafka.Producer:
        return confluent_kafka.Producer(
            {
                **self._base,
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            }
        )

    def _send(self, producer: confluent_kafka.Producer, values: Sequence[bytes]) -> None:
        def delivered(error: Any, message: Any) -> None:
            assert error is None, error
            self.offsets.append(message.offset())

        for value in values:
            producer.produce(self.topic, value, partition=PARTITION, on_delivery=delivered)
        assert producer.flush(30) == 0

    def events(self, count: int) -> tuple[list[str], list[bytes]]:
        ids, values = [], []
        for _ in range(count):
            upstream = self.factory.event(EventType.TRADE_SHIPMENT, self._entity, 1)
            self._entity += 1
            assert upstream.event_id is not None
            assert upstream.value is not None
            ids.append(upstream.event_id)
            values.append(upstream.value)
        return ids, values

    def plain_events(self, count: int) -> None:
        ids, values = self.events(count)
        self._send(self.plain, values)
        self.ledger.committed += ids

    def interleaved_transactions(self) -> None:
        """Commit the even transactions, abort the odd ones; plain records go between
        transactions and, flushed, inside them, so the log mixes all three."""
        self.transactional.init_transactions(30)
        for number in range(TRANSACTIONS):
            commit = number % 2 == 0
            invalid = INVALID + f"{number}".encode()
            ids, values = self.events(PER_TRANSACTION)
            self.transactional.begin_transaction()
            self._send(self.transactional, values[:5])
            self.plain_events(2)  # inside the open transaction
            self._send(self.transactional, [*values[5:], invalid])
            if commit:
                self.transactional.commit_transaction(30)
                self.ledger.committed += ids
                self.ledger.committed_invalid.append(invalid)
            else:
                self.transactional.abort_transaction(30)
                self.ledger.aborted += ids
                self.ledger.aborted_invalid.append(invalid)
            self.plain_events(3)  # between transactions

    def open_transaction(self, count: int) -> list[str]:
        """Begin a transaction, write ``count`` events in it, and leave it open."""
        ids, values = self.events(count)
        self.transactional.begin_transaction()
        self._send(self.transactional, values)
        return ids

    def restart(self) -> None:
        """A new transactional producer with the same transactional id takes over (as a
        restarted upstream system's does): it fences the old one."""
        self.transactional = self._transactional()
        self.transactional.init_transactions(30)

    def last_transaction(self, count: int) -> None:
        """A committed transaction of ``count`` events, nothing after it: the log ends on its
        commit marker."""
        ids = self.open_transaction(count)
        self.transactional.commit_transaction(30)
        self.ledger.committed += ids


async def kafka_transactions(kafka: KafkaSettings, *args: str) -> list[dict[str, str]]:
    """Run ``kafka-transactions`` (``TransactionsCommand`` from the jars); its table's rows."""
    command = tool_command(
        "org.apache.kafka.tools.TransactionsCommand",
        "--bootstrap-server",
        kafka.bootstrap_servers,
        *args,
    )
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kafka-transactions {' '.join(args)}: {done.stdout}{done.stderr}"
    lines = [line.split("\t") for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        return []
    header = [name.strip() for name in lines[0]]
    return [dict(zip(header, (cell.strip() for cell in row), strict=False)) for row in lines[1:]]


async def _readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{base_url}/readyz")
        return response.status_code, response.json()


async def _stalled_alerts(base_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        listed: list[dict[str, Any]] = (await client.get(f"{base_url}/v1/alerts")).json()["alerts"]
    return [alert for alert in listed if alert["alertname"] == "RoadmapPipelineStalled"]


async def _gauge(base_url: str, name: str, topic: str) -> float:
    samples = metric_samples(await scrape(base_url), name)
    return sum(
        value
        for labels, value in samples.items()
        if ("topic", topic) in labels and ("partition", str(PARTITION)) in labels
    )


def _event_ids(records: Sequence[Any]) -> list[str]:
    return [json.loads(record.value)["event_id"] for record in records]


def _dlq_originals(records: Sequence[Any]) -> list[bytes]:
    return [
        base64.b64decode(DlqRecord.model_validate_json(record.value).original_base64)
        for record in records
    ]


async def _eventually(what: str, probe: Callable[[], Any], ok: Callable[[Any], bool]) -> Any:
    return await until(what, probe, ok, timeout=60)


async def test_only_committed_events_are_canonical_and_an_open_transaction_is_named(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    run = unique_name("tx")
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"{run}."})
    await ensure_topics(kafka, TOPICS)
    upstream = Upstream(kafka, run)
    group = f"{run}-ingest"
    ingest_app = create_ingest(
        IngestSettings(
            http_port=free_port(),
            kafka=kafka,
            group_id=group,
            stall_after=STALL_AFTER,
            log_format="text",
            batch_max_records=BATCH,  # the last transaction fills a batch; its marker comes alone
        )
    )
    alerts_app = create_alerts(
        AlertsSettings(
            http_port=free_port(),
            kafka=kafka,
            delivery_group_id=f"{run}-delivery",
            watch_groups={"ingest": group},
            stall_after=STALL_AFTER,
            file=write_alerts_file(
                tmp_path / "alerts.yaml",
                receivers=[{"name": "console", "kind": "console"}],
                per_alert={"RoadmapPipelineStalled": {"for": "0s", "keep_firing_for": "0s"}},
            ),
        )
    )
    canonical, dlq = kafka.topic_name(CANONICAL_EVENTS), kafka.topic_name(DEAD_LETTERS)
    async with AsyncExitStack() as running:
        ingest = await running.enter_async_context(running_app(ingest_app, timeout=90))
        alerts = await running.enter_async_context(running_app(alerts_app, timeout=90))

        # 1. Committed, aborted and plain records interleaved on one partition.
        await asyncio.to_thread(upstream.interleaved_transactions)
        ledger = upstream.ledger
        want = len(ledger.committed)
        assert want == TRANSACTIONS // 2 * PER_TRANSACTION + TRANSACTIONS * 5
        records = await read_until_quiet(kafka, [canonical], at_least=want, quiet_s=2)
        ids = _event_ids(records)
        assert sorted(ids) == sorted(ledger.committed), "committed events canonical once each"
        assert not set(ids) & set(ledger.aborted), "an aborted event became canonical"
        dead = _dlq_originals(await read_until_quiet(kafka, [dlq], at_least=1, quiet_s=1))
        assert sorted(dead) == sorted(ledger.committed_invalid), (
            "the DLQ holds exactly the committed transactions' invalid messages"
        )
        text = await scrape(ingest)
        received = metric_total(text, "roadmap_ingest_events_received_total")
        assert received == want + len(ledger.committed_invalid), "aborted records were counted"

        # 2. A transaction left open holds the partition at its last stable offset.
        held_ids = await asyncio.to_thread(upstream.open_transaction, 4)
        stable = min(upstream.offsets[-4:])
        await asyncio.to_thread(upstream.plain_events, 3)  # after it: not readable either
        high_water = max(upstream.offsets) + 1
        status, body = await _eventually(
            "ingest not ready, naming the open transaction",
            lambda: _readyz(ingest),
            lambda answer: answer[0] == 503 and "held by an open transaction" in str(answer[1]),
        )
        reason = json.dumps(body)
        assert (
            f"{upstream.topic} partition {PARTITION} at offset {stable}, "
            f"{high_water - stable} records behind" in reason
        ), reason
        assert (
            f"held by an open transaction: last stable offset {stable} below high-water mark "
            f"{high_water}" in reason
        ), reason
        assert "last error" not in reason, reason
        assert await _gauge(ingest, "roadmap_consumer_stalled", upstream.topic) == 1
        assert len(_event_ids(await read_until_quiet(kafka, [canonical], quiet_s=1))) == want

        # 3. The runbook: find the transaction with Kafka's own tool and abort it there (its
        # producer is taken as gone). The plain events behind it go through, the held never do.
        listed = await kafka_transactions(kafka, "list")
        assert {
            "TransactionalId": upstream.transactional_id,
            "TransactionState": "Ongoing",
        }.items() <= next(
            row for row in listed if row["TransactionalId"] == upstream.transactional_id
        ).items(), listed
        (producer,) = await kafka_transactions(
            kafka, "describe-producers", "--topic", upstream.topic, "--partition", str(PARTITION)
        )
        assert producer["CurrentTransactionStartOffset"] == str(stable), producer
        await kafka_transactions(
            kafka,
            "abort",
            "--topic",
            upstream.topic,
            "--partition",
            str(PARTITION),
            "--start-offset",
            str(stable),
        )
        records = await read_until_quiet(kafka, [canonical], at_least=want + 3, quiet_s=2)
        ids = _event_ids(records)
        assert sorted(ids) == sorted(upstream.ledger.committed)
        assert not set(ids) & set(held_ids)
        await _eventually(
            "ingest ready again",
            lambda: _readyz(ingest),
            lambda answer: answer[0] == 200,
        )

        # 4. The log ends on a commit marker, an offset with no record to read: neither ingest's
        # lag nor the alerts service's watch of its committed offsets may read it as waiting.
        await asyncio.to_thread(upstream.restart)
        await asyncio.to_thread(upstream.last_transaction, BATCH)
        want = len(upstream.ledger.committed)
        records = await read_until_quiet(kafka, [canonical], at_least=want, quiet_s=1)
        assert sorted(_event_ids(records)) == sorted(upstream.ledger.committed)
        checks = 0
        deadline = asyncio.get_running_loop().time() + 3 * STALL_AFTER
        while asyncio.get_running_loop().time() < deadline:
            status, body = await _readyz(ingest)
            assert status == 200, body
            assert await _gauge(ingest, "roadmap_consumer_stalled", upstream.topic) == 0
            assert await _gauge(ingest, "roadmap_consumer_lag_messages", upstream.topic) == 0
            assert await _stalled_alerts(alerts) == [], "the group watch calls ingest stalled"
            checks += 1
            await asyncio.sleep(0.5)
        assert checks >= 6
