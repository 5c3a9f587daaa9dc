"""``roadmap-monitor broker``: run the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from services.common.embedded_broker import EmbeddedBroker, EmbeddedBrokerError


def run_broker(host: str, port: int) -> int:
    """Start Tansu on ``host:port``, report readiness, and stop it on SIGINT/SIGTERM."""
    broker = EmbeddedBroker(port, host=host)

    def _stop(signum: int, _: FrameType | None) -> None:
        sys.stderr.write(f"received {signal.Signals(signum).name}, stopping the broker\n")
        broker.stop()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            bootstrap = broker.start()
        except EmbeddedBrokerError as exc:
            sys.stderr.write(f"roadmap-monitor broker: {exc}\n")
            return 1
        sys.stdout.write(
            f"embedded broker ready on {bootstrap} (memory-only: topics vanish when it stops)\n"
            f"  export KAFKA_BOOTSTRAP_SERVERS={bootstrap}\n"
            "  stop with Ctrl-C\n"
        )
        sys.stdout.flush()
        try:
            code = broker.wait()
        except EmbeddedBrokerError:  # stopped by a signal while waiting
            return 0
        sys.stderr.write(f"the broker exited on its own with code {code}\n")
        return 1 if code else 0
    finally:
        broker.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
