"""A real HTTP receiver for notifications: it listens on loopback, records every request, and
answers what the test scripts (e.g. 503 for a while, then 200).

It is the other end of a webhook, not a mock of the code under test: requests arrive over TCP
from the service's own HTTP client, and signatures are checked here with ``hmac`` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common.embedded_broker import free_port

Answer = tuple[int, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What this receiver answered."""
    monotonic: float

    def json(self) -> Any:
        return json.loads(self.body)

    def signature_valid(self, secret: bytes, header: str = "x-roadmap-signature") -> bool:
        expected = "sha256=" + hmac.new(secret, self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get(header, ""))


def always(status: int = 200, headers: dict[str, str] | None = None) -> Callable[[int], Answer]:
    return lambda _: (status, headers or {})


@dataclass
class RecordingReceiver:
    """Answers request number ``n`` (0-based, over all paths) with ``answer(n)``."""

    answer: Callable[[int], Answer] = field(default_factory=always)
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self, path: str | None = None) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300 and path in (None, r.path)]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status, headers = self.answer(len(self.requests))
        self.requests.append(
            Received(request.url.path, dict(request.headers), body, status, time.monotonic())
        )
        return Response(status_code=status, headers=headers)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on 127.0.0.1 until the block ends; yields the base URL."""
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "PUT"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        try:
            yield self.url
        finally:
            server.should_exit = True
            await task

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], *, timeout: float = 60.0
    ) -> list[Received]:
        """Wait until ``predicate(requests)`` holds; raise ``TimeoutError`` saying what came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.requests):
                return self.requests
            await asyncio.sleep(0.1)
        seen = [(r.path, r.status) for r in self.requests]
        raise TimeoutError(f"receiver condition not met in {timeout}s; requests: {seen}")
