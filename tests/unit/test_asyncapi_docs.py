"""The committed AsyncAPI documents are what the services' code generates."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.commands.asyncapi import DOCS_DIR, render_yaml
from services.registry import SERVICES


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_committed_document_is_current(service: str) -> None:
    """docs/asyncapi/<service>.yaml has exactly the generated text (else: run `make docs`)."""
    committed = (DOCS_DIR / f"{service}.yaml").read_text(encoding="utf-8")
    assert committed == render_yaml(service), "docs/asyncapi is stale: run `make docs`"


def _payload(document: dict[str, Any], address: str) -> dict[str, Any]:
    (channel,) = [c for c in document["channels"].values() if c["address"] == address]
    (ref,) = channel["messages"].values()
    name = ref["$ref"].rsplit("/", 1)[-1].replace("%20", " ")
    payload: dict[str, Any] = document["components"]["messages"][name]["payload"]
    schema_name = payload["$ref"].rsplit("/", 1)[-1].replace("%20", " ")
    schema: dict[str, Any] = document["components"]["schemas"][schema_name]
    return schema


def test_ingest_document_describes_every_topic_it_reads_and_writes() -> None:
    """Each upstream topic carries its event schema; canonical and DLQ topics are listed."""
    document = yaml.safe_load(render_yaml("ingest"))
    addresses = {channel["address"] for channel in document["channels"].values()}
    upstream = {spec.name for spec in UPSTREAM_TOPIC_BY_TYPE.values()}
    assert addresses == upstream | {CANONICAL_EVENTS.name, DEAD_LETTERS.name}
    for event_type, spec in UPSTREAM_TOPIC_BY_TYPE.items():
        schema = _payload(document, spec.name)
        assert schema["properties"]["type"]["const"] == event_type.value
        assert "data" in schema["required"]
    assert "reason" in _payload(document, DEAD_LETTERS.name)["properties"]
    assert "EmptyPayload" not in document["components"]["schemas"]
