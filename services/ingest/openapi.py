"""The OpenAPI 3.1 document of ingest's HTTP API, made from the code's own contracts.

The request body is the event contract (``contracts.events``), the answers are the models the
handler serialises (``contracts.http_api``), and the statuses are those ``http_api.py`` sends.
Ingest serves it at ``GET /openapi.json``; ``make docs`` writes it to ``docs/openapi.json``
(``python -m services.ingest.openapi``), and a test fails while that file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.events import event_adapter
from contracts.http_api import ErrorAnswer, EventsAnswer, Liveness, Readiness
from services.ingest.settings import IngestSettings

DOCUMENT = Path("docs/openapi.json")
_REF = "#/components/schemas/{model}"

EVENTS_STATUSES: dict[int, tuple[str, type[BaseModel]]] = {
    202: ("every event was accepted or was an exact duplicate", EventsAnswer),
    422: (
        "at least one event was rejected (each is in the DLQ with its reason); the valid ones "
        "in the same request are accepted",
        EventsAnswer,
    ),
    403: (
        "at least one event is outside what this publisher may publish (its type or source, "
        "per the publishers file): each is in the DLQ as forbidden, the others are handled as "
        "for 202 and 422",
        EventsAnswer,
    ),
    400: ("the body is an array that is not valid JSON, or an empty array", ErrorAnswer),
    401: (
        "the bearer token is missing or unknown (with INGEST_PUBLISHERS_FILE or INGEST_API_TOKEN "
        "set); nothing is published",
        ErrorAnswer,
    ),
    413: (
        "the body is over INGEST_HTTP_MAX_BODY_BYTES, or holds more than INGEST_HTTP_MAX_EVENTS "
        "events; nothing is published",
        ErrorAnswer,
    ),
    415: ("a content type other than application/json", ErrorAnswer),
    429: (
        "this publisher is over its rate (events per second, per the publishers file); nothing "
        "is published: send the same request again after Retry-After seconds",
        ErrorAnswer,
    ),
    503: (
        "the broker did not acknowledge, or ingest is still starting; retrying is safe (what got "
        "through is dropped as an exact duplicate)",
        ErrorAnswer,
    ),
}
"""``POST /v1/events``'s statuses: what each means and the model of its body."""


def _schemas() -> dict[str, Any]:
    """Every schema the document refers to, under ``components/schemas``."""
    _, models = models_json_schema(
        [
            (EventsAnswer, "serialization"),
            (ErrorAnswer, "serialization"),
            (Readiness, "serialization"),
            (Liveness, "serialization"),
        ],
        ref_template=_REF,
    )
    event = event_adapter.json_schema(ref_template=_REF)
    schemas: dict[str, Any] = {**models.get("$defs", {}), **event.pop("$defs", {})}
    schemas["Event"] = event
    return schemas


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def openapi_document(settings: IngestSettings | None = None) -> dict[str, Any]:
    """The document; its limits are ``settings``' (the defaults without, whatever the
    environment says, so the committed file does not depend on it)."""
    fields = IngestSettings.model_fields
    max_events = settings.http_max_events if settings else fields["http_max_events"].default
    max_bytes = settings.http_max_body_bytes if settings else fields["http_max_body_bytes"].default
    event = {"$ref": _REF.format(model="Event")}
    responses: dict[str, Any] = {
        str(status): {"description": text, "content": _json(model)}
        for status, (text, model) in EVENTS_STATUSES.items()
    }
    responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    for status in ("429", "503"):
        responses[status]["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "roadmap-monitor ingest",
            "version": "1",
            "description": (
                "Upstream events over HTTP, validated exactly like those on Kafka: each lands on "
                "the canonical topic once, or in the DLQ with its reason."
            ),
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "Publish one event or a JSON array of them",
                    "security": [{}, {"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"One event, or an array of 1 to {max_events}; at most {max_bytes} "
                            "bytes"
                        ),
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        event,
                                        {
                                            "type": "array",
                                            "items": event,
                                            "minItems": 1,
                                            "maxItems": max_events,
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": responses,
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process answers",
                    "responses": {"200": {"description": "alive", "content": _json(Liveness)}},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Ready to take events: connected, dedup window recalled",
                    "responses": {
                        "200": {"description": "every check passes", "content": _json(Readiness)},
                        "503": {"description": "a check fails", "content": _json(Readiness)},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "the text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "INGEST_API_TOKEN, when it is set",
                }
            },
        },
    }


def openapi_route(settings: IngestSettings) -> Route:
    """``GET /openapi.json``: the document, with this instance's limits."""
    body = json.dumps(openapi_document(settings), sort_keys=True).encode()

    async def document(_: Request) -> Response:
        return Response(body, media_type="application/json")

    return Route("/openapi.json", document, methods=["GET"])


def render(settings: IngestSettings | None = None) -> str:
    return json.dumps(openapi_document(settings), indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOCUMENT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
