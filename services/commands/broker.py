"""``roadmap-monitor broker``: run a broker in the foreground, embedded (Tansu) or Apache Kafka."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Literal

from services.common.apache_kafka import ApacheKafkaError, KafkaBroker
from services.common.embedded_broker import EmbeddedBroker, EmbeddedBrokerError

Engine = Literal["embedded", "kafka"]
ENGINES: tuple[Engine, ...] = ("embedded", "kafka")


def run_broker(host: str, port: int, *, engine: Engine = "embedded", nodes: int = 1) -> int:
    """Start the broker on ``host:port``, report readiness, and stop it on SIGINT/SIGTERM."""
    if engine == "embedded" and nodes != 1:
        sys.stderr.write("roadmap-monitor broker: --nodes needs --engine kafka\n")
        return 2
    broker: EmbeddedBroker | KafkaBroker
    if engine == "kafka":
        broker = KafkaBroker(port, host=host, nodes=nodes)
        what = f"Apache Kafka {broker.version} ({nodes} KRaft node{'s' if nodes > 1 else ''})"
        note = "its data in a temporary folder removed when it stops"
    else:
        broker = EmbeddedBroker(port, host=host)
        what, note = "embedded broker", "memory-only: topics vanish when it stops"
    stopping: list[int] = []

    def _stop(signum: int, _: FrameType | None) -> None:
        # Only signal the child here; the main thread's wait() sees it exit and cleans up.
        stopping.append(signum)
        broker.request_stop()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            if engine == "kafka":
                sys.stderr.write(f"starting {what} on {host}...\n")
            bootstrap = broker.start()
            if isinstance(broker, KafkaBroker):
                note = note.replace("a temporary folder", f"{broker.folder}")
        except (EmbeddedBrokerError, ApacheKafkaError) as exc:
            sys.stderr.write(f"roadmap-monitor broker: {exc}\n")
            return 1
        sys.stdout.write(
            f"{what} ready on {bootstrap} ({note})\n"
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
