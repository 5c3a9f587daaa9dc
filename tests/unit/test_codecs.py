"""Every Kafka compression codec is readable here, and a missing one is named at start-up."""

from __future__ import annotations

import pytest

from services.common import codecs


def test_every_kafka_codec_round_trips_in_this_environment() -> None:
    """gzip, snappy, lz4 and zstd: the declared dependencies (aiokafka's extras) are installed."""
    assert set(codecs.CODECS) == {"gzip", "snappy", "lz4", "zstd"}
    assert codecs.missing_codecs() == {}
    codecs.require_codecs()


def test_a_codec_without_its_library_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal names each codec that cannot be read and says what to install."""
    table = dict(codecs.CODECS)
    for name in ("lz4", "zstd"):
        _, encode, decode = table[name]
        table[name] = (lambda: False, encode, decode)
    monkeypatch.setattr(codecs, "CODECS", table)
    with pytest.raises(codecs.CodecUnavailable) as refused:
        codecs.require_codecs()
    message = str(refused.value)
    assert "compressed with lz4, zstd (" in message
    assert "lz4: its library is not installed" in message
    assert "gzip" not in message.split("(", maxsplit=1)[0]
    assert "aiokafka[lz4,snappy,zstd]" in message


def test_a_codec_that_does_not_round_trip_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library that imports but decodes wrongly (or raises) is as unusable as a missing one."""
    table = dict(codecs.CODECS)
    available, encode, _ = table["snappy"]
    table["snappy"] = (available, encode, lambda data: data[:-1])
    available, encode, _ = table["gzip"]

    def broken(_: bytes) -> bytes:
        raise OSError("truncated stream")

    table["gzip"] = (available, encode, broken)
    monkeypatch.setattr(codecs, "CODECS", table)
    assert codecs.missing_codecs() == {
        "gzip": "OSError: truncated stream",
        "snappy": "a compressed sample did not decode to itself",
    }
