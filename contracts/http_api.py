"""The bodies of ingest's HTTP API (``POST /v1/events``), for the handler and the OpenAPI
document alike: what the code sends is what the document describes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, StrictStr

from contracts.codec import FieldError, RejectReason
from contracts.events import Contract


class Rejection(Contract):
    """One event of the request that was not accepted (it is in the DLQ with this reason)."""

    index: StrictInt = Field(ge=0, description="Its position in the request (0 for one event)")
    reason: RejectReason
    detail: StrictStr
    errors: list[FieldError] = Field(default_factory=list)


class EventsAnswer(Contract):
    """What happened to each event of a request: accepted, an exact duplicate, or rejected."""

    accepted: list[StrictStr] = Field(description="event_id of each accepted event, in order")
    duplicates: list[StrictStr] = Field(description="event_id of each exact duplicate dropped")
    rejected: list[Rejection]


class ErrorAnswer(Contract):
    """The request as a whole was refused; nothing of it was published."""

    error: StrictStr
    reason: StrictStr | None = Field(default=None, description="not_json for a body not JSON")


class Check(Contract):
    ok: bool
    detail: StrictStr = ""


class Readiness(Contract):
    """``GET /readyz``: 200 when every check passes, 503 otherwise, with each check's detail."""

    status: Literal["ready", "not ready"]
    checks: dict[str, Check]


class Liveness(Contract):
    """``GET /healthz``: the process answers."""

    status: Literal["alive"]
