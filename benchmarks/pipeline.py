"""``make bench``: the whole pipeline (ingest → metrics → alerts) on Apache Kafka, and on the
embedded broker as a second column.

Each broker of ``--brokers`` (default ``kafka,embedded``: Apache Kafka first) is started on its
own and measured the same way, on the same machine as the services:

1. **Interleaved rounds** (``--rounds``, default 3). The machine is noisy (2 cores; a ceiling
   moved by a factor of two between two runs on one day), so each stage is timed right after a
   ceiling and its ratio is taken round by round, then reported as the median of the rounds
   with the spread (min to max). A round is:

   a. **Ceiling**: a bare aiokafka loop consumes the upstream messages (published once, on
      topics of their own) and re-publishes them unchanged, batched as ingest publishes
      (``BatchPublisher``), committing per fetch: what the client and broker can carry.
   b. **Burst**: the three services as separate processes on topics of the round; the upstream
      stream (default 200,000 messages of the three types with corrections, exact re-sends and
      2% invalid) is published as fast as the producer goes; ``/metrics`` of every service is
      sampled every 100 ms. Each stage's rate is taken from its own counter between its first
      and its last move; the pipeline's rate from the first publish to the last event folded.
      In the first round only, py-spy samples ingest and metrics during the burst (first
      broker only: ``docs/profile-*.svg``), and the **latency** is measured next: new valid
      events at a steady rate (default 1,000/s for 30 s), each one's time from its upstream
      publish to the first ``/metrics`` scrape of metrics (every 10 ms) that counts it.
   c. Ceiling again, then **ingest alone**: one process takes a longer stream of the same kind
      (600,000 messages; ``--ingest-events``), published beforehand on upstream topics of 6
      partitions.
   d. Ceiling again, then **metrics alone**: a fresh metrics process replays the round's
      canonical topic: its capacity when ingest does not pace it.
   e. **The Java anchor**: Apache Kafka's own ``ProducerPerformance`` and then
      ``ConsumerPerformance``, from the same jars, on the same broker, with records of the
      upstream messages' mean size (``benchmarks.java_anchor``).

2. **Once**: the ceiling with a ``send()`` per record; two ingest processes in one group on 6
   and on 3 partitions a topic; ingest over ``POST /v1/events`` in bodies of 1,000, with and
   without a publishers file. Their ratios are to the median ceiling and anchors.

Peak resident memory (``VmHWM``) is read for each service after the first burst, and for the
broker's processes with their CPU seconds at the end. Writes ``docs/benchmarks.md``,
``docs/benchmarks.json`` and ``docs/benchmarks.png`` (the first broker's burst and latency).
Figures are recorded, never asserted; the goals are reported as met or not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.brokers import BROKERS, BrokerUnderTest, running_broker
from benchmarks.events import PipelineStream, pipeline_stream
from benchmarks.ingest_scaling import http_ingest, kafka_ingest
from benchmarks.interleaved import median_run, spread, stage_figures
from benchmarks.java_anchor import anchor_summary, java_anchors
from benchmarks.machine import describe
from benchmarks.pass_through import pass_through
from benchmarks.pipeline_report import goals, plot, render_markdown
from benchmarks.pipeline_stages import (
    PREFIX,
    Running,
    burst,
    latency,
    metrics_alone,
    publish_upstream,
    services_running,
)
from benchmarks.process_stats import peak_rss_mib
from benchmarks.profiling import flame_graph
from benchmarks.report import say
from contracts.events import EventType
from contracts.topics import TOPICS
from services.common.config import KafkaSettings
from services.common.topics import ensure_topics

CEILING_PREFIX = "bench.ceiling."
BATCHED_NAME = "bare aiokafka pass-through, batched as ingest publishes, commit per fetch"
PER_RECORD_NAME = "bare aiokafka pass-through, a send() per record, commit per fetch"

ROUND_STAGES = {
    # stage: (the round's section and figure, which of the round's ceilings came just before)
    "ingest": (("burst", "ingest_events_per_s"), 0),
    "metrics (in the pipeline)": (("burst", "metrics_events_per_s"), 0),
    "whole pipeline": (("burst", "pipeline_events_per_s"), 0),
    "ingest alone, 1 process": (("ingest_alone", "events_per_s"), 1),
    "metrics (alone, replaying)": (("metrics_alone", "events_per_s"), 2),
}


@dataclass(frozen=True)
class Streams:
    """The upstream messages of the burst and of ingest alone, made once for every broker."""

    burst: PipelineStream
    ingest: list[tuple[EventType, bytes]]

    @property
    def record_size(self) -> int:
        """The burst's mean message size in bytes: the Java anchor's record size."""
        return round(statistics.mean(len(value) for _, value in self.burst.messages))


@dataclass(frozen=True)
class OnBroker:
    """What every measurement on one running broker needs."""

    broker: BrokerUnderTest
    kafka: KafkaSettings
    streams: Streams
    args: argparse.Namespace
    log_dir: Path

    @property
    def count(self) -> int:
        """Upstream messages of the burst, of each ceiling and of each anchor."""
        return len(self.streams.burst.messages)

    async def ceiling(self, *, batched: bool, group: str) -> float:
        """The bare aiokafka pass-through of the burst's messages (on topics of their own,
        published once), read in a group of its own."""
        kind = "batched" if batched else "a send() per record"
        say(f"  ceiling: bare aiokafka pass-through of {self.count:,} messages, {kind}")
        result = await pass_through(
            self.kafka.model_copy(update={"topic_prefix": CEILING_PREFIX}),
            self.count,
            batched=batched,
            broker_pid=self.broker.pids[0],
            group=group,
        )
        say(f"    {result.events_per_s:,.0f} events/s")
        return result.events_per_s


@asynccontextmanager
async def _profiled(running: Running, out: Path | None) -> AsyncIterator[None]:
    """py-spy flame graphs of ingest and metrics into ``out`` while the block runs (if any)."""
    async with AsyncExitStack() as stack:
        if out is not None:
            for service in ("ingest", "metrics"):
                await stack.enter_async_context(
                    flame_graph(
                        running.processes[service].pid,
                        out / f"profile-{service}.svg",
                        what=service,
                    )
                )
        yield


async def _round(on: OnBroker, number: int, profile_dir: Path | None) -> dict[str, Any]:
    """One interleaved round: ceiling, burst, ceiling, ingest alone, ceiling, metrics alone,
    the Java anchor. The first round also profiles the burst and measures the latency."""
    tag, first, streams = f"r{number}", number == 0, on.streams
    say(f"[{on.broker.name}] round {number + 1} of {on.args.rounds}")
    ceilings = [await on.ceiling(batched=True, group=f"{tag}-burst")]
    round_kafka = on.kafka.model_copy(update={"topic_prefix": f"{PREFIX}{tag}."})
    await ensure_topics(round_kafka, TOPICS)
    figures: dict[str, Any] = {}
    async with services_running(round_kafka, on.log_dir) as running:
        say(f"  burst of {on.count:,} messages through ingest, metrics and alerts")
        async with _profiled(running, profile_dir if first else None):
            figures["burst"] = await burst(round_kafka, running, streams.burst)
        if first:
            figures["latency"] = await latency(
                round_kafka, running, rate=on.args.latency_rate, seconds=on.args.latency_seconds
            )
            figures["peak_rss_mib"] = {
                service: peak_rss_mib(process.pid) for service, process in running.processes.items()
            }
    ceilings.append(await on.ceiling(batched=True, group=f"{tag}-ingest"))
    figures["ingest_alone"] = await kafka_ingest(
        on.kafka, streams.ingest, processes=1, log_dir=on.log_dir, tag=tag
    )
    ceilings.append(await on.ceiling(batched=True, group=f"{tag}-metrics"))
    canonical = figures["burst"]["canonical_events"] + figures.get("latency", {}).get("events", 0)
    figures["metrics_alone"] = await metrics_alone(
        round_kafka, canonical, on.log_dir, group=f"bench-metrics-alone-{tag}"
    )
    if on.broker.java_tools:
        say(f"  Java anchor: perf tools, {on.count:,} records of {streams.record_size} bytes")
        figures["anchors"] = await java_anchors(
            on.kafka, records=on.count, record_size=streams.record_size, tag=tag
        )
        say(anchor_summary(figures["anchors"]))
    figures["ceilings"] = ceilings
    return figures


async def _once(on: OnBroker) -> dict[str, Any]:
    """The stages measured once a broker: the per-record ceiling, two ingest processes, HTTP."""
    say(f"[{on.broker.name}] the stages measured once")
    kafka, streams, log_dir, http_events = on.kafka, on.streams, on.log_dir, on.args.http_events
    return {
        "per_record": await on.ceiling(batched=False, group="once"),
        "two": await kafka_ingest(kafka, streams.ingest, processes=2, log_dir=log_dir),
        "default_split": await kafka_ingest(
            kafka, streams.ingest, processes=2, log_dir=log_dir, partitions=kafka.topic_partitions
        ),
        "http": await http_ingest(kafka, http_events, log_dir=log_dir),
        "http_publishers": await http_ingest(kafka, http_events, log_dir=log_dir, publishers=True),
    }


def _column(
    broker: BrokerUnderTest,
    rounds: Sequence[dict[str, Any]],
    once: dict[str, Any],
    usage: dict[str, float],
    record_size: int,
) -> dict[str, Any]:
    """One broker's figures: the medians of the rounds (as the page's tables show them), every
    stage's ratios with their spread, the anchors, the broker's memory and CPU."""
    batched = [ceiling for r in rounds for ceiling in r["ceilings"]]
    anchors = (
        {
            "java_producer": [r["anchors"]["producer"]["per_s"] for r in rounds],
            "java_consumer": [r["anchors"]["consumer"]["fetch_per_s"] for r in rounds],
        }
        if broker.java_tools
        else {}
    )
    stages = {
        stage: stage_figures(
            [r[section][figure] for r in rounds], [r["ceilings"][at] for r in rounds], anchors
        )
        for stage, ((section, figure), at) in ROUND_STAGES.items()
    }
    medians = {name: [statistics.median(runs)] for name, runs in anchors.items()}
    once_rates = {
        "ingest alone, 2 processes": once["two"]["events_per_s"],
        "ingest alone, 2 processes, default partitions": once["default_split"]["events_per_s"],
        "ingest over HTTP": once["http"]["events_per_s"],
        "ingest over HTTP, publishers file": once["http_publishers"]["events_per_s"],
        "ceiling, a send() per record": once["per_record"],
    }
    for stage, rate in once_rates.items():
        stages[stage] = stage_figures([rate], [statistics.median(batched)], medians)
    first = rounds[0]
    ingest_one = rounds[median_run([r["ingest_alone"]["events_per_s"] for r in rounds])]
    alone = rounds[median_run([r["metrics_alone"]["events_per_s"] for r in rounds])]
    one_process = ingest_one["ingest_alone"]["events_per_s"]
    return {
        "broker": broker.description,
        "rounds": len(rounds),
        "burst": {
            **first["burst"],
            "ingest_events_per_s": stages["ingest"]["events_per_s"],
            "metrics_events_per_s": stages["metrics (in the pipeline)"]["events_per_s"],
            "pipeline_events_per_s": stages["whole pipeline"]["events_per_s"],
        },
        "latency": first["latency"],
        "metrics_alone": alone["metrics_alone"],
        "ceilings": {
            "per_record": {"name": PER_RECORD_NAME, "events_per_s": round(once["per_record"])},
            "batched": {
                "name": BATCHED_NAME,
                "events_per_s": round(statistics.median(batched)),
                "spread": spread(batched, 0),
            },
        },
        "java_anchors": {
            "record_size": record_size,
            "records": first["burst"]["messages"],
            "producer_per_s": spread(anchors["java_producer"], 0),
            "consumer_fetch_per_s": spread(anchors["java_consumer"], 0),
            "runs": [r["anchors"] for r in rounds],
        }
        if anchors
        else None,
        "ingest_alone": [ingest_one["ingest_alone"], once["two"]],
        "ingest_alone_default_partitions": once["default_split"],
        "http": once["http"],
        "http_publishers": once["http_publishers"],
        "stages": stages,
        "ratio_to_batched": {
            stage: figures["ratio_to_batched"]["median"]
            for stage, figures in stages.items()
            if stage != "ceiling, a send() per record"
        },
        "scaling_two_processes": round(once["two"]["events_per_s"] / one_process, 2),
        "scaling_two_processes_default_partitions": round(
            once["default_split"]["events_per_s"] / one_process, 2
        ),
        "http_to_kafka_ingest": round(once["http"]["events_per_s"] / one_process, 2),
        "http_publishers_to_open": round(
            once["http_publishers"]["events_per_s"] / once["http"]["events_per_s"], 2
        ),
        "peak_rss_mib": {**first["peak_rss_mib"], "broker": usage["peak_rss_mib"]},
        "broker_usage": usage,
    }


async def measure(
    broker: BrokerUnderTest,
    streams: Streams,
    args: argparse.Namespace,
    log_dir: Path,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """Every figure of the benchmark on one running broker."""
    started = time.monotonic()
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=PREFIX,
        enable_idempotence=broker.idempotence,  # the embedded broker refuses InitProducerId
    )
    ceiling_kafka = kafka.model_copy(update={"topic_prefix": CEILING_PREFIX})
    await ensure_topics(ceiling_kafka, TOPICS)
    await publish_upstream(ceiling_kafka, streams.burst.messages)
    on = OnBroker(broker, kafka, streams, args, log_dir)
    rounds = [await _round(on, n, profile_dir) for n in range(args.rounds)]
    once = await _once(on)
    usage = broker.usage()
    say(
        f"[{broker.name}] done in {time.monotonic() - started:.0f} s; broker peak resident "
        f"{usage['peak_rss_mib']:,.0f} MiB, {usage['cpu_s']:,.0f} CPU s"
    )
    return _column(broker, rounds, once, usage, streams.record_size)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    machine = describe()
    say(
        f"machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, aiokafka {machine['aiokafka']}, FastStream "
        f"{machine['faststream']}, pydantic {machine['pydantic']}"
    )
    started = time.monotonic()
    say(f"generating {args.events:,} + {args.ingest_events:,} upstream messages (seed {args.seed})")
    streams = Streams(
        pipeline_stream(args.events, seed=args.seed),
        pipeline_stream(args.ingest_events, seed=args.seed).messages,
    )
    say("  " + ", ".join(f"{kind} {n:,}" for kind, n in streams.burst.kinds.items()))
    columns: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(args.brokers):
        with (
            tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as scratch,
            running_broker(name, Path(scratch)) as broker,
        ):
            say(f"[{name}] {broker.description} on {broker.bootstrap_servers} (logs in {scratch})")
            columns[name] = await measure(
                broker, streams, args, Path(scratch), args.out if index == 0 else None
            )
    primary, *others = args.brokers
    return {
        "benchmark": "pipeline",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": f"make bench EVENTS={args.events}",
        "wall_time_s": round(time.monotonic() - started),
        "machine": {**machine, "broker": columns[primary]["broker"]},
        **columns[primary],
        "primary_broker": primary,
        "other_brokers": {name: columns[name] for name in others},
        "goals": {name: goals(column) for name, column in columns.items()},
    }


def _without_series(column: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(column))
    copy["burst"].pop("samples", None)
    copy["latency"].pop("delays_s", None)
    return copy


def write(result: dict[str, Any], out: Path) -> None:
    """``benchmarks.json`` (without the raw series), ``benchmarks.md`` and ``benchmarks.png``."""
    out.mkdir(parents=True, exist_ok=True)
    plot(result, out / "benchmarks.png")
    summary = _without_series(result)
    summary["other_brokers"] = {
        name: _without_series(column) for name, column in result["other_brokers"].items()
    }
    (out / "benchmarks.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "benchmarks.md").write_text(render_markdown(summary), encoding="utf-8")


def _brokers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BROKERS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BROKERS)}, comma-separated")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="upstream messages")
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument(
        "--brokers",
        type=_brokers,
        default=list(BROKERS),
        help="brokers to measure, comma-separated; the first is the page's main column "
        f"(default {','.join(BROKERS)})",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved ceiling-and-stage rounds a broker"
    )
    parser.add_argument("--latency-rate", type=int, default=1000, help="events/s")
    parser.add_argument("--latency-seconds", type=int, default=30)
    parser.add_argument(
        "--http-events", type=int, default=100_000, help="events POSTed to ingest's HTTP API"
    )
    parser.add_argument(
        "--ingest-events",
        type=int,
        default=600_000,
        help="upstream messages for ingest measured alone (1 and 2 processes): long enough that "
        "the group join and the last batches do not decide the rate (200,000 gave 1.36 to 1.77 "
        "times for two processes; 600,000, 1.45 to 1.52)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    if args.events < 1000:
        parser.error("--events must be at least 1000")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    result = asyncio.run(run(args))
    write(result, args.out)
    say(f"wrote {args.out / 'benchmarks.md'}, benchmarks.json and benchmarks.png")
    say(render_markdown(json.loads((args.out / "benchmarks.json").read_text())))
    say(f"wall time {result['wall_time_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
