"""Ingest's configuration: ``INGEST_*`` on top of the shared ``KAFKA_*`` and service settings."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


class IngestSettings(ServiceSettings):
    """Every knob has a sane default. HTTP is open unless ``INGEST_PUBLISHERS_FILE`` (each
    publisher's token hash, scope and rate) or ``INGEST_API_TOKEN`` (one shared token) is set."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    http_port: int = Field(default=8001, ge=0, le=65535)
    api_token: SecretStr | None = Field(
        default=None, description="When set, POST /v1/events needs 'Authorization: Bearer <token>'"
    )
    publishers_file: Path | None = Field(
        default=None,
        description="deploy/publishers.yaml: who may POST /v1/events, what and how fast",
    )
    group_id: str = Field(default="roadmap-ingest", min_length=1)
    batch_max_records: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="Messages per processed batch: each batch waits once for the broker's "
        "acknowledgement and its commit (2,000 took 5% more events/s than 1,000 here)",
    )
    batch_timeout_ms: int = Field(
        default=100, ge=1, le=10_000, description="How long a fetch waits to fill a batch"
    )
    dedup_window: int = Field(
        default=100_000, ge=0, description="Accepted event ids remembered for exact-duplicate drops"
    )
    dedup_recall: bool = Field(
        default=True,
        description="At start-up, refill the dedup window from the canonical topic's tail",
    )
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    http_max_events: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> Self:
        if self.api_token is not None and self.publishers_file is not None:
            raise ValueError(
                "INGEST_API_TOKEN and INGEST_PUBLISHERS_FILE exclude each other: give each "
                "publisher its own token in the publishers file"
            )
        return self
