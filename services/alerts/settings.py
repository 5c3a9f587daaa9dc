"""The alerts service's configuration: ``ALERTS_*`` plus ``ROADMAP_CLOCK``.

What alerts exist and who is told is in the alerts file (``ALERTS_FILE``); receivers' URLs
and secrets are read from the variables that file names (``ALERTS_ALERTMANAGER_URL``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.config import ServiceSettings

WATCHABLE = ("ingest", "metrics")
"""The services whose consumer groups the alerts service can watch from their offsets."""


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_", extra="ignore", frozen=True)

    http_port: int = Field(default=8003, ge=0, le=65535)
    file: Path = Field(default=Path("deploy/alerts.yaml"), description="The alerts file")
    clock: Literal["wall", "event"] = Field(
        default="wall",
        validation_alias="ROADMAP_CLOCK",
        description="'event': the roadmap clock is the newest KPI evaluation time (replays, demo)",
    )
    delivery_group_id: str = Field(
        default="roadmap-alerts-delivery",
        min_length=1,
        description="Consumer group that delivers alert records to receivers",
    )
    external_url: str = Field(
        default="http://127.0.0.1:8003",
        description="How people reach this service; Alertmanager's generatorURL points here",
    )
    runbook_base_url: str = Field(
        default="", description="Put before runbook paths from the roadmap file, e.g. a repo URL"
    )
    pipeline_lookback: int = Field(
        default=10_000,
        ge=0,
        description="Records per partition re-read at start-up to refill the DLQ-share window",
    )
    watch_groups: Annotated[dict[str, str], NoDecode] = Field(
        default={"ingest": "roadmap-ingest", "metrics": "roadmap-metrics"},
        description="service=group pairs whose committed offsets are watched for a stall "
        "(RoadmapPipelineStalled), e.g. 'ingest=roadmap-ingest,metrics=roadmap-metrics'; "
        "empty: none",
    )

    @field_validator("watch_groups", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            service, sep, group = (x.strip() for x in part.partition("="))
            if not sep or not group:
                raise ValueError(f"{part!r}: give service=group, e.g. ingest=roadmap-ingest")
            pairs[service] = group
        return pairs

    @field_validator("watch_groups")
    @classmethod
    def _known_services(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(WATCHABLE))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: only {' and '.join(WATCHABLE)} can be watched")
        return value
