"""Receivers: one attempt to hand an alert record to a console, Alertmanager, webhook or chat.

Which receivers are in use, with their URLs and secrets, is read from the environment here
(``resolve_receivers``), at the edge. Retries live in ``delivery``; a receiver only says how an
attempt went. URLs are never logged
(a chat webhook's URL is its credential) and neither is a webhook's secret: receivers are
named by their ``name`` from the alerts file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

import httpx
from pydantic import ValidationError

from contracts.alerts_file import (
    URL_ADAPTER,
    AlertsFile,
    AlertsFileError,
    ReceiverKind,
    ReceiverSpec,
)
from contracts.records import AlertState, AlertTransition
from contracts.roadmap.loader import Problem
from services.alerts.payloads import (
    DEDUP_HEADER,
    SIGNATURE_HEADER,
    alertmanager_alerts,
    chat_body,
    chat_text,
    signature,
    webhook_body,
)
from services.alerts.retry import Verdict, retry_after_seconds, verdict

log = logging.getLogger(__name__)


class ActiveReceiver(NamedTuple):
    """A receiver with its URL and secret read from the environment."""

    spec: ReceiverSpec
    url: str | None
    secret: bytes | None


def resolve_receivers(
    alerts: AlertsFile, path: Path, env: Mapping[str, str]
) -> dict[str, ActiveReceiver]:
    """The receivers in use, their URLs and secrets read from ``env`` (the process environment,
    passed in by the app): a ``url_env`` receiver whose variable is unset is left out.

    Raises ``AlertsFileError`` when an active webhook's secret variable is unset or empty.
    """
    active: dict[str, ActiveReceiver] = {}
    problems = []
    for spec in alerts.receivers:
        url = str(spec.url) if spec.url is not None else None
        if spec.url_env is not None:
            url = env.get(spec.url_env) or None
            if url is None:
                continue
            try:
                url = str(URL_ADAPTER.validate_python(url))
            except ValidationError:
                problems.append(f"receiver {spec.name!r}: {spec.url_env} is not an http(s) URL")
                continue
        secret = None
        if spec.secret_env is not None:
            value = env.get(spec.secret_env, "")
            if not value:
                problems.append(f"receiver {spec.name!r}: set {spec.secret_env} (its HMAC key)")
                continue
            secret = value.encode()
        active[spec.name] = ActiveReceiver(spec, url, secret)
    if problems:
        raise AlertsFileError(path, [Problem(1, "receivers", p) for p in problems])
    return active


class Attempt(NamedTuple):
    verdict: Verdict
    detail: str
    retry_after: float | None = None


class Receiver(Protocol):
    name: str

    async def attempt(self, record: AlertTransition) -> Attempt: ...


class ConsoleReceiver:
    """Writes the notification to the service log (development, and the demo's alerts)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._log = logging.getLogger("services.alerts.console")

    async def attempt(self, record: AlertTransition) -> Attempt:
        level = logging.WARNING if record.state is AlertState.FIRING else logging.INFO
        self._log.log(
            level,
            chat_text(record).replace("\n", " | "),
            extra={
                "alert_state": record.state.value,
                "alertname": record.alertname.value,
                "indicator": record.labels.get("indicator", ""),
                "dedup_key": record.dedup_key,
                "repeat": record.repeat,
            },
        )
        return Attempt("accepted", "logged")


class HttpReceiver:
    """Alertmanager API v2, signed JSON webhook, or chat webhook, over one httpx client."""

    def __init__(
        self,
        active: ActiveReceiver,
        client: httpx.AsyncClient,
        *,
        generator_url: str,
        repeat_interval: timedelta,
        wall_clock: Callable[[], datetime],
    ) -> None:
        assert active.url is not None
        self._wall_clock = wall_clock
        self.name = active.spec.name
        self._kind = active.spec.kind
        self._url = active.url
        if self._kind is ReceiverKind.ALERTMANAGER:
            self._url = active.url.rstrip("/") + "/api/v2/alerts"
        self._secret = active.secret
        self._client = client
        self._generator_url = generator_url
        # Alertmanager ends a firing alert at ``endsAt`` unless it is re-sent first, so the
        # horizon follows the repeats this receiver actually gets (its own interval, if any).
        self._repeat_interval = max(repeat_interval, active.spec.repeat_interval or repeat_interval)

    def _request(self, record: AlertTransition) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", DEDUP_HEADER: record.dedup_key}
        if self._kind is ReceiverKind.ALERTMANAGER:
            alerts = alertmanager_alerts(
                record, generator_url=self._generator_url, repeat_interval=self._repeat_interval
            )
            return json.dumps(alerts).encode(), headers
        if self._kind is ReceiverKind.CHAT:
            return chat_body(record), headers
        body = webhook_body(record)
        assert self._secret is not None
        headers[SIGNATURE_HEADER] = signature(self._secret, body)
        return body, headers

    async def attempt(self, record: AlertTransition) -> Attempt:
        body, headers = self._request(record)
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write, timeouts
            return Attempt("retry", f"{type(exc).__name__}")
        outcome = verdict(response.status_code)
        retry_after = None
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = retry_after_seconds(
                response.headers.get("Retry-After"), self._wall_clock()
            )
        return Attempt(outcome, f"HTTP {response.status_code}", retry_after)


def build_receivers(
    active: dict[str, ActiveReceiver],
    client: httpx.AsyncClient,
    *,
    generator_url: str,
    repeat_interval: timedelta,
    wall_clock: Callable[[], datetime],
) -> dict[str, Receiver]:
    """One receiver object per active receiver of the alerts file; ``wall_clock`` reads an
    HTTP-date ``Retry-After``."""
    built: dict[str, Receiver] = {}
    for name, receiver in active.items():
        if receiver.spec.kind is ReceiverKind.CONSOLE:
            built[name] = ConsoleReceiver(name)
        else:
            built[name] = HttpReceiver(
                receiver,
                client,
                generator_url=generator_url,
                repeat_interval=repeat_interval,
                wall_clock=wall_clock,
            )
    return built
