"""The alerts service's configuration: ``ALERTS_*`` plus ``ROADMAP_CLOCK``.

What alerts exist and who is told is in the alerts file (``ALERTS_FILE``); receivers' URLs
and secrets are read from the variables that file names (``ALERTS_ALERTMANAGER_URL``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


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
