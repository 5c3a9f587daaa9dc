"""Run a service for a test: in-process (``running_app``) or as a real process (``spawn_service``).

Every test gets its own ``KAFKA_TOPIC_PREFIX`` so services under test never share topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx

from services.common.runtime import ServiceApp, serve

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("roadmap-monitor")


async def wait_ready(base_url: str, *, timeout: float = 60.0) -> httpx.Response:
    """Poll ``/readyz`` until it answers 200; raise ``TimeoutError`` with the last answer."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with httpx.AsyncClient(base_url=base_url, timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get("/readyz")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            else:
                if response.status_code == 200:
                    return response
                last = response.text
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{base_url}/readyz not ready after {timeout}s: {last}")


@contextlib.asynccontextmanager
async def running_app(app: ServiceApp, *, timeout: float = 60.0) -> AsyncIterator[str]:
    """Serve ``app`` in this event loop until the block ends; yield its base URL once ready."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, stop), name=f"test-{app.name}")
    base_url = f"http://127.0.0.1:{app.settings.http_port}"
    try:
        await asyncio.wait_for(app.started.wait(), timeout=timeout)
        await wait_ready(base_url, timeout=timeout)
        yield base_url
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@contextlib.contextmanager
def spawn_service(
    name: str, env: Mapping[str, str], *, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``roadmap-monitor run NAME`` as a child; kill it if the test leaves it running."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(CLI), "run", name],
            env={**os.environ, **env},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
