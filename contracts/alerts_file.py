"""The alerts file (``deploy/alerts.yaml``): lifecycle timings, pipeline limit, receivers, routes.

The grammar, beside the roadmap file's; pure but for ``load_alerts_file`` reading the file.
Validated at start-up like the roadmap file: an invalid file stops the service naming the line
and field. Secrets and receiver URLs for a deployment come from the environment (``*_env``
fields), so the file itself holds none; the alerts service resolves them at its edge
(``services.alerts.receivers.resolve_receivers``) and refuses a missing secret.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.records import AlertName
from contracts.roadmap.loader import YamlFileError, load_yaml_model
from contracts.roadmap.model import Duration


def _positive(span: timedelta) -> timedelta:
    if span <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return span


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Name = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
EnvName = Annotated[StrictStr, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]


URL_ADAPTER: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


class AlertsFileError(YamlFileError):
    """The alerts file cannot be used."""

    what = "alerts file"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timing(_Model):
    """How long a condition must hold before firing, and clear before resolving."""

    for_: Duration = Field(default=timedelta(minutes=10), alias="for")
    keep_firing_for: Duration = Field(
        default=timedelta(minutes=30),
        description="A firing alert resolves only after the condition stayed clear this long",
    )


class Lifecycle(_Model):
    """``for`` runs on the roadmap clock (the pipeline alert: wall); repeats on the wall clock."""

    defaults: Timing = Field(default_factory=Timing)
    per_alert: dict[AlertName, Timing] = Field(default_factory=dict)
    repeat_interval: PositiveDuration = Field(
        default=timedelta(minutes=1),
        description="Firing alerts are re-sent this often (Alertmanager wants 30 s to 3 min)",
    )
    evaluation_interval: PositiveDuration = Field(default=timedelta(seconds=15))

    def timing(self, alertname: AlertName) -> Timing:
        return self.per_alert.get(alertname, self.defaults)


class PipelineRule(_Model):
    """``RoadmapPipelineRejecting``: DLQ share of ingest's output over a sliding window."""

    dlq_ratio_limit: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.05")
    window: PositiveDuration = timedelta(minutes=10)
    min_messages: Annotated[int, Field(ge=1)] = 20
    severity: Literal["info", "warning", "critical"] = "warning"
    owner: Name = "platform"
    runbook: Annotated[StrictStr, Field(min_length=1)] = "docs/runbooks.md#pipeline_rejecting"


class StallRule(_Model):
    """``RoadmapPipelineStalled``: a consumer has records to read and makes no progress.

    When a partition counts as stalled is each service's ``<SERVICE>_STALL_AFTER``; this says
    who is told."""

    severity: Literal["info", "warning", "critical"] = "critical"
    owner: Name = "platform"
    runbook: Annotated[StrictStr, Field(min_length=1)] = "docs/runbooks.md#pipeline_stalled"


class RetryPolicy(_Model):
    """Exponential backoff with jitter, bounded by a budget per notification and receiver."""

    initial_backoff: PositiveDuration = timedelta(seconds=1)
    max_backoff: PositiveDuration = timedelta(seconds=60)
    give_up_after: PositiveDuration = Field(
        default=timedelta(minutes=15),
        description="After this long a notification is counted as failed and skipped",
    )
    timeout: PositiveDuration = Field(default=timedelta(seconds=10), description="Per HTTP request")


class ReceiverKind(StrEnum):
    ALERTMANAGER = "alertmanager"
    WEBHOOK = "webhook"
    CHAT = "chat"
    CONSOLE = "console"


class ReceiverSpec(_Model):
    """One place notifications go. HTTP kinds take ``url`` or ``url_env`` (enabled when set)."""

    name: Name
    kind: ReceiverKind
    url: HttpUrl | None = None
    url_env: EnvName | None = Field(
        default=None, description="Read the URL from this variable; unset means disabled"
    )
    secret_env: EnvName | None = Field(
        default=None, description="webhook: the HMAC-SHA256 key is read from this variable"
    )
    send_resolved: StrictBool = True
    repeat_interval: PositiveDuration | None = Field(
        default=None,
        description="Send a repeat at most this often (None: every repeat, as for Alertmanager)",
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> ReceiverSpec:
        if self.kind is ReceiverKind.CONSOLE:
            if self.url or self.url_env:
                raise ValueError("a console receiver takes no url")
        elif (self.url is None) == (self.url_env is None):
            raise ValueError(f"a {self.kind} receiver needs exactly one of 'url' and 'url_env'")
        if self.kind is ReceiverKind.WEBHOOK and self.secret_env is None:
            raise ValueError("a webhook receiver needs 'secret_env' (its HMAC key's variable)")
        if self.kind is not ReceiverKind.WEBHOOK and self.secret_env is not None:
            raise ValueError("only webhook receivers sign their bodies ('secret_env')")
        return self


class Route(_Model):
    """Send alerts whose labels match to ``receivers``; an empty ``match`` matches everything."""

    match: dict[Literal["severity", "owner", "alertname", "indicator"], list[StrictStr]] = Field(
        default_factory=dict
    )
    receivers: list[Name] = Field(min_length=1)
    continue_: StrictBool = Field(
        default=True, alias="continue", description="false: later routes are not tried"
    )


class AlertsFile(_Model):
    version: Literal[1]
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    pipeline: PipelineRule = Field(default_factory=PipelineRule)
    stalled: StallRule = Field(default_factory=StallRule)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    receivers: list[ReceiverSpec] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)

    @field_validator("receivers")
    @classmethod
    def _unique_names(cls, value: list[ReceiverSpec]) -> list[ReceiverSpec]:
        names = [r.name for r in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"receiver names must be unique: {', '.join(duplicates)}")
        return value

    @field_validator("routes")
    @classmethod
    def _routes_name_receivers(cls, value: list[Route], info: ValidationInfo) -> list[Route]:
        receivers = info.data.get("receivers")
        if receivers is None:
            return value  # already reported
        names = {r.name for r in receivers}
        for route in value:
            unknown = sorted(set(route.receivers) - names)
            if unknown:
                raise ValueError(f"routes name unknown receivers: {', '.join(unknown)}")
        return value


def load_alerts_file(path: str | Path) -> AlertsFile:
    """Read and validate the alerts file; raise ``AlertsFileError`` naming line and field."""
    return load_yaml_model(path, AlertsFile, AlertsFileError)
