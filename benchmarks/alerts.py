"""``make bench-alerts``: how fast the alerts service evaluates and notifies. Recorded only.

1. Pure evaluation: the shipped roadmap's indicators put together from KPI snapshots, every
   condition checked and the lifecycle stepped (``board.views`` + ``conditions_at`` +
   ``evaluate``), per second; and KPI snapshots taken into the board, per second.
2. Notification latency: a KPI snapshot that puts ``jobs_created`` behind (or back on track) is
   published; the time until a real loopback webhook has the firing (or resolved) notification.
   The service runs in-process on the embedded broker with ``for: 0s``.
3. Delivery throughput: alert records written straight onto the alerts topic, and the time until
   the webhook accepted them all (one at a time, each committed after its receivers).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks.machine import describe
from benchmarks.report import say, write_table
from contracts.alerts_file import PipelineRule, load_alerts_file
from contracts.keys import alert_key
from contracts.records import AlertName, AlertState, AlertTransition
from contracts.roadmap.loader import load_roadmap
from contracts.topics import ALERT_TRANSITIONS, KPI_SNAPSHOTS
from services.alerts.app import create_app
from services.alerts.board import IndicatorBoard
from services.alerts.conditions import conditions_at
from services.alerts.lifecycle import AlertBook, Moment, evaluate
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.embedded_broker import EmbeddedBroker, free_port
from services.common.topics import ensure_topics
from tests.support.alerts_stack import on_target, publish_snapshots, write_alerts_file
from tests.support.receiver import Received, RecordingReceiver
from tests.support.services import running_app

T0 = datetime(2027, 7, 1, tzinfo=UTC)
ROADMAP = Path("deploy/roadmap.yaml")


def pure_rates(evaluations: int) -> dict[str, Any]:
    roadmap = load_roadmap(ROADMAP)
    lifecycle = load_alerts_file("deploy/alerts.yaml").lifecycle
    snapshots = on_target(T0, jobs_created={"sum": 100})
    board = IndicatorBoard(roadmap)
    started = time.perf_counter()
    rounds = max(1, evaluations // len(snapshots))
    for n in range(rounds):
        for s in snapshots:
            board.add(s.model_copy(update={"evaluated_at": T0 + timedelta(seconds=n)}))
    add_s = time.perf_counter() - started
    book = AlertBook()
    rule = PipelineRule()
    started = time.perf_counter()
    for n in range(evaluations):
        at = T0 + timedelta(minutes=n)
        holding = conditions_at(roadmap, board.views(), at, rule=rule, pipeline=None)
        book.settle(evaluate(book, holding, Moment(at, at), lifecycle))
    evaluate_s = time.perf_counter() - started
    return {
        "indicators": len(roadmap.indicators),
        "evaluations": evaluations,
        "evaluations_per_s": round(evaluations / evaluate_s),
        "us_per_evaluation": round(evaluate_s / evaluations * 1e6),
        "snapshots_taken_per_s": round(rounds * len(snapshots) / add_s),
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def notification_latency(
    kafka: KafkaSettings, scratch: Path, cycles: int, records: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Latency of ``cycles`` notifications, then the delivery throughput of ``records``."""
    receiver = RecordingReceiver()
    alerts_file = write_alerts_file(
        scratch / "alerts.yaml",
        receivers=[
            {"name": "console", "kind": "console"},
            {"name": "hook", "kind": "chat", "url": "http://127.0.0.1:1/unused"},
        ],
        routes=[{"receivers": ["hook"]}],
        for_="0s",
    )
    text = alerts_file.read_text().replace("http://127.0.0.1:1/unused", f"{receiver.url}/hook")
    alerts_file.write_text(text)
    settings = AlertsSettings(
        http_port=free_port(), file=alerts_file, clock="event", kafka=kafka, log_level="WARNING"
    )
    await ensure_topics(kafka, [KPI_SNAPSHOTS])
    await publish_snapshots(kafka, on_target(T0))
    latencies: list[float] = []
    async with receiver.running(), running_app(create_app(settings)):
        for cycle in range(1, cycles + 1):
            at = T0 + timedelta(days=cycle)
            behind = cycle % 2 == 1
            snapshots = on_target(at, jobs_created={"sum": 100}) if behind else on_target(at)
            seen = len(receiver.requests)
            started = time.perf_counter()
            await publish_snapshots(kafka, snapshots)
            await receiver.wait_for(_more_than(seen), timeout=60)
            latencies.append(receiver.requests[seen].monotonic - started)
        delivery = await delivery_throughput(kafka, receiver, records)
    return {"cycles": cycles, **_percentiles(latencies)}, delivery


def _more_than(count: int) -> Callable[[list[Received]], bool]:
    return lambda requests: len(requests) > count


async def delivery_throughput(
    kafka: KafkaSettings, receiver: RecordingReceiver, count: int
) -> dict[str, Any]:
    before = len(receiver.accepted())
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    topic = kafka.topic_name(ALERT_TRANSITIONS)
    now = datetime.now(UTC)
    started = time.perf_counter()
    try:
        sends = []
        for n in range(count):
            labels = {
                "alertname": AlertName.TARGET_BEHIND.value,
                "indicator": f"bench_{n % 50}",
                "severity": "warning",
                "owner": "bench",
                "roadmap": "bench",
            }
            record = AlertTransition(
                alertname=AlertName.TARGET_BEHIND,
                state=AlertState.FIRING,
                labels=labels,
                annotations={"summary": f"bench {n}"},
                since=now,
                started_at=now,
                at=now,
                dedup_key=f"bench-{n}",
            )
            sends.append(
                await producer.send(topic, record.model_dump_json().encode(), key=alert_key(labels))
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    await receiver.wait_for(lambda _: len(receiver.accepted()) - before >= count, timeout=600)
    seconds = time.perf_counter() - started
    return {
        "notifications": count,
        "seconds": round(seconds, 1),
        "notifications_per_s": round(count / seconds),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "alerts",
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
    }
    say("bench-alerts: pure evaluation")
    result["evaluation"] = pure_rates(args.evaluations)
    say(f"  {result['evaluation']}")
    with (
        tempfile.TemporaryDirectory(prefix="bench-alerts-") as scratch,
        EmbeddedBroker(free_port(), log_path=Path(scratch) / "broker.log") as broker,
    ):
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            topic_prefix="bench.",
            enable_idempotence=False,  # the embedded broker refuses it
        )
        say(f"bench-alerts: {args.cycles} fire/resolve cycles, then {args.records} records")
        latency, delivery = await notification_latency(
            kafka, Path(scratch), args.cycles, args.records
        )
        result["notification_latency"] = latency
        result["delivery"] = delivery
        say(f"  {latency}\n  {delivery}")
    write_table(result, args.out)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=40, help="fire/resolve notifications")
    parser.add_argument("--records", type=int, default=2000, help="for delivery throughput")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
