"""One raw Kafka request over a plain socket: how the brokers' start-up is watched and what the
protocol test asks a broker, without a client library's own retries and version choices."""

from __future__ import annotations

import socket
import struct

CLIENT_ID = b"roadmap-monitor-probe"


def kafka_request(
    host: str, port: int, api_key: int, api_version: int, body: bytes = b"", *, timeout: float = 1.0
) -> bytes:
    """Send one request (header v1) to ``host:port``; return its response after the correlation
    id. Raises ``OSError`` (or ``ConnectionError``) when nothing or something else answers."""
    correlation_id = 7
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        payload = _read_exactly(sock, size)
    if len(payload) < 4 or struct.unpack(">i", payload[:4])[0] != correlation_id:
        raise ConnectionError(f"{host}:{port} answered something that is not Kafka's")
    return payload[4:]


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data
