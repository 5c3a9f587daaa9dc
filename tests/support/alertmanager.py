"""A real Alertmanager for a test: Debian's ``prometheus-alertmanager`` binary on loopback.

``running_alertmanager(config, workdir)`` writes ``config`` (a dict, dumped as YAML) to
``workdir``, starts the binary with its storage and log in ``workdir``, clustering off
(``--cluster.listen-address=``) and a free loopback port, waits until ``GET /-/ready`` answers
200, and stops it at the end (SIGTERM, then SIGKILL). Nothing here imitates Alertmanager: the
test talks to the real binary over its HTTP API v2.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.common.embedded_broker import die_with_parent, free_port

BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = (
    "the e2e tier needs a real Alertmanager binary: install Debian's package with "
    "'sudo apt-get install prometheus-alertmanager' (or run 'make e2e-tools'), or put "
    "'alertmanager' on PATH"
)


class AlertmanagerNotFoundError(RuntimeError):
    """Neither ``prometheus-alertmanager`` nor ``alertmanager`` is on PATH."""


class AlertmanagerStartError(RuntimeError):
    """The binary exited or never became ready; the message carries the end of its log."""


def find_alertmanager() -> str:
    """The path of the Alertmanager binary; ``AlertmanagerNotFoundError`` says how to install it."""
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise AlertmanagerNotFoundError(INSTALL_HINT)


@dataclass(frozen=True, slots=True)
class RunningAlertmanager:
    """An Alertmanager process answering on ``url`` (``http://127.0.0.1:<port>``)."""

    url: str
    pid: int
    config_path: Path
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the process's log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def alerts(self, **filters: str | bool) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` with the given query parameters (e.g. ``active=True``)."""
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items()}
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            response = await client.get("/api/v2/alerts", params=params)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    async def alert_groups(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts/groups``: the alerts as the route tree groups them."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            response = await client.get("/api/v2/alerts/groups")
        response.raise_for_status()
        groups: list[dict[str, Any]] = response.json()
        return groups


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise AlertmanagerStartError(
                    f"alertmanager exited with {code} before it was ready; its log "
                    f"({log_path}) ends:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            try:
                response = client.get("/-/ready")
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            time.sleep(0.1)
    raise AlertmanagerStartError(
        f"alertmanager at {url} not ready after {timeout}s ({last}); its log ({log_path}) "
        f"ends:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def running_alertmanager(
    config: Mapping[str, Any],
    workdir: Path,
    *,
    retention: str = "1h",
    startup_timeout: float = 30.0,
    stop_timeout: float = 10.0,
) -> Iterator[RunningAlertmanager]:
    """Run Alertmanager with ``config`` until the block ends; yield it once ``/-/ready`` is 200.

    ``workdir`` gets ``alertmanager.yml``, ``data/`` (``--storage.path``) and
    ``alertmanager.log`` (its stdout and stderr, kept after the test for diagnosis).
    """
    binary = find_alertmanager()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    storage = workdir / "data"
    storage.mkdir(exist_ok=True)
    log_path = workdir / "alertmanager.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        f"--data.retention={retention}",
        "--log.level=debug",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
    try:
        _wait_ready(url, process, log_path, startup_timeout)
        yield RunningAlertmanager(url, process.pid, config_path, log_path)
    finally:
        _stop(process, stop_timeout)
