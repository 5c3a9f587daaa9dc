"""The ``RoadmapPipelineStalled`` runbook (``docs/runbooks.md#pipeline_stalled``), run as written
against Apache Kafka with Kafka's own tools from the jars, on the product's own ingest.

Ingest takes a first batch and is stopped; a "bad" gzip batch and a good one follow. Then, step by
step as the runbook says:
1. ``kafka-consumer-groups --describe``: the group's committed offset, the log end, the lag, and
   no active members;
2. ``kafka-dump-log --print-data-log`` on the partition's segment: the batch holding the stalled
   offset with its ``baseOffset``, ``lastOffset``, compression codec and ``isvalid``; ``N`` is its
   ``lastOffset + 1``;
3. ``--reset-offsets --to-offset N --dry-run`` while a member is in the group: refused, naming
   the group's state (and the tool still exits 0, which the runbook warns about);
4. the same with the group empty: prints ``NEW-OFFSET`` N and changes nothing;
5. ``--execute``: the committed offset is N;
6. ingest started again resumes at N: the first and last batches are canonical, the skipped
   one is not.
Each step fails if the tool's output is not what the runbook tells the operator to read.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import confluent_kafka
import pytest

from contracts.events import EventType
from contracts.topics import CANONICAL_EVENTS, TOPICS, UPSTREAM_TOPIC_BY_TYPE
from services.common.apache_kafka import tool_command
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from tests.support.kafka import RealBroker, read_until_quiet, unique_name
from tests.support.librdkafka import Outgoing, produce
from tests.support.processes import metric_total, scrape
from tests.support.services import running_app
from tests.support.streams import EventFactory
from tests.support.waiting import until

PARTITION = 1
BATCH = 10
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
DUMP_LOG = "org.apache.kafka.tools.DumpLogSegments"
BATCH_LINE = re.compile(
    r"baseOffset: (?P<base>\d+) lastOffset: (?P<last>\d+) count: (?P<count>\d+) .*"
    r"compresscodec: (?P<codec>\w+) crc: \d+ isvalid: (?P<valid>\w+)"
)


async def _tool(main_class: str, *args: str) -> str:
    """Run one of Kafka's tools; what it printed, standard output first (the tables), then
    standard error (where ``kafka-consumer-groups`` says a group has no active members)."""
    done = await asyncio.to_thread(
        subprocess.run,
        tool_command(main_class, *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{main_class} {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _table(output: str) -> list[dict[str, str]]:
    """The rows of a ``kafka-consumer-groups`` table (columns separated by runs of spaces)."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    header = next(i for i, cells in enumerate(lines) if cells[:2] == ["GROUP", "TOPIC"])
    names = lines[header]
    rows = lines[header + 1 :]
    return [dict(zip(names, cells, strict=True)) for cells in rows if len(cells) == len(names)]


async def test_the_stalled_pipeline_runbook_moves_ingest_past_a_batch(
    broker: RealBroker, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    if not broker.data_dirs:
        pytest.skip("kafka-dump-log reads the broker's segment files: a broker this run started")
    run = unique_name("runbook")
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"{run}."})
    await ensure_topics(kafka, TOPICS)
    topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[EventType.TRADE_SHIPMENT])
    group = f"{run}-ingest"
    factory = EventFactory(run)
    batches = [
        [factory.event(EventType.TRADE_SHIPMENT, BATCH * b + n, 1) for n in range(BATCH)]
        for b in range(3)
    ]

    def publish(batch: int) -> None:
        # One produce call per batch, flushed: one gzip record batch on the partition.
        produce(
            kafka.bootstrap_servers,
            [Outgoing(topic, e.value, e.key, partition=PARTITION) for e in batches[batch]],
            **{"compression.type": "gzip", "linger.ms": 100},
        )

    def ingest_settings() -> IngestSettings:
        return IngestSettings(http_port=free_port(), kafka=kafka, group_id=group, log_format="text")

    await asyncio.to_thread(publish, 0)
    async with running_app(create_ingest(ingest_settings()), timeout=90) as ingest:
        await until(
            "ingest took the first batch",
            lambda: scrape(ingest),
            lambda text: metric_total(text, "roadmap_ingest_events_accepted_total") >= BATCH,
        )
    await asyncio.to_thread(publish, 1)  # the batch to be skipped
    await asyncio.to_thread(publish, 2)

    # 1. Describe: committed offset, log end, lag; nobody in the group.
    described = await _tool(CONSUMER_GROUPS, "--bootstrap-server", kafka.bootstrap_servers,
                            "--describe", "--group", group)  # fmt: skip
    rows = {(r["TOPIC"], r["PARTITION"]): r for r in _table(described)}
    row = rows[(topic, str(PARTITION))]
    assert (row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"]) == (
        str(BATCH),
        str(3 * BATCH),
        str(2 * BATCH),
    ), described
    assert f"Consumer group '{group}' has no active members." in described, described

    # 2. Dump the segment: the batch holding the stalled offset, and N after it.
    (folder,) = [d / f"{topic}-{PARTITION}" for d in broker.data_dirs]
    segment = sorted(folder.glob("*.log"))[0]
    dumped = await _tool(DUMP_LOG, "--files", str(segment), "--print-data-log")
    found = [m.groupdict() for m in BATCH_LINE.finditer(dumped)]
    holding = next(b for b in found if int(b["base"]) <= BATCH <= int(b["last"]))
    assert holding == {
        "base": str(BATCH),
        "last": str(2 * BATCH - 1),
        "count": str(BATCH),
        "codec": "gzip",
        "valid": "true",
    }, dumped
    assert f"| offset: {BATCH} " in dumped, "the records of the batch are listed"
    skip_to = int(holding["last"]) + 1

    reset = [
        "--bootstrap-server", kafka.bootstrap_servers, "--group", group,
        "--topic", f"{topic}:{PARTITION}", "--reset-offsets", "--to-offset", str(skip_to),
    ]  # fmt: skip

    # 3. With a member in the group, Kafka refuses the reset (and the tool exits 0).
    member = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": group}
    )
    try:
        member.subscribe([kafka.topic_name(CANONICAL_EVENTS)])
        await until(
            "a member joined the group",
            lambda: asyncio.to_thread(lambda: (member.poll(0.5), member.assignment())[1]),
            bool,
            timeout=30,
        )
        refused = await _tool(CONSUMER_GROUPS, *reset, "--dry-run")
        assert (
            f"Error: Assignments can only be reset if the group '{group}' is inactive, "
            "but the current state is Stable." in refused
        ), refused
    finally:
        await asyncio.to_thread(member.close)

    # 4. Dry run on the empty group: the new offset, nothing changed.
    previewed = await _tool(CONSUMER_GROUPS, *reset, "--dry-run")
    assert _table(previewed) == [
        {"GROUP": group, "TOPIC": topic, "PARTITION": str(PARTITION), "NEW-OFFSET": str(skip_to)}
    ], previewed
    unchanged = await _tool(CONSUMER_GROUPS, "--bootstrap-server", kafka.bootstrap_servers,
                            "--describe", "--group", group)  # fmt: skip
    assert {r["PARTITION"]: r["CURRENT-OFFSET"] for r in _table(unchanged) if r["TOPIC"] == topic}[
        str(PARTITION)
    ] == str(BATCH), unchanged

    # 5. Execute: committed at N.
    executed = await _tool(CONSUMER_GROUPS, *reset, "--execute")
    assert _table(executed)[0]["NEW-OFFSET"] == str(skip_to), executed
    moved = await _tool(CONSUMER_GROUPS, "--bootstrap-server", kafka.bootstrap_servers,
                        "--describe", "--group", group)  # fmt: skip
    row = {(r["TOPIC"], r["PARTITION"]): r for r in _table(moved)}[(topic, str(PARTITION))]
    assert (row["CURRENT-OFFSET"], row["LAG"]) == (str(skip_to), str(BATCH)), moved

    # 6. Ingest again: it resumes at N. The skipped batch never becomes canonical.
    async with running_app(create_ingest(ingest_settings()), timeout=90) as ingest:
        text = await until(
            "ingest took the batch after N",
            lambda: scrape(ingest),
            lambda text: metric_total(text, "roadmap_ingest_events_received_total") >= BATCH,
        )
        await asyncio.sleep(1)
        assert metric_total(await scrape(ingest), "roadmap_ingest_events_received_total") == BATCH
    canonical = await read_until_quiet(
        kafka, [kafka.topic_name(CANONICAL_EVENTS)], at_least=2 * BATCH, quiet_s=1
    )
    ids = sorted(json.loads(record.value)["event_id"] for record in canonical)
    assert ids == sorted(e.event_id for e in batches[0] + batches[2] if e.event_id), text
