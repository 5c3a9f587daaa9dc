"""``POST /v1/events``: one event or a JSON array of them, validated exactly like Kafka input.

Each element keeps its original bytes (the array is split on element boundaries, not
re-serialised), goes through the same triage, and a rejected element lands in the DLQ like a
rejected Kafka message. ``202`` when everything was accepted (or was an exact duplicate),
``403`` when some event is outside what its publisher may publish, else ``422`` when some was
rejected, each with a per-index list; valid elements of the batch are accepted either way. ``202``
is only sent once the broker acknowledged every outcome. Who is posting (``access.py``) decides
the scope and the rate: over the rate, ``429`` with ``Retry-After`` and nothing is published.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.codec import RejectReason
from contracts.http_api import ErrorAnswer, EventsAnswer, Rejection
from services.common.publishing import PublishError
from services.ingest.access import Access, Caller
from services.ingest.metrics import IngestMetrics
from services.ingest.pipeline import IngestPipeline
from services.ingest.rate_limits import retry_after_header
from services.ingest.settings import IngestSettings
from services.ingest.triage import Canonical, DeadLetter, Outcome, SourceRecord

log = logging.getLogger(__name__)

HTTP_SOURCE = "http:/v1/events"
"""``source_topic`` of DLQ records for events that came over HTTP."""

_WHITESPACE = " \t\n\r"
_SPLITTER = json.JSONDecoder()


class BodyError(ValueError):
    """The request body as a whole is unusable (as opposed to one of its events)."""


def split_elements(body: bytes) -> list[bytes]:
    """The events in ``body``: the elements of a top-level JSON array, or the body itself.

    Raises ``BodyError`` when the body is an array that cannot be parsed or is empty.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if body.lstrip()[:1] == b"[":
            raise BodyError(f"the array is not valid UTF-8 at byte {exc.start}") from None
        return [body]
    index = _skip(text, 0)
    if not text.startswith("[", index):
        return [body]
    elements: list[bytes] = []
    index = _skip(text, index + 1)
    if text.startswith("]", index):
        raise BodyError("the array holds no events")
    while True:
        try:
            _, end = _SPLITTER.raw_decode(text, index)
        except (ValueError, RecursionError) as exc:
            raise BodyError(f"element {len(elements)} is not JSON: {exc}"[:300]) from None
        elements.append(text[index:end].encode("utf-8"))
        index = _skip(text, end)
        if text.startswith(",", index):
            index = _skip(text, index + 1)
        elif text.startswith("]", index):
            if _skip(text, index + 1) != len(text):
                raise BodyError("unexpected data after the array")
            return elements
        else:
            raise BodyError(f"expected ',' or ']' after element {len(elements) - 1}")


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _error(status: int, message: str, reason: str | None = None) -> Response:
    return _json(ErrorAnswer(error=message, reason=reason), status)


def _json(body: EventsAnswer | ErrorAnswer, status: int, **headers: str) -> Response:
    return Response(
        body.model_dump_json(exclude_none=True),
        status_code=status,
        media_type="application/json",
        headers=headers or None,
    )


def _summary(outcomes: list[Outcome]) -> tuple[int, EventsAnswer]:
    accepted, duplicates, rejected = [], [], []
    forbidden = False
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Canonical):
            accepted.append(outcome.event_id)
        elif isinstance(outcome, DeadLetter):
            rejection = outcome.rejection
            forbidden = forbidden or rejection.reason is RejectReason.FORBIDDEN
            rejected.append(
                Rejection(
                    index=index,
                    reason=rejection.reason,
                    detail=rejection.detail,
                    errors=list(rejection.errors),
                )
            )
        else:
            duplicates.append(outcome.event_id)
    body = EventsAnswer(accepted=accepted, duplicates=duplicates, rejected=rejected)
    return (403 if forbidden else 422 if rejected else 202), body


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def events_route(
    settings: IngestSettings, pipeline: IngestPipeline, metrics: IngestMetrics, access: Access
) -> Route:
    """The ``POST /v1/events`` route."""
    max_body = settings.http_max_body_bytes

    async def post_events(request: Request) -> Response:
        response = await _handle(request)
        metrics.http_requests.labels(str(response.status_code)).inc()
        return response

    def _refuse_early(request: Request) -> Response | None:
        """Media type and declared size: checked before a byte of the body is read."""
        content_type = request.headers.get("content-type", "application/json")
        if content_type.split(";")[0].strip().lower() not in {"application/json", ""}:
            return _error(415, f"send application/json, not {content_type!r}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return _error(413, f"the body is over the {max_body}-byte limit")
        return None

    async def _read_events(request: Request) -> list[bytes] | Response:
        body = await _read_limited(request, max_body)
        if body is None:
            return _error(413, f"the body is over the {max_body}-byte limit")
        try:
            elements = split_elements(body)
        except BodyError as exc:
            return _error(400, str(exc), reason=RejectReason.NOT_JSON.value)
        if len(elements) > settings.http_max_events:
            return _error(
                413,
                f"{len(elements)} events in one request; the limit is {settings.http_max_events}",
            )
        return elements

    def _over_rate(caller: Caller, events: int) -> Response | None:
        bucket = caller.bucket
        if bucket is None:
            return None
        if events > bucket.rate.burst:
            return _error(
                413,
                f"{events} events in one request; publisher {caller.name!r} may send at most "
                f"{bucket.rate.burst} at once",
            )
        wait = bucket.take(events, access.now())
        if not wait:
            return None
        message = (
            f"publisher {caller.name!r} is over its rate of {bucket.rate.events_per_second:g} "
            f"events/s; nothing was published, retry after {wait:.1f} s"
        )
        return _json(ErrorAnswer(error=message), 429, **{"Retry-After": retry_after_header(wait)})

    async def _handle(request: Request) -> Response:
        caller = access.identify(request.headers.get("authorization", ""))
        if caller is None:
            return _json(
                ErrorAnswer(error="missing or unknown bearer token"),
                401,
                **{"WWW-Authenticate": 'Bearer realm="roadmap-ingest"'},
            )
        refused = _refuse_early(request)
        if refused is not None:
            return refused
        elements = await _read_events(request)
        if isinstance(elements, Response):
            return elements
        refused = _over_rate(caller, len(elements))
        if refused is not None:
            return refused
        sources = [
            SourceRecord(HTTP_SOURCE, None, None, None, element, expected_type=None)
            for element in elements
        ]
        try:
            outcomes = await pipeline.process(
                sources, source="http", publisher=caller.name, scope=caller.scope
            )
        except PublishError as exc:
            if caller.bucket is not None:
                caller.bucket.give_back(len(elements))
            log.warning("HTTP batch not published", extra={"error": str(exc)})
            message = (
                f"not published ({exc}); retry the request "
                "(events that did get through are dropped as exact duplicates)"
            )
            return _json(ErrorAnswer(error=message), 503, **{"Retry-After": "5"})
        status, summary = _summary(outcomes)
        return _json(summary, status)

    return Route("/v1/events", post_events, methods=["POST"])
