"""A loopback TCP proxy a test can cut and restore, and a broker reachable only through it.

``TcpProxy`` forwards ``127.0.0.1:port`` to an upstream address from its own thread (its own
event loop), so it keeps forwarding whatever the test's event loop is doing. ``cut()`` closes
every open connection (a reset) and stops listening, so new connections are refused at once;
``restore()`` listens again on the same port. While cut, the port stays bound (not listening),
so no other socket on the machine can take it and a connection attempt gets a refusal, as from
a host whose broker is down.

``proxied_broker`` runs a dedicated Apache Kafka node whose client listener *advertises the
proxy's port*: Kafka clients bootstrap through the proxy and reconnect to the advertised address
from the metadata, so every connection of every client (services under test and the test's own
producers and consumers) goes through the proxy. Cutting the proxy is then a broker outage as
clients see it (a host that went down), while the broker keeps running and loses nothing.

``rewrite_to_client``, when set (from any thread), is given every Kafka response frame (without
its 4-byte size) on its way to a client and returns the frame to forward: a test corrupts a
record batch on the wire with it, and sets it back to ``None`` to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from services.common.apache_kafka import KafkaBroker

T = TypeVar("T")

_CHUNK = 256 * 1024
_PORTS_OUTSIDE_EPHEMERAL = (20_000, 32_000)
"""Where proxy ports are chosen: below Linux's ephemeral range (32768-60999), so an outgoing
connection of some other client never picks the port as its own local port while it is cut."""


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def reserve_port(host: str = "127.0.0.1") -> tuple[int, socket.socket]:
    """A port outside the ephemeral range and a bound (not listening) socket holding it."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(*_PORTS_OUTSIDE_EPHEMERAL)
        try:
            return port, _bound_socket(host, port)
        except OSError:
            continue
    raise RuntimeError("no free port outside the ephemeral range")


@dataclass
class ProxyStats:
    """What the proxy has seen, for the test's report."""

    accepted: int = 0
    """Connections accepted and forwarded."""
    reset_by_cut: int = 0
    """Open connections closed by ``cut()``."""
    upstream_failures: int = 0
    """Accepted connections whose upstream could not be reached (closed at once)."""
    bytes_to_upstream: int = 0
    bytes_to_client: int = 0


class TcpProxy:
    """Forwards ``host:port`` to ``upstream``; ``cut()`` and ``restore()`` from any thread.

    Starts cut when ``listening=False``: the port is held but refuses connections until
    ``restore()``.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.host = host
        held: socket.socket
        if port is None:
            self.port, held = reserve_port(host)
        else:
            self.port, held = port, _bound_socket(host, port)
        self.stats = ProxyStats()
        self.rewrite_to_client: Callable[[bytes], bytes] | None = None
        self.requests: Counter[tuple[int, int]] | None = None
        """Set to a ``Counter`` to count every request frame by (API key, version)."""
        self._held_sock: socket.socket | None = held
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.WriteTransport] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True
        )
        self._started = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        return self._call(self._count_open())

    def start(self, *, listening: bool = True) -> None:
        """Start the proxy's thread; listen at once unless ``listening`` is False."""
        if self._started:
            raise RuntimeError("the proxy is already started")
        self._started = True
        self._thread.start()
        if listening:
            self.restore()

    def cut(self) -> int:
        """Stop listening (new connections are refused) and close every open connection.

        Returns how many open connections were closed.
        """
        return self._call(self._cut())

    def restore(self) -> None:
        """Listen again on the same port (a no-op while listening)."""
        self._call(self._listen())

    def stop(self) -> None:
        """Cut, release the port and end the proxy's thread (idempotent)."""
        if not self._started:
            if self._held_sock is not None:
                self._held_sock.close()
                self._held_sock = None
            return
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- in the proxy's thread ------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=30)

    def _is_listening(self) -> bool:
        return self._server is not None

    async def _count_open(self) -> int:
        return len(self._connections)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        sock = self._held_sock
        if sock is None:  # pragma: no cover - the port is always held while cut
            sock = _bound_socket(self.host, self.port)
        self._held_sock = None
        sock.listen(128)
        sock.setblocking(False)
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=_CHUNK)

    async def _cut(self) -> int:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # closes the listening socket
            # Hold the port again at once, bound but not listening: connections are refused.
            self._held_sock = _bound_socket(self.host, self.port)
        closed = 0
        for transport in list(self._connections):
            if not transport.is_closing():
                closed += 1
            transport.abort()
        self._connections.clear()
        self.stats.reset_by_cut += closed // 2  # two transports per forwarded connection
        return closed // 2

    async def _shutdown(self) -> None:
        await self._cut()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._held_sock is not None:
            self._held_sock.close()
            self._held_sock = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        client: asyncio.WriteTransport = writer.transport
        if not self._is_listening():  # accepted just before a cut
            client.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=_CHUNK)
        except OSError:
            self.stats.upstream_failures += 1
            client.abort()
            return
        upstream: asyncio.WriteTransport = up_writer.transport
        if not self._is_listening():  # cut while connecting upstream
            client.abort()
            upstream.abort()
            return
        self.stats.accepted += 1
        pair = (client, upstream)
        self._connections.update(pair)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, to_upstream=True),
                self._pipe(up_reader, writer, to_upstream=False),
            )
        finally:
            for transport in pair:
                self._connections.discard(transport)
                transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_upstream: bool
    ) -> None:
        # Responses are forwarded frame by frame from the start, so that a rewrite switched on
        # mid-connection still sees whole frames.
        pending = b""
        try:
            while data := await reader.read(_CHUNK):
                if not to_upstream:
                    data, pending = self._rewritten(pending + data)
                elif self.requests is not None:
                    pending = self._count_requests(pending + data, self.requests)
                writer.write(data)
                if to_upstream:
                    self.stats.bytes_to_upstream += len(data)
                else:
                    self.stats.bytes_to_client += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Either side ending ends the connection both ways (Kafka never half-closes).
            writer.transport.abort()

    @staticmethod
    def _count_requests(data: bytes, counts: Counter[tuple[int, int]]) -> bytes:
        """Count the whole request frames of ``data`` (each starts with its API key and
        version); return the rest, the start of the next frame."""
        pos = 0
        while len(data) - pos >= 8:
            size = int.from_bytes(data[pos : pos + 4], "big")
            if len(data) - pos - 4 < size:
                break
            key = int.from_bytes(data[pos + 4 : pos + 6], "big", signed=True)
            version = int.from_bytes(data[pos + 6 : pos + 8], "big", signed=True)
            counts[(key, version)] += 1
            pos += 4 + size
        return data[pos:]

    def _rewritten(self, data: bytes) -> tuple[bytes, bytes]:
        """Whole response frames of ``data`` passed through ``rewrite_to_client``, and the rest."""
        out, pos = [], 0
        while len(data) - pos >= 4:
            size = int.from_bytes(data[pos : pos + 4], "big")
            if len(data) - pos - 4 < size:
                break
            frame = data[pos + 4 : pos + 4 + size]
            rewrite = self.rewrite_to_client
            if rewrite is not None:
                frame = rewrite(frame)
            out.append(len(frame).to_bytes(4, "big") + frame)
            pos += 4 + size
        return b"".join(out), data[pos:]


@dataclass
class ProxiedBroker:
    """A running broker reachable only through ``proxy``."""

    proxy: TcpProxy
    broker: KafkaBroker

    @property
    def bootstrap_servers(self) -> str:
        """What clients are given: the proxy's address (also the advertised one)."""
        return self.proxy.address


@contextlib.contextmanager
def proxied_broker(log_path: Path, *, listening: bool = True) -> Iterator[ProxiedBroker]:
    """A dedicated Apache Kafka node on a private port, advertising a ``TcpProxy`` in front of it.

    With ``listening=False`` the proxy starts cut (the broker is up, but unreachable).
    The broker is stopped at the end, and dies with the test process anyway.
    """
    broker_port, holder = reserve_port()
    holder.close()  # the broker binds it itself
    proxy = TcpProxy(("127.0.0.1", broker_port))
    broker = KafkaBroker(broker_port, advertised=[proxy.address], log_path=log_path)
    try:
        broker.start()
        proxy.start(listening=listening)
        yield ProxiedBroker(proxy, broker)
    finally:
        proxy.stop()
        broker.stop()
