"""The publishers file: who may publish over HTTP, with which token, what, and how fast.

Each publisher (customs KZ, the project office, an employment agency, ...) has a name, the
SHA-256 of its bearer token (the plain token lives only in that publisher's environment), the
event types and ``source`` values it may publish, and optionally a rate. Pure: parsing and the
scope check; reading the file is ``load_publishers``'s only I/O.

A SHA-256 is enough here because tokens are random (``roadmap-monitor token`` makes 32 random
bytes): there is nothing to guess from a hash of a 256-bit secret, unlike a password.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.events import EventType
from contracts.roadmap.loader import YamlFileError, load_yaml_model, parse_yaml_model

PUBLISHER_NAME = r"^[a-z][a-z0-9-]{0,31}$"
"""Publisher names: short, lower case, so they can be metric labels and header values."""

RESERVED_NAMES = frozenset({"kafka", "anonymous"})
"""Names the metrics use for what did not come from a named HTTP publisher."""


class PublishersFileError(YamlFileError):
    what = "publishers file"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Closed):
    """A token bucket: ``burst`` events at once, refilled at ``events_per_second``."""

    events_per_second: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)


class Publisher(_Closed):
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        description="Lower-case hex SHA-256 of the bearer token; none: this publisher cannot "
        "publish yet (mint a token with `roadmap-monitor token NAME`)"
    )
    types: tuple[EventType, ...] = Field(min_length=1)
    sources: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = Field(min_length=1)
    """The ``source`` values its events may carry (exactly)."""
    rate: Rate | None = None
    """None: no limit."""

    def refusal(self, name: str, event_type: str, source: str) -> str | None:
        """Why publisher ``name`` may not publish this event, or ``None`` when it may."""
        if event_type not in self.types:
            allowed = ", ".join(self.types)
            return f"publisher {name!r} may publish {allowed}, not {event_type}"
        if source not in self.sources:
            allowed = ", ".join(repr(s) for s in self.sources)
            return f"publisher {name!r} may publish with source {allowed}, not {source!r}"
        return None


class PublishersFile(_Closed):
    publishers: dict[Annotated[str, Field(pattern=PUBLISHER_NAME)], Publisher] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_and_tokens_are_unique(self) -> Self:
        reserved = sorted(RESERVED_NAMES & self.publishers.keys())
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: reserved for what HTTP publishers are not")
        seen: dict[str, str] = {}
        for name, publisher in self.publishers.items():
            digest = publisher.token_sha256
            if digest is None:
                continue
            if digest in seen:
                raise ValueError(f"{seen[digest]} and {name} have the same token_sha256")
            seen[digest] = name
        return self

    def by_token_hash(self) -> dict[str, str]:
        """Publisher names by their token's SHA-256 (publishers without a token left out)."""
        return {
            p.token_sha256: name
            for name, p in self.publishers.items()
            if p.token_sha256 is not None
        }


def token_sha256(token: str) -> str:
    """What the publishers file stores for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random bearer token (32 bytes, URL-safe text)."""
    return secrets.token_urlsafe(32)


def parse_publishers(text: str, path: Path) -> PublishersFile:
    return parse_yaml_model(text, path, PublishersFile, PublishersFileError)


def load_publishers(path: str | Path) -> PublishersFile:
    """Read the publishers file; raise ``PublishersFileError`` naming the line and field."""
    return load_yaml_model(path, PublishersFile, PublishersFileError)
