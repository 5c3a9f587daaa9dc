"""Fault 5: two metrics replicas in one group, one SIGKILLed mid-stream; totals stay exact.

Two ``roadmap-monitor run metrics`` processes (event clock) share the canonical topic's three
partitions. The canonical topic is fed with ingest's own publisher and partitioning
(``publish_canonical``) from the seeded fault stream: every valid event, its corrections and late
older versions, and the exact re-deliveries an at-least-once ingest can re-publish. First a part
of the stream, until the replicas have split the partitions: their components and breakdowns,
summed, equal the reference fold of that part (DESIGN: every indicator is additive over
partitions). Then the rest flows in paced chunks and one replica, drawn from the seed, is
SIGKILLed after a seeded number of chunks. Once the group has rebalanced, the survivor owns all
three partitions, has replayed the ones it took over, and its /metrics equals the reference fold
of the whole stream exactly: values (ratios too), components, freshness, evaluation time and
every breakdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from contracts.roadmap.loader import load_roadmap
from contracts.topics import CANONICAL_EVENTS, KPI_SNAPSHOTS
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from tests.support.fault_report import FaultReport
from tests.support.kafka import RealBroker, unique_name
from tests.support.reference_fold import (
    differences,
    fault_stream,
    observed_series,
    reference_fold,
    sample_total,
)
from tests.support.roadmap_events import publish_canonical
from tests.support.services import REPO, spawn_service, wait_ready
from tests.support.streams import Fate, Upstream
from tests.support.waiting import until

T = TypeVar("T")

SEED = 5
SIZE = 50_000
FIRST_PART = 0.3
"""Share of the canonical feed on the topic before the replicas start."""
CHUNK = 2_000
PAUSE_S = 1.0
TIMEOUT = 300.0
ROADMAP = load_roadmap(REPO / "deploy" / "roadmap.yaml")
ADDITIVE = (
    "roadmap_indicator_component",
    "roadmap_freight_shipments",
    "roadmap_freight_tonnes",
    "roadmap_freight_value_usd",
    "roadmap_projects",
    "roadmap_projects_investment_usd",
    "roadmap_jobs",
    "roadmap_metrics_entities",
)
"""What replicas' partial results add up to: components and breakdowns (values of ratios,
freshness and the evaluation time are per replica)."""


@dataclass
class Replica:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str

    async def scrape(self) -> str:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            response = await client.get("/metrics")
            response.raise_for_status()
            return response.text

    async def ready(self) -> bool:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get("/readyz")).status_code == 200
        return False


_wait = functools.partial(until, timeout=TIMEOUT, interval=1.0)


@dataclass(frozen=True)
class Look:
    """One look at every live replica at once."""

    ready: list[bool]
    owned: list[int]
    replaying: int
    texts: list[str]


async def _look(replicas: Sequence[Replica]) -> Look:
    ready = [await r.ready() for r in replicas]
    texts = [await r.scrape() for r in replicas]
    return Look(
        ready=ready,
        owned=[int(sample_total(t, "roadmap_metrics_partitions_owned")) for t in texts],
        replaying=int(sum(sample_total(t, "roadmap_metrics_partitions_replaying") for t in texts)),
        texts=texts,
    )


def _settled(look: Look) -> bool:
    """Every replica ready and owning a share, three partitions in all, none replaying."""
    return all(look.ready) and sum(look.owned) == 3 and min(look.owned) >= 1 and not look.replaying


async def _feed(kafka: KafkaSettings, messages: Sequence[Upstream], progress: list[int]) -> None:
    """Publish ``messages`` in paced chunks; ``progress[0]`` counts the chunks done."""
    for start in range(0, len(messages), CHUNK):
        await publish_canonical(kafka, messages[start : start + CHUNK])
        progress[0] += 1
        await asyncio.sleep(PAUSE_S)


@pytest.mark.timeout(900)
async def test_survivor_of_a_sigkilled_replica_takes_over_with_exact_totals(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """Two metrics replicas of one group split the partitions and their summed components and
    breakdowns equal the reference fold of what was published; one is SIGKILLed mid-stream
    (seeded choice and moment); after the rebalance the survivor owns all three partitions and
    its /metrics equals the reference fold of the whole stream, series for series."""
    rng = random.Random(SEED)
    stream = fault_stream(SEED, SIZE, run=unique_name("r").replace(".", "-"))
    feed = [m for m in stream.messages if m.fate is not Fate.DEAD_LETTER]
    first = feed[: int(len(feed) * FIRST_PART)]
    rest = feed[len(first) :]
    chunks = -(-len(rest) // CHUNK)
    kill_after = rng.randint(2, chunks - 3)
    victim_index = rng.randrange(2)
    want_first = {
        k: v for k, v in reference_fold(first, ROADMAP).series().items() if k.startswith(ADDITIVE)
    }
    want_all = reference_fold(feed, ROADMAP).series()
    fault_report.injected(
        f"seed {SEED}: {len(feed)} canonical records ({stream.count(Fate.CANONICAL)} distinct "
        f"events, {stream.count(Fate.DUPLICATE)} re-deliveries) from a {SIZE}-message stream; "
        f"{len(first)} before two replicas start, then {chunks} chunks of {CHUNK} every "
        f"{PAUSE_S:.0f}s"
    )

    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("t") + "."
    )
    await ensure_topics(kafka, [CANONICAL_EVENTS, KPI_SNAPSHOTS])
    await publish_canonical(kafka, first)
    group = unique_name("metrics")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        replicas = []
        for name in ("a", "b"):
            port = free_port()
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
                "METRICS_HTTP_PORT": str(port),
                "METRICS_GROUP_ID": group,
                "METRICS_LOG_FORMAT": "text",
                "ROADMAP_CLOCK": "event",
            }
            log = tmp_path / f"metrics-{name}.log"
            process = stack.enter_context(spawn_service("metrics", env, log_path=log))
            replicas.append(Replica(name, process, f"http://127.0.0.1:{port}"))
            await wait_ready(replicas[-1].base_url, timeout=TIMEOUT)

        # 1. Split between the two: the summed parts are the whole.
        def split_and_whole(look: Look) -> bool:
            return _settled(look) and observed_series(look.texts, ADDITIVE) == want_first

        with contextlib.suppress(TimeoutError):
            await _wait("two replicas adding up", lambda: _look(replicas), split_and_whole)
        split = await _look(replicas)
        split_s = time.monotonic() - started
        summed_first = observed_series(split.texts, ADDITIVE)
        fault_report.checked(
            f"after {split_s:.0f}s replicas a, b own {split.owned} partitions (ready "
            f"{split.ready}); summed components and breakdowns vs the reference of the first "
            f"{len(first)} records: {len(differences(want_first, summed_first))} differences "
            f"over {len(want_first)} series"
        )
        assert _settled(split), split.owned
        assert differences(want_first, summed_first) == []

        # 2. The rest flows; one replica is killed mid-stream.
        progress = [0]
        feeding = asyncio.create_task(_feed(kafka, rest, progress))

        async def chunks_done() -> int:
            assert not feeding.done() or feeding.exception() is None
            return progress[0]

        await _wait("chunks before the kill", chunks_done, lambda n: n >= kill_after)
        victim, survivor = replicas[victim_index], replicas[1 - victim_index]
        victim_owned = split.owned[victim_index]
        os.kill(victim.process.pid, signal.SIGKILL)
        status = victim.process.wait(timeout=30)
        killed_at = time.monotonic()
        fault_report.injected(
            f"SIGKILL replica {victim.name} (status {status}, owning {victim_owned} "
            f"partitions) after {progress[0]} of {chunks} chunks"
        )
        await asyncio.wait_for(feeding, timeout=TIMEOUT)
        fed_s = time.monotonic() - killed_at

        # 3. The survivor takes over and holds the whole, exactly.
        taken = await _wait(
            "the survivor owning every partition",
            lambda: _look([survivor]),
            lambda look: look.owned == [3],
        )
        took_over_s = time.monotonic() - killed_at
        last: dict[str, float] = {}

        async def whole() -> Look:
            nonlocal last
            look = await _look([survivor])
            last = observed_series(look.texts)
            return look

        with contextlib.suppress(TimeoutError):
            await _wait(
                "the survivor equal to the reference fold",
                whole,
                lambda look: _settled(look) and last == want_all,
            )
        final = await _look([survivor])
        final_s = time.monotonic() - killed_at
        assert survivor.process.poll() is None, "the survivor exited"

    diff = differences(want_all, observed_series(final.texts))
    fault_report.saw(
        f"feed done {fed_s:.0f}s after the kill; survivor {survivor.name} owned "
        f"{taken.owned[0]} partitions {took_over_s:.0f}s after it (rebalance), matched the "
        f"reference {final_s:.0f}s after it"
    )
    fault_report.checked(
        f"survivor /metrics = reference fold of all {len(feed)} records over {len(want_all)} "
        f"series (values, components, freshness, evaluation time, breakdowns): "
        f"{len(diff)} differences; ready {final.ready}, owns {final.owned}, "
        f"replaying {final.replaying}"
    )
    assert final.owned == [3]
    assert final.ready == [True]
    assert final.replaying == 0
    assert diff == [], "\n".join(diff[:40])
