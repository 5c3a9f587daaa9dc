"""``roadmap-monitor``: the one entry point for every process of the product."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from services.commands.broker import ENGINES, run_broker
from services.commands.run import run_service
from services.commands.validate import validate_events, validate_roadmap
from services.common.config import ConfigError, KafkaSettings, load_settings
from services.registry import SERVICES

DEFAULT_BROKER_PORT = 9092
DEFAULT_PORTS = {"ingest": 8001, "metrics": 8002, "alerts": 8003}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roadmap-monitor",
        description="Monitor the 2025-2029 cooperation roadmap from Kafka events.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    broker = commands.add_parser(
        "broker", help="run a broker: the embedded one (Tansu) or Apache Kafka (--engine kafka)"
    )
    broker.add_argument(
        "--engine",
        choices=ENGINES,
        default="embedded",
        help="embedded: Tansu, memory-only, no JVM; kafka: Apache Kafka from its jars (needs "
        "java; the jars are fetched once with Maven). Default: %(default)s",
    )
    broker.add_argument(
        "--nodes", type=int, default=1, choices=(1, 3), help="Apache Kafka nodes (default: 1)"
    )
    broker.add_argument(
        "--port", type=int, default=DEFAULT_BROKER_PORT, help="default: %(default)s"
    )
    broker.add_argument("--host", default="127.0.0.1", help="default: %(default)s")

    validate = commands.add_parser(
        "validate",
        help="check a roadmap file, or events (--events FILE.ndjson), against the contracts",
    )
    target = validate.add_mutually_exclusive_group(required=True)
    target.add_argument("file", nargs="?", type=Path, help="roadmap file, e.g. deploy/roadmap.yaml")
    target.add_argument(
        "--events", type=Path, metavar="FILE.ndjson", help="one JSON event per line"
    )

    run = commands.add_parser("run", help="run one service in the foreground")
    run.add_argument("service", choices=sorted(SERVICES))

    dev = commands.add_parser(
        "dev", help="run the whole system locally: embedded broker, services, demo feed"
    )
    dev.add_argument("--no-demo", action="store_true", help="no demo feed: publish your own")
    dev.add_argument("--broker-port", type=int, default=DEFAULT_BROKER_PORT)
    dev.add_argument(
        "--engine",
        choices=ENGINES,
        default="embedded",
        help="the broker: embedded (no JVM) or kafka (Apache Kafka). Default: %(default)s",
    )
    for name, port in DEFAULT_PORTS.items():
        dev.add_argument(f"--{name}-port", type=int, default=port, help="default: %(default)s")
    _demo_options(dev)

    demo = commands.add_parser(
        "demo", help="publish the demo story to the upstream topics (KAFKA_* settings)"
    )
    _demo_options(demo)

    publish = commands.add_parser("publish", help="send events from a file, one JSON per line")
    publish.add_argument("file", type=Path, metavar="FILE.ndjson")
    publish.add_argument("--via", choices=("http", "kafka"), default="http")
    publish.add_argument("--ingest-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['ingest']}")
    publish.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds: via kafka, to wait for outcomes; via http, to retry while ingest answers "
        "503 (not ready)",
    )

    token = commands.add_parser(
        "token", help="mint a bearer token for a publisher of the publishers file"
    )
    token.add_argument("name", metavar="NAME", help="the publisher, e.g. customs-kz")

    rules = commands.add_parser(
        "rules", help="write Prometheus rules generated from the roadmap and alerts files"
    )
    rules.add_argument("--roadmap", type=Path, default=Path("deploy/roadmap.yaml"))
    rules.add_argument("--alerts", type=Path, default=Path("deploy/alerts.yaml"))
    rules.add_argument(
        "--out", type=Path, default=Path("deploy/prometheus/rules/roadmap.rules.yml")
    )
    rules.add_argument("--check", action="store_true", help="exit 1 if the file is stale")

    dashboards = commands.add_parser(
        "dashboards", help="write the Grafana dashboards generated from the roadmap file"
    )
    dashboards.add_argument("--roadmap", type=Path, default=Path("deploy/roadmap.yaml"))
    dashboards.add_argument("--out", type=Path, default=Path("deploy/grafana/dashboards"))
    dashboards.add_argument("--check", action="store_true", help="exit 1 if a file is stale")

    status = commands.add_parser("status", help="the roadmap scorecard from the running services")
    status.add_argument("--metrics-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['metrics']}")
    status.add_argument("--alerts-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['alerts']}")
    report = commands.add_parser(
        "report", help="write the progress report (one HTML file) from the running services"
    )
    report.add_argument(
        "--at",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the report's date (default: the metrics service's evaluation day)",
    )
    report.add_argument(
        "--out", type=Path, default=Path("report.html"), help="the file to write (report.html)"
    )
    report.add_argument(
        "--metrics-url",
        action="append",
        default=None,
        help="a metrics replica; repeat for each replica (default: the local one)",
    )
    report.add_argument(
        "--alerts-url",
        default=f"http://127.0.0.1:{DEFAULT_PORTS['alerts']}",
        help="the alerts service (the report says so if it cannot be read)",
    )
    report.add_argument(
        "--roadmap",
        type=Path,
        default=Path("deploy/roadmap.yaml"),
        help="the indicators' definitions and the article's sentences",
    )
    return parser


def _demo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=2025, help="same seed, same story")
    parser.add_argument(
        "--speed", type=float, default=20.0, help="simulated days per second (default: 20)"
    )


def _validate(args: argparse.Namespace) -> int:
    if args.events is not None:
        return validate_events(args.events, sys.stdout, sys.stderr)
    return validate_roadmap(args.file, sys.stdout, sys.stderr)


def _dev(args: argparse.Namespace) -> int:
    from services.commands.dev import DevOptions, run_dev

    ports = {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS}
    options = DevOptions(
        args.broker_port, ports, not args.no_demo, args.seed, args.speed, engine=args.engine
    )
    return run_dev(options)


def _demo(args: argparse.Namespace) -> int:
    from services.commands.demo import run_demo

    return run_demo(args.seed, args.speed)


def _publish(args: argparse.Namespace) -> int:
    from services.commands.publish import run_publish

    return _with_settings(
        lambda kafka, token: run_publish(
            args.file,
            via=args.via,
            ingest_url=args.ingest_url,
            token=token,
            kafka=kafka,
            wait_s=args.wait,
            out=sys.stdout,
            err=sys.stderr,
        )
    )


def _status(args: argparse.Namespace) -> int:
    from services.commands.status import show_status

    return show_status(args.metrics_url, args.alerts_url, sys.stdout, sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from services.commands.report import run_report

    return run_report(
        metrics_urls=args.metrics_url or [f"http://127.0.0.1:{DEFAULT_PORTS['metrics']}"],
        alerts_url=args.alerts_url,
        roadmap_path=args.roadmap,
        at=args.at,
        out=args.out,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )


def _token(args: argparse.Namespace) -> int:
    from services.commands.token import mint_token

    return mint_token(args.name, sys.stdout, sys.stderr)


def _rules(args: argparse.Namespace) -> int:
    from services.commands.rules import run_rules

    return run_rules(args.roadmap, args.alerts, args.out, check=args.check, stdout=sys.stdout)


def _dashboards(args: argparse.Namespace) -> int:
    from services.commands.dashboards import run_dashboards

    return run_dashboards(args.roadmap, args.out, check=args.check, stdout=sys.stdout)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "broker": lambda args: run_broker(args.host, args.port, engine=args.engine, nodes=args.nodes),
    "run": lambda args: run_service(args.service),
    "validate": _validate,
    "dev": _dev,
    "demo": _demo,
    "publish": _publish,
    "status": _status,
    "report": _report,
    "token": _token,
    "rules": _rules,
    "dashboards": _dashboards,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the process exit code."""
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


def _with_settings(action: Callable[[KafkaSettings, str | None], int]) -> int:
    """Run ``action`` with the Kafka settings and ingest's token from the environment."""
    try:
        kafka = load_settings(KafkaSettings)
    except ConfigError as exc:
        sys.stderr.write(f"roadmap-monitor: {exc}\n")
        return 2
    return action(kafka, os.environ.get("INGEST_API_TOKEN") or None)


if __name__ == "__main__":
    sys.exit(main())
