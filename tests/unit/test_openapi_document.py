"""Ingest's OpenAPI document: current on disk, every status of the README's table in it with
its body's schema, and its schemas the contracts' own."""

from __future__ import annotations

import json
import re

from contracts.http_api import ErrorAnswer, EventsAnswer
from services.ingest.openapi import DOCUMENT, EVENTS_STATUSES, openapi_document, render
from services.ingest.settings import IngestSettings
from tests.support.services import REPO

REF = "#/components/schemas/{model}"


def test_the_committed_document_is_current() -> None:
    assert (REPO / DOCUMENT).read_text(encoding="utf-8") == render(), "run make docs"


def _readme_statuses() -> set[int]:
    """The statuses of the README's table for POST /v1/events."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| status | when | body |") :]
    table = table[: table.index("\n\n")]
    return {int(m.group(1)) for m in re.finditer(r"^\| `(\d{3})` \|", table, flags=re.MULTILINE)}


def test_every_status_the_readme_lists_is_documented_with_its_body() -> None:
    responses = openapi_document()["paths"]["/v1/events"]["post"]["responses"]
    statuses = _readme_statuses()
    assert statuses == {202, 422, 403, 400, 401, 413, 415, 429, 503}
    assert {int(s) for s in responses} == statuses
    for status, response in responses.items():
        model = EVENTS_STATUSES[int(status)][1]
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}


def test_the_schemas_are_the_contracts() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    for model in (EventsAnswer, ErrorAnswer):
        own = model.model_json_schema(mode="serialization", ref_template=REF)
        own.pop("$defs", None)
        assert schemas[model.__name__] == own
    assert {s["$ref"] for s in schemas["Event"]["oneOf"]} == {
        "#/components/schemas/TradeShipmentEvent",
        "#/components/schemas/ProjectMilestoneEvent",
        "#/components/schemas/HiringReportEvent",
    }
    refs = set(re.findall(r'"#/components/schemas/([A-Za-z]+)"', json.dumps(document)))
    assert refs <= set(schemas), refs - set(schemas)  # every reference resolves


def test_the_request_limits_are_the_settings() -> None:
    body = openapi_document(IngestSettings(http_max_events=50))["paths"]["/v1/events"]["post"]
    array = body["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert array["maxItems"] == 50
