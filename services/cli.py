"""``roadmap-monitor``: the one entry point for every process of the product."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from services.commands.broker import run_broker
from services.commands.run import run_service
from services.commands.validate import validate_events, validate_roadmap
from services.registry import SERVICES

DEFAULT_BROKER_PORT = 9092


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roadmap-monitor",
        description="Monitor the 2025-2029 cooperation roadmap from Kafka events.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    broker = commands.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu)")
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

    commands.add_parser("dev", help="run the whole system locally (embedded broker and services)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "broker":
        return run_broker(args.host, args.port)
    if args.command == "run":
        return run_service(args.service)
    if args.command == "validate":
        if args.events is not None:
            return validate_events(args.events, sys.stdout, sys.stderr)
        return validate_roadmap(args.file, sys.stdout, sys.stderr)
    if args.command == "dev":
        sys.stdout.write(
            "roadmap-monitor dev: the one-command stack arrives with its own issue.\n"
            "Until then, in four terminals:\n"
            "  roadmap-monitor broker         # embedded broker on 127.0.0.1:9092\n"
            "  roadmap-monitor run ingest     # POST events to http://127.0.0.1:8001/v1/events\n"
            "  roadmap-monitor run metrics    # progress at http://127.0.0.1:8002/metrics\n"
            "  roadmap-monitor run alerts     # alerts in its log, http://127.0.0.1:8003/v1/alerts\n"
        )
        return 0
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
