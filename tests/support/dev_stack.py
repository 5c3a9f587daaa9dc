"""Run ``roadmap-monitor dev`` as a real process for a test, and look at what it left behind.

The stack runs in its own session (process group), like a terminal's foreground job, so a test
can send Ctrl-C to the whole group the way a terminal does, or a signal to ``dev`` alone the way
a service manager does. Whatever happens, the group is killed when the block ends.

Processes are found through ``/proc`` (no psutil here): the children of ``dev`` by their parent
id, and any process still tied to the test's ports by its command line or environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from services.common.embedded_broker import free_port
from tests.support.services import CLI, REPO

SERVICES = ("ingest", "metrics", "alerts")
BANNER_END = "stop             Ctrl-C"
ALL_DOWN = "broker stopped; everything is down"
_OWN_PREFIXES = ("KAFKA_", "INGEST_", "METRICS_", "ALERTS_", "ROADMAP_")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the project's own settings, plus ``extra``.

    So a ``KAFKA_BOOTSTRAP_SERVERS`` or ``INGEST_API_TOKEN`` set for other tests cannot leak
    into the stack or into the commands run against it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(extra)
    return env


@dataclass(frozen=True, slots=True)
class DevPorts:
    broker: int
    ingest: int
    metrics: int
    alerts: int

    @classmethod
    def choose(cls) -> DevPorts:
        """Four distinct ports that nobody listens on right now."""
        ports: list[int] = []
        while len(ports) < 4:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return cls(*ports)

    def all(self) -> tuple[int, ...]:
        return (self.broker, self.ingest, self.metrics, self.alerts)

    def of(self, service: str) -> int:
        port: int = getattr(self, service)
        return port

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.of(service)}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker}"

    def args(self) -> list[str]:
        return [
            "--broker-port",
            str(self.broker),
            *(a for s in SERVICES for a in (f"--{s}-port", str(self.of(s)))),
        ]


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    ppid: int
    state: str
    cmdline: str


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:  # gone, or not ours to read
        return None


def process_info(pid: int) -> ProcessInfo | None:
    """What ``/proc`` says about ``pid``; ``None`` once it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    cmdline = (_read(f"/proc/{pid}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace")
    return ProcessInfo(pid, int(fields[1]), fields[0].decode(), cmdline.strip())


def all_processes() -> list[ProcessInfo]:
    infos = (process_info(int(name)) for name in os.listdir("/proc") if name.isdigit())
    return [info for info in infos if info is not None]


def environ(pid: int) -> dict[str, str]:
    raw = _read(f"/proc/{pid}/environ") or b""
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def descendants(root: int) -> list[ProcessInfo]:
    """Every live process below ``root``, found by walking parent ids."""
    processes = all_processes()
    found: list[ProcessInfo] = []
    parents = {root}
    while True:
        new = [p for p in processes if p.ppid in parents and p not in found]
        if not new:
            return found
        found += new
        parents = {p.pid for p in new}


def still_running(recorded: ProcessInfo) -> bool:
    """True while the process recorded earlier lives (same pid and command line, not a zombie)."""
    now = process_info(recorded.pid)
    return now is not None and now.state != "Z" and now.cmdline == recorded.cmdline


def exit_times(processes: list[ProcessInfo], *, timeout: float) -> dict[int, float]:
    """Seconds from now until each process is gone (or a zombie), polled every 2 ms."""
    started = time.monotonic()
    gone: dict[int, float] = {}
    while len(gone) < len(processes) and time.monotonic() - started < timeout:
        for recorded in processes:
            if recorded.pid not in gone and not still_running(recorded):
                gone[recorded.pid] = time.monotonic() - started
        time.sleep(0.002)
    return gone


def processes_tied_to(ports: DevPorts) -> list[ProcessInfo]:
    """Live processes whose command line names the broker port or whose environment sets one of
    the service ports: what a leaked broker or service of this stack would look like."""
    broker = f"127.0.0.1:{ports.broker}"
    wanted = {f"{s.upper()}_HTTP_PORT": str(ports.of(s)) for s in SERVICES}
    tied = []
    for info in all_processes():
        if info.pid == os.getpid() or info.state == "Z":
            continue
        if broker in info.cmdline:
            tied.append(info)
            continue
        env = environ(info.pid)
        if any(env.get(key) == value for key, value in wanted.items()):
            tied.append(info)
    return tied


def port_is_free(port: int) -> bool:
    """True when a listening socket could be bound to ``127.0.0.1:port`` now.

    ``SO_REUSEADDR`` as every server sets it: connections in TIME_WAIT do not count, a socket
    still listening (on 127.0.0.1 or 0.0.0.0) does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            return False
    return True


class DevProcess:
    """``roadmap-monitor dev`` in its own session, stdout and stderr to ``log_path``."""

    def __init__(self, ports: DevPorts, log_path: Path, *extra_args: str) -> None:
        self.ports = ports
        self.log_path = log_path
        self.argv = [str(CLI), "dev", *ports.args(), *extra_args]
        self.started = time.monotonic()
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=clean_env(PYTHONUNBUFFERED="1"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for(self, pattern: str, *, timeout: float, after: int = 0) -> re.Match[str]:
        """The first match of the regex ``pattern`` in the log at or after offset ``after``.

        Fails with the log's tail if ``dev`` exits first or ``timeout`` seconds pass.
        """
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.text(), after)
            if match is not None:
                return match
            code = self.process.poll()
            if code is not None:
                raise AssertionError(
                    f"dev exited with code {code} before {pattern!r} appeared:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} did not appear within {timeout:g}s:\n{self.tail()}"
                )
            time.sleep(0.2)

    def children(self) -> list[ProcessInfo]:
        return descendants(self.pid)

    def send(self, signum: signal.Signals, *, group: bool) -> None:
        """``signum`` to ``dev`` alone, or to its whole process group (a terminal's Ctrl-C)."""
        if group:
            os.killpg(self.pid, signum)
        else:
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or ``None`` if ``dev`` is still running after ``timeout`` seconds."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(timeout=timeout)
        return None

    def kill_group(self) -> None:
        """SIGKILL the whole group if anything of it is left (idempotent)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@contextlib.contextmanager
def running_dev(ports: DevPorts, log_path: Path, *extra_args: str) -> Iterator[DevProcess]:
    """Start ``dev``; whatever the test does, kill its process group at the end."""
    dev = DevProcess(ports, log_path, *extra_args)
    try:
        yield dev
    finally:
        dev.kill_group()


def counters(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of counter ``name`` (without ``_total``) by their sorted labels."""
    values = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_total":
                values[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def counter_sum(text: str, name: str, **labels: str) -> float:
    """The sum of counter ``name`` over the samples whose labels include ``labels``."""
    return sum(
        value
        for key, value in counters(text, name).items()
        if all((label, want) in key for label, want in labels.items())
    )


def gauge(text: str, name: str, **labels: str) -> float | None:
    """The value of gauge ``name`` with exactly these ``labels``, if present."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and dict(sample.labels) == labels:
                return float(sample.value)
    return None
