"""Schemathesis, a tool not written here, fuzzes ``POST /v1/events`` from ingest's own OpenAPI
document, on the real broker.

Every answer must be documented and no answer a 5xx, and what it answered must be what landed:
each accepted ``event_id`` on the canonical topic exactly once, each rejected element in the DLQ.
Bounded in examples (``FUZZ_EXAMPLES``, 150 a mode by default: about 3 s each here) and by the
fixed Hypothesis seed (``derandomize``), so a run is repeatable; the per-case deadline is off, as
the broker round trip is most of a case's time.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contracts.publishers import new_token, token_sha256
from contracts.records import DLQ_HEADER_REASON
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.kafka import RealBroker, read_topic, unique_name
from tests.support.services import running_app

pytestmark = [
    pytest.mark.connected,
    pytest.mark.timeout(180),  # the bound in time: 2 x 150 cases take about 15 s here
    # Raised from inside schemathesis' own strategies, not from anything here.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
)


@dataclass
class Sent:
    """What the answers said, summed over every case."""

    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    """Reasons answered for the rejected elements."""
    statuses: Counter[int] = field(default_factory=Counter)
    cases: int = 0


def fresh_event_ids(body: object, sent: Sent, source: str | None) -> None:
    """Give each generated event an ``event_id`` of its own (and, through a publishers file,
    the publisher's ``source``).

    Re-using an id with other content is refused (``event_id_reused``), a rule about what was
    sent before that no schema can state; generated cases would hit it at once (``"0"``)."""
    sent.cases += 1
    events = body if isinstance(body, list) else [body]
    for index, event in enumerate(events):
        if isinstance(event, dict) and isinstance(event.get("event_id"), str):
            event["event_id"] = f"fuzz-{sent.cases}-{index}"
            if source is not None:
                event["source"] = source


def fuzz(
    document: dict[str, Any], base_url: str, mode: GenerationMode, token: str | None = None
) -> Sent:
    """Run schemathesis' generated cases for ``POST /v1/events`` against ``base_url``.

    Valid cases (``positive``) must be accepted (or, with a publisher's ``token``, refused as
    out of its scope: 403 is documented). Invalid ones (``negative``) are only held to answering
    as documented: the schema is deliberately narrower than what ingest accepts (``kz`` is
    upper-cased, spaces are trimmed), so some of them are rightly accepted."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    source = CUSTOMS_SOURCE if token is not None else None
    schema = schemathesis.openapi.from_dict(document)
    operation = schema["/v1/events"]["POST"]
    checks = CHECKS if mode is GenerationMode.POSITIVE else CHECKS[:-1]
    sent = Sent()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one_case(case: schemathesis.Case[Any]) -> None:
        fresh_event_ids(case.body, sent, source)
        response = case.call(base_url=base_url, timeout=30, headers=headers)
        case.validate_response(response, checks=list(checks))
        sent.statuses[response.status_code] += 1
        if response.status_code in (202, 403, 422):
            body = response.json()
            sent.accepted.update(body["accepted"])
            sent.rejected.update(rejection["reason"] for rejection in body["rejected"])

    one_case()
    return sent


CUSTOMS_SOURCE = "kz-customs"


def _publishers_file(directory: Path, token: str) -> Path:
    """Customs KZ may publish shipments with its own source; nothing else."""
    path = directory / "publishers.yaml"
    path.write_text(
        "publishers:\n"
        "  customs-kz:\n"
        f"    token_sha256: {token_sha256(token)}\n"
        "    types: [trade.shipment]\n"
        f"    sources: [{CUSTOMS_SOURCE}]\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("mode", "scoped"),
    [
        pytest.param(GenerationMode.POSITIVE, False, id="valid"),
        pytest.param(GenerationMode.NEGATIVE, False, id="invalid"),
        pytest.param(GenerationMode.POSITIVE, True, id="valid-through-a-publishers-file"),
    ],
)
async def test_schemathesis_finds_no_server_error_nor_undocumented_answer_and_nothing_is_lost(
    broker: RealBroker, tmp_path: Path, mode: GenerationMode, scoped: bool
) -> None:
    """Open, valid cases are all accepted and invalid ones rejected as documented. Through a
    publishers file (customs KZ's token, shipments only), the valid shipments are accepted and
    the other types refused with 403, each in the DLQ as ``forbidden``."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("fuzz") + "."
    )
    token = new_token() if scoped else None
    ingest = IngestSettings(
        http_port=free_port(),
        kafka=kafka,
        group_id=unique_name("ingest"),
        publishers_file=_publishers_file(tmp_path, token) if token is not None else None,
    )
    async with running_app(create_app(ingest)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            document = (await client.get("/openapi.json")).json()
        sent = await asyncio.to_thread(fuzz, document, base_url, mode, token)

        canonical = await read_topic(
            broker.bootstrap_servers, kafka.topic_name(CANONICAL_EVENTS), timeout=10
        )
        dead = await read_topic(
            broker.bootstrap_servers, kafka.topic_name(DEAD_LETTERS), timeout=10
        )

    assert sum(sent.statuses.values()) == EXAMPLES
    if scoped:
        assert set(sent.statuses) == {202, 403}, sent.statuses
        assert set(sent.rejected) == {"forbidden"}, sent.rejected
        assert {json.loads(r.value)["type"] for r in canonical} == {"trade.shipment"}
    elif mode is GenerationMode.POSITIVE:
        assert set(sent.statuses) == {202}, sent.statuses
        assert not sent.rejected
    else:
        assert sent.rejected, sent.statuses  # some invalid cases did reach the DLQ path
    if mode is GenerationMode.POSITIVE:
        assert sent.accepted
    on_topic = Counter(json.loads(record.value)["event_id"] for record in canonical)
    assert on_topic == Counter(set(sent.accepted)), "each accepted id once on the canonical topic"
    assert max(sent.accepted.values(), default=1) == 1, "fresh ids are accepted once"
    in_dlq = Counter(dict(record.headers)[DLQ_HEADER_REASON].decode() for record in dead)
    assert in_dlq == sent.rejected
