"""``make bench-recall``: what refilling ingest's dedup window costs at start-up.

Pre-loads N canonical records (default 100,000, the default window) into the embedded broker,
then starts ``roadmap-monitor run ingest`` twice with a window of N ids: once with
``INGEST_DEDUP_RECALL=false`` and once with the default recall. For each it records the time
from the process start to ``/readyz`` answering 200, the ids the window holds then, and the
process's resident memory (now and peak). The difference between the two is the recall's cost.
Figures are printed and written to ``docs/benchmarks/recall.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.events import valid_events
from benchmarks.loading import preload
from benchmarks.machine import describe
from benchmarks.process_stats import peak_rss_mib, rss_mib
from benchmarks.report import say, write_table
from benchmarks.service_process import spawn, stop, until_ready
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import EmbeddedBroker, free_port
from services.common.publishing import OutboundRecord
from services.common.topics import ensure_topics

PREFIX = "bench."
READY_WITHIN_S = 300


async def _start_until_ready(
    kafka: KafkaSettings, window: int, *, recall: bool, scratch: Path
) -> dict[str, Any]:
    """Start ingest, wait for ``/readyz``; the seconds it took, what it recalled, its memory."""
    port = free_port()
    settings = {
        "HTTP_PORT": str(port),
        "GROUP_ID": f"bench-recall-{'on' if recall else 'off'}",
        "DEDUP_WINDOW": str(window),
        "DEDUP_RECALL": "true" if recall else "false",
    }
    started = time.perf_counter()
    log = scratch / f"ingest-{recall}.log"
    process = await spawn("ingest", kafka, settings, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            response = await until_ready(
                process, client, log=log, within_s=READY_WITHIN_S, poll_s=0.05
            )
        ready_s = time.perf_counter() - started
        return {
            "seconds_to_ready": round(ready_s, 2),
            "readyz_dedup": response.json()["checks"]["dedup"]["detail"],
            "rss_mib_when_ready": rss_mib(process.pid),
            "peak_rss_mib": peak_rss_mib(process.pid),
        }
    finally:
        await stop(process)


async def run(count: int, out_dir: Path) -> dict[str, Any]:
    machine = describe()
    say(
        f"machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, broker {machine['broker']}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-recall-") as scratch,
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
        say(f"pre-loading {count:,} canonical events ({kafka.topic_partitions} partitions)")
        topic = kafka.topic_name(CANONICAL_EVENTS)
        canonical = (
            OutboundRecord(topic, f"k{n}".encode(), value)
            for n, (_, value) in enumerate(valid_events(count))
        )
        await preload(kafka, canonical, count)
        runs = {}
        for recall in (False, True):
            name = "recall_on" if recall else "recall_off"
            say(f"starting ingest with {name.replace('_', ' ')}")
            runs[name] = await _start_until_ready(
                kafka, count, recall=recall, scratch=Path(scratch)
            )
            say(f"  {json.dumps(runs[name])}")
    off, on = runs["recall_off"], runs["recall_on"]
    result: dict[str, Any] = {
        "benchmark": "recall",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
        "stream": {"canonical_records": count, "dedup_window": count},
        **runs,
        "cost_of_recall": {
            "seconds": round(on["seconds_to_ready"] - off["seconds_to_ready"], 2),
            "rss_mib": round(on["rss_mib_when_ready"] - off["rss_mib_when_ready"], 1),
            "peak_rss_mib": round(on["peak_rss_mib"] - off["peak_rss_mib"], 1),
        },
    }
    write_table(result, out_dir)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-recall", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.events, args.out))
    say(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
