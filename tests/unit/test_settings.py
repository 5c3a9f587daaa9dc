"""Settings from the environment: defaults, security, and refusals that name the variable."""

from __future__ import annotations

import json
import logging

import pytest
from faststream.security import SASLScram512

from services.common.config import ConfigError, KafkaSettings, ServiceSettings, load_settings
from services.common.logs import JsonFormatter


def test_defaults_point_at_the_embedded_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no environment, Kafka is 127.0.0.1:9092, plain text, idempotence off."""
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENABLE_IDEMPOTENCE"):  # the tests set them
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(KafkaSettings)
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.security() is None
    assert settings.enable_idempotence is False


def test_bad_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """KAFKA_TOPIC_PARTITIONS=zero stops start-up with the variable's name in the message."""
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "zero")
    with pytest.raises(ConfigError, match="KAFKA_TOPIC_PARTITIONS"):
        load_settings(KafkaSettings)


def test_bad_nested_kafka_value_is_refused_from_service_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad KAFKA_ variable is also named when a service's settings are loaded."""
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "perhaps")
    with pytest.raises(ConfigError, match="KAFKA_ENABLE_IDEMPOTENCE"):
        load_settings(ServiceSettings)


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_SSL without a user and password is a configuration error that says what is missing."""
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        load_settings(KafkaSettings)


def test_sasl_settings_become_a_faststream_security_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCRAM-SHA-512 over SASL_PLAINTEXT maps to FastStream's SASLScram512 without TLS."""
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "monitor")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-value")
    settings = load_settings(KafkaSettings)
    security = settings.security()
    assert isinstance(security, SASLScram512)
    assert security.use_ssl is False
    assert "s3cret-value" not in repr(settings)


def test_roadmap_file_comes_from_roadmap_file_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROADMAP_FILE (no service prefix) sets the roadmap file path."""
    monkeypatch.setenv("ROADMAP_FILE", "/etc/roadmap.yaml")
    assert str(load_settings(ServiceSettings).roadmap_file) == "/etc/roadmap.yaml"


def test_json_log_lines_carry_service_level_and_extra_fields() -> None:
    """Each record is one JSON object with the service name and any extra= fields."""
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "topic %s", ("t",), None)
    record.topic = "roadmap.events.v1"
    entry = json.loads(JsonFormatter("ingest").format(record))
    assert entry["service"] == "ingest"
    assert entry["level"] == "warning"
    assert entry["msg"] == "topic t"
    assert entry["topic"] == "roadmap.events.v1"
