"""``make bench-ingest``: one ingest process against the embedded broker, with a ceiling.

Pre-loads N small valid events into the three upstream topics, then measures in one run:

1. a bare aiokafka pass-through (consume, re-publish the same bytes with ``send()``, commit);
2. the same pass-through publishing with batches (``send_batch``, as ingest does);
3. ``roadmap-monitor run ingest`` as a separate process, its progress read from ``/metrics``.

Each rate is taken between the first and the last processed message, so start-up (the consumer
group join) is not counted. Figures are printed and written to ``docs/benchmarks/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from benchmarks.events import valid_events
from benchmarks.loading import preload
from benchmarks.machine import describe
from benchmarks.pass_through import StageResult, pass_through
from benchmarks.process_stats import cpu_seconds, peak_rss_mib
from benchmarks.report import say, write_report
from benchmarks.service_process import counter_total, spawn, stop
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import EmbeddedBroker, free_port
from services.common.publishing import OutboundRecord
from services.common.topics import ensure_topics

PREFIX = "bench."


def _received(metrics_text: str) -> int:
    return counter_total(metrics_text, "roadmap_ingest_events_received")


async def _ingest(
    kafka: KafkaSettings, count: int, log_dir: Path, *, replicas: int, broker_pid: int
) -> StageResult:
    """Run ``replicas`` ingest processes in one group; rate from when all of them are busy."""
    ports = [free_port() for _ in range(replicas)]
    group = f"bench-ingest-{replicas}"
    log = log_dir / f"ingest-{replicas}.log"
    processes = [
        await spawn("ingest", kafka, {"HTTP_PORT": str(port), "GROUP_ID": group}, log)
        for port in ports
    ]
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=5) for p in ports]
    try:
        first = last = 0.0
        first_total = 0
        cpu_at_first: list[float] = []
        broker_cpu_at_first = 0.0
        next_report = count // 10
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            for process in processes:
                if process.returncode is not None:
                    raise RuntimeError(f"ingest exited with {process.returncode}; see {log}")
            seen = [await _scrape_received(client) for client in clients]
            total, now = sum(seen), time.perf_counter()
            if not first and all(seen):
                first, first_total = now, total
                cpu_at_first = [cpu_seconds(p.pid) for p in processes]
                broker_cpu_at_first = cpu_seconds(broker_pid)
            last = now
            if total >= next_report:
                say(f"  ingest ({replicas} process(es)) processed {total:,}/{count:,}")
                next_report += count // 10
            if total >= count:
                break
            await asyncio.sleep(0.05)
        if total < count:
            raise RuntimeError(f"ingest processed only {total:,} of {count:,}; see {log}")
        cpu = sum(cpu_seconds(p.pid) for p in processes) - sum(cpu_at_first)
        broker_cpu = cpu_seconds(broker_pid) - broker_cpu_at_first
        rss = max(peak_rss_mib(p.pid) for p in processes)
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            await stop(process)
    events = count - first_total
    name = "ingest, 1 process" if replicas == 1 else f"ingest, {replicas} processes in one group"
    return StageResult(
        name,
        events,
        last - first,
        events / (last - first),
        cpu_s=round(cpu, 2),
        broker_cpu_s=round(broker_cpu, 2),
        peak_rss_mib=rss,
    )


async def _scrape_received(client: httpx.AsyncClient) -> int:
    try:
        return _received((await client.get("/metrics")).text)
    except httpx.HTTPError:
        return 0


async def run(count: int, out_dir: Path) -> dict[str, Any]:
    machine = describe()
    say(
        f"machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, aiokafka {machine['aiokafka']} "
        f"(C extension: {machine['aiokafka_c_extension']}), broker {machine['broker']}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch,
        EmbeddedBroker(free_port(), log_path=Path(scratch) / "broker.log") as broker,
    ):
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            topic_prefix=PREFIX,
            enable_idempotence=False,  # the embedded broker refuses it
        )
        await ensure_topics(
            kafka, [*UPSTREAM_TOPIC_BY_TYPE.values(), CANONICAL_EVENTS, DEAD_LETTERS]
        )
        say(f"pre-loading {count:,} valid events (3 partitions per topic)")
        upstream = (
            OutboundRecord(kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type]), None, value)
            for event_type, value in valid_events(count)
        )
        load_rate = await preload(kafka, upstream, count)
        stages = []
        for batched in (False, True):
            say("measuring " + ("batched" if batched else "plain") + " pass-through")
            stages.append(
                await pass_through(kafka, count, batched=batched, broker_pid=broker.pid or 0)
            )
            say(f"  {stages[-1].events_per_s:,.0f} events/s")
        for replicas in (1, 2):
            say(f"measuring ingest with {replicas} process(es)")
            stages.append(
                await _ingest(
                    kafka, count, Path(scratch), replicas=replicas, broker_pid=broker.pid or 0
                )
            )
            say(f"  {stages[-1].events_per_s:,.0f} events/s")
    ingest = stages[2]
    result = {
        "benchmark": "ingest",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": count,
        "machine": machine,
        "preload_events_per_s": round(load_rate),
        "stages": [asdict(stage) for stage in stages],
        "ratio_to_plain_pass_through": round(ingest.events_per_s / stages[0].events_per_s, 2),
        "ratio_to_batched_pass_through": round(ingest.events_per_s / stages[1].events_per_s, 2),
        "two_processes_ratio_to_plain_pass_through": round(
            stages[3].events_per_s / stages[0].events_per_s, 2
        ),
    }
    write_report(result, out_dir)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.events, args.out))
    say(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
