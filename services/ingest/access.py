"""Who is posting to ``/v1/events``: open, one shared token, or the publishers file.

``Access.identify`` maps the ``Authorization`` header to a ``Caller``: its name (a header on each
outcome and a metrics label), what it may publish, and its rate bucket. Pure but for the
monotonic clock, which is injected.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from contracts.publishers import Publisher, PublishersFile, token_sha256
from services.ingest.rate_limits import TokenBucket
from services.ingest.triage import Scope

ANONYMOUS = "anonymous"
"""The caller when there is no publishers file (no token, or the one ``INGEST_API_TOKEN``)."""


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    scope: Scope | None
    """None: any valid event."""
    bucket: TokenBucket | None
    """None: no rate limit."""


def _scope(name: str, publisher: Publisher) -> Scope:
    def refusal(event_type: str, source: str) -> str | None:
        return publisher.refusal(name, event_type, source)

    return refusal


class Access:
    def __init__(
        self,
        *,
        token: SecretStr | None = None,
        publishers: PublishersFile | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if token is not None and publishers is not None:
            raise ValueError("a shared token and a publishers file exclude each other")
        self._clock = clock
        self._shared = f"Bearer {token.get_secret_value()}".encode() if token is not None else None
        self._open = token is None and publishers is None
        self._anonymous = Caller(ANONYMOUS, None, None)
        self._by_hash: dict[str, Caller] = {}
        self.names: tuple[str, ...] = (ANONYMOUS,)
        if publishers is not None:
            now = clock()
            self.names = tuple(publishers.publishers)
            for name, publisher in publishers.publishers.items():
                if publisher.token_sha256 is None:
                    continue
                bucket = None if publisher.rate is None else TokenBucket.full(publisher.rate, now)
                self._by_hash[publisher.token_sha256] = Caller(
                    name, _scope(name, publisher), bucket
                )

    @property
    def needs_token(self) -> bool:
        return not self._open

    def identify(self, authorization: str) -> Caller | None:
        """The caller for this ``Authorization`` header value, or ``None`` (answer 401)."""
        if self._open:
            return self._anonymous
        if self._shared is not None:
            given = authorization.encode()
            return self._anonymous if hmac.compare_digest(given, self._shared) else None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        # A dict lookup on the token's SHA-256: what an attacker controls is the token, and the
        # lookup's timing depends on its hash, which tells nothing about any real token.
        return self._by_hash.get(token_sha256(token.strip()))

    def now(self) -> float:
        return self._clock()
