"""Example messages, valid and invalid, shared by the tests of every service.

``examples/valid/<type>/*.json`` must be accepted. ``examples/invalid/`` holds messages that must
be rejected; ``examples/invalid/catalog.yaml`` labels each with the reason (and, for schema
errors, the field) it must be rejected for, and the topic type it is sent as, if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from contracts.codec import RejectReason
from contracts.events import EventType

EXAMPLES_DIR = Path(__file__).with_name("examples")


@dataclass(frozen=True, slots=True)
class ValidExample:
    name: str
    event_type: EventType
    raw: bytes


@dataclass(frozen=True, slots=True)
class InvalidExample:
    name: str
    raw: bytes
    reason: RejectReason
    why: str
    field: str | None = None
    sent_as: EventType | None = None


def valid_examples() -> list[ValidExample]:
    """Every valid example, sorted by type and file name."""
    return [
        ValidExample(f"{event_type.value}/{path.name}", event_type, path.read_bytes())
        for event_type in EventType
        for path in sorted((EXAMPLES_DIR / "valid" / event_type.value).glob("*.json"))
    ]


def invalid_examples() -> list[InvalidExample]:
    """Every invalid example with its label, in catalog order."""
    directory = EXAMPLES_DIR / "invalid"
    catalog = yaml.safe_load((directory / "catalog.yaml").read_text(encoding="utf-8"))
    return [
        InvalidExample(
            name=entry["file"],
            raw=(directory / entry["file"]).read_bytes(),
            reason=RejectReason(entry["reason"]),
            why=entry["why"],
            field=entry.get("field"),
            sent_as=EventType(entry["sent_as"]) if "sent_as" in entry else None,
        )
        for entry in catalog
    ]
