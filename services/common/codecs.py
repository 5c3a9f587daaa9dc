"""Every compression codec Kafka defines must be readable before a service consumes anything.

Upstream producers compress (librdkafka, the Java client and Kafka Streams offer gzip, snappy,
lz4 and zstd; lz4 and zstd are common defaults). aiokafka reads gzip with the standard library
and the other three only with ``cramjam`` (its ``lz4``/``snappy``/``zstd`` extras). Without it,
a consumer stops at the first compressed batch and retries it forever, so a service checks at
start-up, with a round trip through aiokafka's own codec functions, and refuses to start naming
what is missing.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import codec

from services.common.config import ConfigError

_SAMPLE = b'{"event_id": "codec-check", "type": "trade.shipment"}' * 8

CODECS: dict[str, tuple[Callable[[], bool], Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "gzip": (codec.has_gzip, codec.gzip_encode, codec.gzip_decode),
    "snappy": (codec.has_snappy, codec.snappy_encode, codec.snappy_decode),
    "lz4": (codec.has_lz4, codec.lz4_encode, codec.lz4_decode),
    "zstd": (codec.has_zstd, codec.zstd_encode, codec.zstd_decode),
}
"""Kafka's compression codecs (record batch attribute values 1-4), as aiokafka reads them."""


class CodecUnavailable(ConfigError):
    """A Kafka compression codec cannot be read in this environment."""


def missing_codecs() -> dict[str, str]:
    """Each codec aiokafka cannot round-trip here, with why; empty when all four work."""
    missing = {}
    for name, (available, encode, decode) in CODECS.items():
        if not available():
            missing[name] = "its library is not installed"
            continue
        try:
            if decode(encode(_SAMPLE)) != _SAMPLE:
                missing[name] = "a compressed sample did not decode to itself"
        except Exception as exc:  # noqa: BLE001 - any failure means the codec is unusable
            missing[name] = f"{type(exc).__name__}: {exc}"
    return missing


def require_codecs() -> None:
    """Raise ``CodecUnavailable`` naming every codec that cannot be read."""
    missing = missing_codecs()
    if missing:
        problems = "; ".join(f"{name}: {why}" for name, why in missing.items())
        raise CodecUnavailable(
            f"cannot read Kafka batches compressed with {', '.join(missing)} ({problems}); "
            "install the declared dependencies (aiokafka[lz4,snappy,zstd], which brings cramjam)"
        )
