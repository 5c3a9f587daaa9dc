"""``roadmap-monitor broker --engine kafka``: Apache Kafka from its jars, on one command.

It formats its storage in a temporary folder, prints the bootstrap address once the broker
answers a metadata request, and on Ctrl-C stops and leaves no process and no folder behind. A
missing ``java`` or jars that cannot be resolved give one clear line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from services.common.apache_kafka import jars_dir, kafka_version, metadata_brokers
from services.common.embedded_broker import free_port
from tests.support.services import CLI

STARTUP_TIMEOUT_S = 90.0


def _java_processes_on(port: int) -> list[str]:
    found = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [
        line for line in found.stdout.splitlines() if "kafka.Kafka" in line and str(port) in line
    ]


def _read_banner(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    lines: list[str] = []
    while time.monotonic() < deadline and len(lines) < 3:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    return lines


@pytest.mark.parametrize("nodes", [1, 3])
def test_broker_engine_kafka_answers_then_ctrl_c_leaves_nothing_behind(nodes: int) -> None:
    """The command prints Apache Kafka's bootstrap (every node's address) once each node lists
    all of them in a metadata response; SIGINT stops it with 0, no JVM and no folder left."""
    port = free_port()
    command = [str(CLI), "broker", "--engine", "kafka", "--port", str(port)]
    command += ["--nodes", str(nodes)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = _read_banner(process)
        assert banner, process.stderr.read() if process.stderr else "no output"
        nodes_word = f"{nodes} KRaft node{'s' if nodes > 1 else ''}"
        assert banner[0].startswith(f"Apache Kafka {kafka_version()} ({nodes_word}) ready on "), (
            banner
        )
        bootstrap = banner[1].split("KAFKA_BOOTSTRAP_SERVERS=")[1]
        addresses = bootstrap.split(",")
        assert len(addresses) == nodes
        assert addresses[0] == f"127.0.0.1:{port}"
        for address in addresses:
            host, node_port = address.split(":")
            assert metadata_brokers(host, int(node_port)) == nodes
        folder = Path(banner[0].split("(its data in ")[1].split(" removed when it stops")[0])
        assert folder.parent == Path(tempfile.gettempdir())
        assert (folder / "node-1" / "data" / "meta.properties").is_file()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        assert "received SIGINT, broker stopped" in process.stderr.read()
        for address in addresses:
            host, node_port = address.split(":")
            assert metadata_brokers(host, int(node_port)) == 0
        assert _java_processes_on(port) == []
        assert not folder.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _broker_refusal(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``broker --engine kafka`` run in ``env``, where it must refuse to start."""
    command = [str(CLI), "broker", "--engine", "kafka", "--port", str(free_port())]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_without_java_the_command_says_what_to_install(tmp_path: Path) -> None:
    """No ``java`` on PATH (and no JAVA_HOME): one line that names what to install."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(CLI.parent)
    result = _broker_refusal(env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("roadmap-monitor broker: Apache Kafka needs Java 17 or newer")
    assert "install a JDK" in lines[-1]
    assert "Traceback" not in result.stderr


def test_without_the_jars_or_maven_the_command_says_what_to_run(tmp_path: Path) -> None:
    """An empty jar cache and no Maven: one line saying to install Maven and run make kafka."""
    env = {**os.environ, "ROADMAP_KAFKA_CACHE": str(tmp_path / "cache")}
    java = Path(os.path.realpath(subprocess.check_output(["which", "java"], text=True).strip()))
    env["PATH"] = f"{CLI.parent}:{java.parent}"
    result = _broker_refusal(env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("roadmap-monitor broker: Apache Kafka's jars are not cached")
    assert "install Maven" in last
    assert "make kafka" in last
    assert not (tmp_path / "cache" / jars_dir().name).exists()


def test_a_port_taken_between_its_pick_and_the_node_s_bind_is_picked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parallel test workers pick free ports at the same time: a port can be taken between the
    pick and the node's bind. Here the first replication port picked is held by a listening
    socket; the node stops on it, and the cluster starts again on newly picked ports."""
    from services.common import apache_kafka

    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen()
    picks: list[int] = []

    def pick(host: str = "127.0.0.1") -> int:
        port = held.getsockname()[1] if len(picks) == 1 else free_port(host)  # 2nd: internal
        picks.append(port)
        return port

    monkeypatch.setattr(apache_kafka, "free_port", pick)
    try:
        with apache_kafka.KafkaBroker() as broker:
            node = broker.nodes[0]
            assert metadata_brokers("127.0.0.1", node.client_port) == 1
            assert held.getsockname()[1] not in (node.internal_port, node.controller_port)
        assert held.getsockname()[1] in picks
        assert len(picks) > 3, "the cluster was not planned again"
    finally:
        held.close()


def test_a_node_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every controller port picked is the held one: after its attempts, the error carries the
    node's own reason."""
    from services.common import apache_kafka

    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen()
    picks: list[int] = []

    def pick(host: str = "127.0.0.1") -> int:  # client, internal, controller, per plan
        port = held.getsockname()[1] if len(picks) % 3 == 2 else free_port(host)
        picks.append(port)
        return port

    monkeypatch.setattr(apache_kafka, "free_port", pick)
    try:
        with pytest.raises(apache_kafka.PortTaken, match="Address already in use"):
            apache_kafka.KafkaBroker().start()
    finally:
        held.close()
