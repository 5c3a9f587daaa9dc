"""Bytes to event and back: the one decoder every path (Kafka, HTTP, CLI) uses.

``decode_event`` never raises for bad input: every byte string maps to exactly one
``Accepted`` or ``Rejected`` outcome, and a rejection carries a machine-readable reason.
JSON numbers are parsed as ``Decimal`` so amounts are read exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, NoReturn

import msgspec
from pydantic import ValidationError

from contracts.events import EVENT_MODELS, SCHEMA_VERSION, EventType
from contracts.keys import AnyEvent

MAX_EVENT_BYTES = 64 * 1024
"""Largest accepted message, in bytes (DESIGN section 3)."""
MAX_HEADER_BYTES = 16 * 1024
"""Largest accepted set of Kafka headers (keys and values together), in bytes."""

Headers = Sequence[tuple[str, bytes | None]]
"""Kafka record headers as aiokafka gives them; a key that was not UTF-8 holds surrogates."""


class RejectReason(StrEnum):
    """Why a message was refused. These codes are part of the DLQ contract."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    TYPE_MISMATCH = "type_mismatch"
    SCHEMA = "schema"
    EVENT_ID_REUSED = "event_id_reused"
    """Valid on its own, but its ``event_id`` was already accepted with different content."""
    TOMBSTONE = "tombstone"
    """A Kafka record with a null value: events are corrected, never deleted."""
    HEADERS_TOO_LARGE = "headers_too_large"
    """The record's headers are over ``MAX_HEADER_BYTES``."""
    HEADERS_NOT_UTF8 = "headers_not_utf8"
    """A header key or value is not UTF-8 text."""
    FORBIDDEN = "forbidden"
    """Valid, but outside what its HTTP publisher may publish (event type or ``source``)."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One schema violation: where (dotted path), what kind (pydantic's type) and a message."""

    loc: str
    type: str
    message: str


@dataclass(frozen=True, slots=True)
class Accepted:
    event: AnyEvent


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str
    errors: tuple[FieldError, ...] = ()


DecodeResult = Accepted | Rejected


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_EXACT_JSON = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
_FAST_JSON = msgspec.json.Decoder(float_hook=Decimal)


def parse_json(text: str) -> Any:
    """Parse JSON the way every path must: numbers with a fraction become exact ``Decimal``.

    Raises ``ValueError`` (or ``RecursionError`` for absurd nesting) on anything that is not
    strict JSON; ``NaN`` and ``Infinity`` are refused.

    msgspec parses first, about three times as fast as the standard library; whatever it refuses
    (bad JSON, but also a lone surrogate escape or an integer over its range, which the standard
    library reads) is parsed by the standard library, so the value or the error is always the
    standard library's. A property test holds the two to the same values.
    """
    try:
        return _FAST_JSON.decode(text)
    except (msgspec.MsgspecError, RecursionError):
        return _EXACT_JSON.decode(text)


def _field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    return tuple(
        FieldError(
            loc=".".join(str(part) for part in error["loc"]),
            type=error["type"],
            message=error["msg"],
        )
        for error in exc.errors(include_url=False, include_input=False)
    )


_EVENT_TYPES = {event_type.value: event_type for event_type in EventType}


def _check_envelope(obj: dict[str, Any], expected_type: EventType | None) -> Rejected | EventType:
    raw_type = obj.get("type")
    if raw_type is None:
        missing = FieldError(loc="type", type="missing", message="Field required")
        return Rejected(RejectReason.SCHEMA, "the envelope has no 'type'", (missing,))
    event_type = _EVENT_TYPES.get(raw_type) if isinstance(raw_type, str) else None
    if event_type is None:
        known = ", ".join(t.value for t in EventType)
        return Rejected(RejectReason.UNKNOWN_TYPE, f"type {raw_type!r} is not one of: {known}")
    if expected_type is not None and event_type is not expected_type:
        return Rejected(
            RejectReason.TYPE_MISMATCH,
            f"a {event_type.value!r} event on the {expected_type.value!r} topic",
        )
    version = obj.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        return Rejected(
            RejectReason.UNSUPPORTED_VERSION,
            f"schema_version {version} is not supported (this build reads {SCHEMA_VERSION})",
        )
    return event_type


def header_key_text(key: str) -> str:
    """A header key as readable text: bytes that were not UTF-8 are written as ``\\xNN``."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def headers_size(headers: Headers) -> int:
    """Bytes of every header key and value, as they were on the wire."""
    return sum(
        len(key.encode("utf-8", "surrogateescape")) + len(value or b"") for key, value in headers
    )


def check_headers(headers: Headers, *, max_bytes: int = MAX_HEADER_BYTES) -> Rejected | None:
    """``None`` when the headers are acceptable: at most ``max_bytes``, keys and values UTF-8
    (a null value is allowed); else the rejection, naming the header."""
    if not headers:
        return None
    size = headers_size(headers)
    if size > max_bytes:
        return Rejected(
            RejectReason.HEADERS_TOO_LARGE,
            f"{len(headers)} headers of {size:,} bytes; the limit is {max_bytes:,}",
        )
    for index, (key, value) in enumerate(headers):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return Rejected(
                RejectReason.HEADERS_NOT_UTF8,
                f"header {index} has a key that is not UTF-8: {header_key_text(key)!r}",
            )
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected(
                RejectReason.HEADERS_NOT_UTF8,
                f"header {key!r} has a value that is not UTF-8 (invalid byte at {exc.start})",
            )
    return None


def decode_record(
    value: bytes | None,
    headers: Headers = (),
    *,
    expected_type: EventType | None = None,
    max_bytes: int = MAX_EVENT_BYTES,
) -> DecodeResult:
    """Validate one Kafka record: its value must not be null (a tombstone), its headers must
    pass ``check_headers``, then its value is decoded as by ``decode_event``. Never raises."""
    if value is None:
        return Rejected(
            RejectReason.TOMBSTONE,
            "a null value (tombstone): events are never deleted; send a correction instead",
        )
    refused = check_headers(headers)
    if refused is not None:
        return refused
    return decode_event(value, expected_type=expected_type, max_bytes=max_bytes)


def decode_event(
    raw: bytes,
    *,
    expected_type: EventType | None = None,
    max_bytes: int = MAX_EVENT_BYTES,
) -> DecodeResult:
    """Validate and normalise one message.

    ``expected_type`` is the type the message's topic carries; an event of another type is
    rejected (``type_mismatch``) rather than re-routed. Never raises for any input bytes.
    """
    if len(raw) > max_bytes:
        return Rejected(
            RejectReason.TOO_LARGE, f"message is {len(raw)} bytes; the limit is {max_bytes}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(RejectReason.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}")
    try:
        obj = parse_json(text)
    except (ValueError, RecursionError) as exc:
        return Rejected(RejectReason.NOT_JSON, f"not JSON: {exc}"[:300])
    return decode_object(obj, expected_type=expected_type)


def decode_object(obj: Any, *, expected_type: EventType | None = None) -> DecodeResult:
    """Validate one already-parsed JSON value (numbers must have been parsed as ``Decimal``).

    The HTTP path uses this for each element of a JSON array; ``decode_event`` for whole
    messages. Never raises for any JSON value.
    """
    if not isinstance(obj, dict):
        return Rejected(RejectReason.NOT_OBJECT, f"a JSON {type(obj).__name__}, not an object")
    checked = _check_envelope(obj, expected_type)
    if isinstance(checked, Rejected):
        return checked
    try:
        event = EVENT_MODELS[checked].model_validate(obj)
    except ValidationError as exc:
        errors = _field_errors(exc)
        summary = "; ".join(f"{e.loc}: {e.message}" for e in errors[:3])
        return Rejected(RejectReason.SCHEMA, summary[:500], errors)
    return Accepted(event)


def encode_event(event: AnyEvent) -> bytes:
    """The canonical JSON form of ``event``: amounts as decimal strings, timestamps in UTC."""
    return event.model_dump_json().encode("utf-8")
