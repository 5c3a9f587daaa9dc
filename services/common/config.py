"""Settings read from the environment, and a clear refusal when they are wrong.

``KafkaSettings`` (``KAFKA_*``) is shared by every service; each service adds its own class with
its prefix (``INGEST_``, ``METRICS_``, ``ALERTS_``) on top of ``ServiceSettings``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, TypeVar

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import TopicSpec

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigError(ValueError):
    """Configuration that stops start-up; the message names each bad variable."""


class KafkaSettings(BaseSettings):
    """How to reach Kafka. Broker-specific behaviour (idempotence, partitions) is set here."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore", frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    client_id: str = "roadmap-monitor"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    enable_idempotence: bool = Field(
        default=False,
        description="Apache Kafka's idempotent producer (with acks=all): a retried send is "
        "neither duplicated nor reordered within a partition. Turn it on with Apache Kafka (the "
        "compose file, `dev --engine kafka` and the tests on Kafka do); the embedded broker "
        "refuses it",
    )
    isolation_level: Literal["read_committed", "read_uncommitted"] = Field(
        default="read_committed",
        description="What every consumer reads: read_committed skips what a transactional "
        "producer aborted (and waits on what it has not committed yet)",
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        le=300_000,
        description="How long a group member may go silent before it is dropped. The embedded "
        "broker also waits half of it (at least 1 s) before it completes a group join",
    )
    heartbeat_interval_ms: int = Field(
        default=3_000, ge=100, description="Heartbeats to the group coordinator, this often"
    )
    topic_partitions: int = Field(default=3, ge=1, le=1024)
    topic_replication_factor: int = Field(default=1, ge=1, le=16)
    create_topics: bool = True
    topic_prefix: str = Field(
        default="",
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name, e.g. 'staging.' to share a cluster",
    )

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> KafkaSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                "KAFKA_HEARTBEAT_INTERVAL_MS must be below KAFKA_SESSION_TIMEOUT_MS "
                f"({self.heartbeat_interval_ms} >= {self.session_timeout_ms})"
            )
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and (
            self.sasl_username is None or self.sasl_password is None
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    def topic_name(self, spec: TopicSpec) -> str:
        """The name ``spec`` has on this cluster (``topic_prefix`` + the contract's name)."""
        return self.topic_prefix + spec.name

    def security(self) -> BaseSecurity | None:
        """The FastStream security object for these settings (``None`` for plain text)."""
        use_ssl = self.security_protocol.endswith("SSL")
        context = self._ssl_context() if use_ssl else None
        if not self.security_protocol.startswith("SASL"):
            return BaseSecurity(ssl_context=context, use_ssl=use_ssl) if use_ssl else None
        assert self.sasl_username is not None
        assert self.sasl_password is not None
        sasl = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }
        return sasl[self.sasl_mechanism](
            self.sasl_username,
            self.sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=use_ssl,
        )

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile is not None:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context


class ServiceSettings(BaseSettings):
    """What every service has: where to listen for HTTP, the roadmap file, logging, Kafka."""

    # populate_by_name: fields with an env alias (ROADMAP_FILE) can also be set by field name.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    roadmap_file: Path = Field(default=Path("deploy/roadmap.yaml"), validation_alias="ROADMAP_FILE")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    stall_after: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a partition may have records to read without progress before its "
        "consumer counts as stalled (readiness 503, roadmap_consumer_stalled 1, an alert)",
    )
    retry_max_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest pause before a consumer reads a batch again after an unexpected "
        "error or a publish the broker did not acknowledge (the backoff doubles from 0.5 s)",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)


def _env_name(settings_cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    if not loc:
        return settings_cls.__name__
    first = str(loc[0])
    field = settings_cls.model_fields.get(first)
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    return (prefix + "_".join(str(part) for part in loc)).upper()


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """Build ``settings_cls`` from the environment or raise ``ConfigError`` naming each variable."""
    try:
        return settings_cls()
    except ValidationError as exc:
        owner: type[BaseSettings] = settings_cls
        if exc.title == KafkaSettings.__name__:
            owner = KafkaSettings
        problems = [
            f"{_env_name(owner, error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
