"""The metrics service's configuration: ``METRICS_*`` plus ``ROADMAP_CLOCK``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.config import ServiceSettings

DEFAULT_COMMODITIES = (
    "wheat_flour",
    "wheat",
    "barley",
    "tractors",
    "combine_harvesters",
    "fertiliser",
    "dairy",
    "meat",
)
DEFAULT_SECTORS = (
    "agricultural_machinery",
    "food_processing",
    "automotive",
    "chemicals",
    "pharmaceuticals",
    "energy",
    "construction_materials",
    "textiles",
)


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class MetricsSettings(ServiceSettings):
    """Label lists keep metric series bounded: any other commodity or sector is ``other``."""

    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore", frozen=True)

    http_port: int = Field(default=8002, ge=0, le=65535)
    group_id: str = Field(default="roadmap-metrics", min_length=1)
    clock: Literal["wall", "event"] = Field(
        default="wall",
        validation_alias="ROADMAP_CLOCK",
        description="'event' evaluates at the newest occurred_at seen (replays, the demo)",
    )
    snapshot_interval: float = Field(
        default=60.0, gt=0, description="Seconds between KPI snapshots when nothing changes"
    )
    batch_max_records: int = Field(default=2000, ge=1, le=50_000)
    batch_timeout_ms: int = Field(
        default=50, ge=1, le=10_000, description="How long a fetch waits for more records"
    )
    commodities: Annotated[list[str], NoDecode] = Field(default=list(DEFAULT_COMMODITIES))
    sectors: Annotated[list[str], NoDecode] = Field(default=list(DEFAULT_SECTORS))
    corridor: Annotated[list[str], NoDecode] = Field(
        default=["KZ", "BY"], description="The two countries whose trade directions are labelled"
    )

    @field_validator("commodities", "sectors", "corridor", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("corridor")
    @classmethod
    def _two_countries(cls, value: list[str]) -> list[str]:
        if len(value) != 2 or value[0] == value[1]:
            raise ValueError("give two different country codes, e.g. 'KZ,BY'")
        return [code.upper() for code in value]
