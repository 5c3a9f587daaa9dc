"""Apache Kafka from its own jars: the pinned version, its cached classpath, and a KRaft broker
on loopback.

The version is pinned once, in ``deploy/kafka/pom.xml``. ``make kafka`` (or the first broker
that needs them) copies the jars with Maven into ``$ROADMAP_KAFKA_CACHE`` (default
``~/.cache/roadmap-monitor/kafka-<version>``); after that nothing is fetched again. Used by
``roadmap-monitor broker --engine kafka``, ``roadmap-monitor dev --engine kafka`` and the test
tiers. The broker is one process per node, formatted in a temporary folder that ``stop()``
removes; like the embedded broker it gets SIGTERM if its parent dies.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from services.common.embedded_broker import die_with_parent, free_port
from services.common.kafka_probe import kafka_request

KAFKA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
POM = KAFKA_DIR / "pom.xml"
SHARED_PROPERTIES = KAFKA_DIR / "broker.properties"
_COMPLETE = ".complete"
_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""

TEST_TUNING = {
    # A group forms at once instead of waiting 3 s for more members.
    "group.initial.rebalance.delay.ms": "0",
    # The tests' consumers use a 2 s session so a killed member is dropped quickly (default
    # minimum 6 s).
    "group.min.session.timeout.ms": "1000",
    # The log cleaner looks for work every 100 ms (default 15 s), with a small buffer.
    "log.cleaner.backoff.ms": "100",
    "log.cleaner.dedupe.buffer.size": "16777216",
    "log.initial.task.delay.ms": "0",
}
"""Broker settings for tests and a developer's broker: faster, never for production."""


class ApacheKafkaError(RuntimeError):
    """Apache Kafka could not be set up or did not come up; the message says what to do."""


def kafka_version(pom: Path = POM) -> str:
    """The pinned Apache Kafka version: ``kafka.version`` in ``deploy/kafka/pom.xml``."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(pom).getroot()  # noqa: S314 - the repository's own pom
    found = root.find("m:properties/m:kafka.version", namespace)
    if found is None or not found.text:
        raise ApacheKafkaError(f"{pom} has no kafka.version property")
    return found.text.strip()


def jars_dir(version: str | None = None) -> Path:
    """Where the jars of ``version`` (the pinned one by default) are cached."""
    root = os.environ.get("ROADMAP_KAFKA_CACHE")
    base = (
        Path(root)
        if root
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "roadmap-monitor"
    )
    return base / f"kafka-{version or kafka_version()}"


def jars_cached() -> bool:
    return (jars_dir() / _COMPLETE).is_file()


def fetch_jars(*, quiet: bool = True) -> Path:
    """Copy the pom's jars into the cache unless they are there; return the folder.

    Raises ``ApacheKafkaError`` saying what to install or run when Maven is missing or fails.
    """
    target = jars_dir()
    if (target / _COMPLETE).is_file():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ApacheKafkaError(
            "Apache Kafka's jars are not cached and Maven is missing: install Maven "
            "(apt-get install maven) and run `make kafka`"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    command = [
        mvn,
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=quiet, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (result.stdout or "").strip().splitlines()[-1:] if quiet else []
        raise ApacheKafkaError(
            f"Maven could not resolve Apache Kafka {kafka_version()} from {POM} "
            f"(exit {result.returncode}{': ' + detail[0] if detail else ''}): "
            "check that Maven Central is reachable and run `make kafka`"
        )
    (staging / _COMPLETE).write_text(kafka_version() + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def java_command() -> str:
    """The ``java`` to run Kafka with (``$JAVA_HOME/bin/java``, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise ApacheKafkaError(
            "Apache Kafka needs Java 17 or newer and no `java` is on PATH: install a JDK "
            "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return found


def classpath() -> str:
    return str(fetch_jars() / "*")


def tool_command(main_class: str, *args: str) -> list[str]:
    """argv that runs one of Kafka's command-line tools (by main class) from the cached jars."""
    return [java_command(), "-Xmx256m", "-cp", classpath(), main_class, *args]


def metadata_brokers(host: str, port: int, timeout: float = 1.0) -> int:
    """How many live brokers ``host:port`` lists in a Metadata (v1) response; 0 on no answer.

    A KRaft broker lists itself only once it has registered with the controller and been
    unfenced: then it takes topic creation and produce requests.
    """
    try:  # Metadata v1 with an empty topic array: the brokers and the controller only
        answer = kafka_request(host, port, 3, 1, struct.pack(">i", 0), timeout=timeout)
    except OSError:
        return 0
    (brokers,) = struct.unpack(">i", answer[:4])
    return int(brokers)


BIND_ATTEMPTS = 3


class PortTaken(ApacheKafkaError):
    """A node could not bind a port picked for it: another process took it meanwhile."""


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One node's ports: clients connect to ``client_port`` (the CLIENT listener, advertised as
    ``advertised``); the nodes replicate over INTERNAL and vote over CONTROLLER."""

    node_id: int
    client_port: int
    internal_port: int
    controller_port: int
    directory: Path
    advertised: str

    @property
    def data_dir(self) -> Path:
        """``log.dirs``: a ``<topic>-<partition>`` folder of segments per partition replica."""
        return self.directory / "data"


class KafkaBroker:
    """A KRaft Apache Kafka of ``nodes`` nodes (each broker and controller) on ``host``.

    ``port`` is the first node's client port (free ports when None). ``start()`` returns the
    bootstrap address once every node answers a metadata request listing all of them; ``stop()``
    ends every node (SIGTERM, then SIGKILL after ``stop_timeout``) and removes the folder.
    ``properties`` are added to every node's configuration (after the shared file and
    ``TEST_TUNING``). ``advertised`` gives, node by node, the ``host:port`` clients are told to
    use instead of the node's own (a proxy in front of it, in the fault tests); the nodes reach
    each other directly. Usable as a context manager.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        nodes: int = 1,
        host: str = "127.0.0.1",
        properties: dict[str, str] | None = None,
        heap: str = "512m",
        startup_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        log_path: Path | None = None,
        log_level: str = "WARN",
        advertised: Sequence[str] = (),
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.host = host
        self.node_count = nodes
        self.first_port = port
        self.properties = dict(properties or {})
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_path = log_path
        self.log_level = log_level
        self.advertised = tuple(advertised)
        self.version = kafka_version()
        self.nodes: list[KafkaNode] = []
        self._root: Path | None = None
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: dict[int, IO[bytes]] = {}

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.advertised for node in self.nodes)

    @property
    def folder(self) -> Path | None:
        """Where the nodes keep their configuration, data and logs while running."""
        return self._root

    @property
    def description(self) -> str:
        return f"Apache Kafka {self.version}"

    def pids(self) -> dict[int, int]:
        """Each running node's process id, by node id."""
        return {n: p.pid for n, p in self._processes.items() if p.poll() is None}

    def start(self) -> str:
        """Format and start every node, wait until each answers; return the bootstrap address.

        The nodes' replication and controller ports are free ones picked here; another process
        can take one between the pick and the node's bind (parallel test workers did). A node
        that stops on a port already in use is started again, with the whole cluster on newly
        picked ports, up to ``BIND_ATTEMPTS`` times."""
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                return self._start_once()
            except PortTaken:
                if attempt == BIND_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> str:
        java = java_command()
        jars = classpath()
        self._root = Path(tempfile.mkdtemp(prefix="roadmap-kafka-"))
        try:
            self.nodes = self._plan(self._root)
            cluster_id = _cluster_id()
            for node in self.nodes:
                config = self._write_config(node)
                self._format(java, jars, node, config, cluster_id)
            for node in self.nodes:
                self._launch(java, jars, node)
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self.bootstrap_servers

    def _plan(self, root: Path) -> list[KafkaNode]:
        planned = []
        for index in range(self.node_count):
            if self.first_port is not None:
                client = self.first_port + index
                if metadata_brokers(self.host, client, timeout=0.3) or _listening(
                    self.host, client
                ):
                    raise ApacheKafkaError(f"port {self.host}:{client} is already in use")
            else:
                client = free_port(self.host)
            directory = root / f"node-{index + 1}"
            (directory / "data").mkdir(parents=True)
            advertised = (
                self.advertised[index] if index < len(self.advertised) else f"{self.host}:{client}"
            )
            internal, controller = free_port(self.host), free_port(self.host)
            planned.append(
                KafkaNode(index + 1, client, internal, controller, directory, advertised)
            )
        return planned

    def _write_config(self, node: KafkaNode) -> Path:
        voters = ",".join(f"{n.node_id}@{self.host}:{n.controller_port}" for n in self.nodes)
        replicas = str(min(3, self.node_count))
        min_isr = str(min(2, self.node_count))
        own = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"CLIENT://{self.host}:{node.client_port},"
            f"INTERNAL://{self.host}:{node.internal_port},"
            f"CONTROLLER://{self.host}:{node.controller_port}",
            "advertised.listeners": f"CLIENT://{node.advertised},"
            f"INTERNAL://{self.host}:{node.internal_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "INTERNAL",
            "listener.security.protocol.map": "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,"
            "CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
        }
        lines = [SHARED_PROPERTIES.read_text(), "# this node, and the tests' tuning"]
        lines += [
            f"{key}={value}" for key, value in {**own, **TEST_TUNING, **self.properties}.items()
        ]
        config = node.directory / "server.properties"
        config.write_text("\n".join(lines) + "\n")
        (node.directory / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        return config

    def _format(self, java: str, jars: str, node: KafkaNode, config: Path, cluster_id: str) -> None:
        command = [java, "-Xmx256m", "-cp", jars, "kafka.tools.StorageTool", "format"]
        command += [f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise ApacheKafkaError(
                f"formatting node {node.node_id} failed: {last[0] if last else 'no output'}"
            )

    def _launch(self, java: str, jars: str, node: KafkaNode) -> None:
        log4j = node.directory / "log4j2.properties"
        command = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            jars,
            "kafka.Kafka",
            str(node.directory / "server.properties"),
        ]
        log_file = (
            self.log_path.with_name(f"{self.log_path.stem}-{node.node_id}{self.log_path.suffix}")
            if self.log_path is not None and self.node_count > 1
            else self.log_path
        ) or node.directory / "broker.log"
        if node.node_id in self._logs:  # a restart: the log goes on in the same file
            self._logs[node.node_id].close()
        self._logs[node.node_id] = log_file.open("ab")
        self._processes[node.node_id] = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._logs[node.node_id],
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            start_new_session=True,
        )

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            for node_id, process in self._processes.items():
                if process.poll() is not None:
                    why = self._last_error(node_id)
                    error = PortTaken if "Address already in use" in why else ApacheKafkaError
                    raise error(
                        f"Kafka node {node_id} exited with code {process.returncode} during "
                        f"start-up{self._log_hint(node_id)}{': ' + why if why else ''}"
                    )
            if all(
                metadata_brokers(self.host, node.client_port, timeout=0.5) >= self.node_count
                for node in self.nodes
            ):
                return
            time.sleep(0.1)
        raise ApacheKafkaError(
            f"Apache Kafka did not answer on {self.bootstrap_servers} within "
            f"{self.startup_timeout:.0f}s{self._log_hint(self.nodes[0].node_id)}"
        )

    def kill_node(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one node (SIGKILL: it dies at once; SIGTERM: a controlled shutdown)
        and wait until it is gone; its data stays for ``restart_node``."""
        process = self._processes[node_id]
        process.send_signal(sig)
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart_node(self, node_id: int) -> None:
        """Start a stopped node again on its ports and data; return once the cluster answers."""
        if self._processes[node_id].poll() is None:
            raise ApacheKafkaError(f"node {node_id} is still running")
        node = next(n for n in self.nodes if n.node_id == node_id)
        self._launch(java_command(), classpath(), node)
        self._wait_until_up()

    def _last_error(self, node_id: int) -> str:
        """The last ERROR line of a node's log (it is removed with the folder on stop)."""
        log = self._logs.get(node_id)
        if log is None:
            return ""
        with contextlib.suppress(OSError):
            log.flush()
            lines = Path(log.name).read_text(errors="replace").splitlines()
            errors = [line.strip() for line in lines if "ERROR" in line or "Exception" in line]
            return errors[-1][-400:] if errors else ""
        return ""

    def _log_hint(self, node_id: int) -> str:
        log = self._logs.get(node_id)
        return f" (its log: {log.name})" if log is not None and self.log_path is not None else ""

    def stop(self) -> None:
        """Stop every node and remove the cluster's folder."""
        processes, self._processes = self._processes, {}
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs.values():
            with contextlib.suppress(OSError):
                log.close()
        self._logs.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def request_stop(self) -> None:
        """Ask every node to exit (SIGTERM) without waiting: safe inside a signal handler."""
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()

    def wait(self) -> int:
        """Block until a node exits; return its exit code."""
        if not self._processes:
            raise ApacheKafkaError("the broker is not running")
        while True:
            for process in self._processes.values():
                if process.poll() is not None:
                    return process.returncode
            time.sleep(0.2)

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (as
    ``kafka-storage random-uuid`` prints), without starting a JVM for it.

    Like Kafka's own ``Uuid.randomUuid``, draw again when the text starts with ``-``
    (one draw in 64): a command line would read such an id as an option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


if __name__ == "__main__":  # `make kafka`
    try:
        started = time.monotonic()
        cached = jars_cached()
        where = fetch_jars(quiet=False)
    except ApacheKafkaError as exc:
        sys.stderr.write(f"make kafka: {exc}\n")
        sys.exit(1)
    count = sum(1 for _ in where.glob("*.jar"))
    state = "already cached" if cached else f"resolved in {time.monotonic() - started:.1f} s"
    sys.stdout.write(f"Apache Kafka {kafka_version()}: {count} jars in {where} ({state})\n")
