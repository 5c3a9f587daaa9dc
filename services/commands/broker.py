"""``roadmap-monitor broker``: run the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from services.common.embedded_broker import EmbeddedBroker, EmbeddedBrokerError


def run_broker(host: str, port: int) -> int:
    """Start Tansu on ``host:port``, report readiness, and stop it on SIGINT/SIGTERM."""
    broker = EmbeddedBroker(port, host=host)
    stopping: list[int] = []

    def _stop(signum: int, _: FrameType | None) -> None:
        # Only signal the child here; the main thread's wait() sees it exit and cleans up.
        stopping.append(signum)
        broker.request_stop()

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
        code = broker.wait()
        if stopping:
            sys.stderr.write(f"received {signal.Signals(stopping[0]).name}, broker stopped\n")
            return 0
        sys.stderr.write(f"the broker exited on its own with code {code}\n")
        return 1
    finally:
        broker.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
