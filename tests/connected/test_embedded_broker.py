"""The embedded broker: starts answering Kafka, stops cleanly, never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.common.embedded_broker import EmbeddedBroker, free_port, kafka_answers

pytestmark = pytest.mark.embedded  # what `make dev` runs on

REPO = Path(__file__).parents[2]
CLI = str(Path(sys.executable).with_name("roadmap-monitor"))


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def _wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_broker_answers_kafka_then_stops_and_frees_its_port(tmp_path: Path) -> None:
    """start() returns once ApiVersions is answered; stop() ends the process, freeing the port."""
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    pid = broker.pid
    assert pid is not None
    assert kafka_answers(broker.host, broker.port)
    assert broker.stop() is not None
    assert _gone(pid)
    assert not kafka_answers(broker.host, broker.port)


def test_broker_is_not_left_behind_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the process that started the broker takes the broker down with it."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from services.common.embedded_broker import EmbeddedBroker\n"
        f"b = EmbeddedBroker(log_path=Path({str(tmp_path / 'tansu.log')!r}))\n"
        "b.start()\n"
        "print(b.pid, b.port, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE)
    assert parent.stdout is not None
    broker_pid, port = (int(x) for x in parent.stdout.readline().split())
    assert kafka_answers("127.0.0.1", port)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_until(lambda: _gone(broker_pid), timeout=10), (
        f"broker {broker_pid} outlived parent"
    )
    assert not kafka_answers("127.0.0.1", port)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_broker_runs_until_signalled(stop_signal: signal.Signals) -> None:
    """`roadmap-monitor broker --port N` reports readiness, serves Kafka, exits 0 on a signal."""
    port = free_port()
    process = subprocess.Popen(
        [CLI, "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "error"},
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready.startswith(f"embedded broker ready on 127.0.0.1:{port}"), ready
        assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}" in process.stdout.readline()
        assert kafka_answers("127.0.0.1", port)
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
        assert not kafka_answers("127.0.0.1", port)
    finally:
        if process.poll() is None:  # a failed assertion must not leave the broker running
            process.kill()
            process.wait()


def test_cli_broker_refuses_a_port_already_serving_kafka(tmp_path: Path) -> None:
    """A second broker on a busy port fails fast with a clear message instead of hanging."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as running:
        result = subprocess.run(
            [CLI, "broker", "--port", str(running.port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert "already answers Kafka" in result.stderr
