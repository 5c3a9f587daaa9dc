"""The KRaft cluster id the tests' brokers are formatted with.

A cluster id is 16 random bytes in URL-safe base64. One draw in 64 starts with ``-``, which
``kafka-storage format`` read as an option and refused ("argument --cluster-id/-t: expected one
argument"): a CI run failed on it once.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from services.common import apache_kafka


def test_an_id_that_would_start_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # 0xF8's first six bits encode "-"
    plain = uuid.UUID(bytes=bytes(range(1, 17)))
    draws: Iterator[uuid.UUID] = iter([dashed, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))

    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    assert apache_kafka._cluster_id() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")


def test_ids_are_22_characters_of_16_bytes_and_never_start_with_a_dash() -> None:
    ids = [apache_kafka._cluster_id() for _ in range(2_000)]
    assert all(len(text) == 22 and not text.startswith("-") for text in ids)
    assert all(len(base64.urlsafe_b64decode(text + "==")) == 16 for text in ids)
    assert len(set(ids)) == len(ids)
