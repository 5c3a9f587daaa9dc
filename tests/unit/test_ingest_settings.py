"""Ingest settings from INGEST_* variables: defaults, values, refusals naming the variable."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from services.common.config import ConfigError, load_settings
from services.ingest.settings import IngestSettings


@pytest.fixture(autouse=True)
def _no_ingest_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test from an environment without INGEST_* (or unprefixed look-alike) values."""
    for name in list(os.environ):
        if name.startswith("INGEST_") or name in {"HTTP_PORT", "API_TOKEN"}:
            monkeypatch.delenv(name)


def test_defaults() -> None:
    """Without INGEST_* variables: port 8001, batches of 1000, 1000 events and 1 MiB per body."""
    settings = load_settings(IngestSettings)
    assert settings.http_port == 8001
    assert settings.batch_max_records == 2000
    assert settings.http_max_events == 1000
    assert settings.http_max_body_bytes == 1_048_576
    assert settings.api_token is None


def test_values_come_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """INGEST_HTTP_PORT, INGEST_BATCH_MAX_RECORDS and friends set the matching fields."""
    monkeypatch.setenv("INGEST_HTTP_PORT", "9101")
    monkeypatch.setenv("INGEST_BATCH_MAX_RECORDS", "250")
    monkeypatch.setenv("INGEST_HTTP_MAX_EVENTS", "20")
    monkeypatch.setenv("INGEST_HTTP_MAX_BODY_BYTES", "4096")
    settings = load_settings(IngestSettings)
    assert settings.http_port == 9101
    assert settings.batch_max_records == 250
    assert settings.http_max_events == 20
    assert settings.http_max_body_bytes == 4096


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PORT without the INGEST_ prefix does not configure ingest."""
    monkeypatch.setenv("HTTP_PORT", "9999")
    assert load_settings(IngestSettings).http_port == 8001


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INGEST_BATCH_MAX_RECORDS", "0"),
        ("INGEST_BATCH_MAX_RECORDS", "10001"),
        ("INGEST_HTTP_PORT", "abc"),
        ("INGEST_HTTP_PORT", "65536"),
        ("INGEST_HTTP_MAX_EVENTS", "0"),
        ("INGEST_HTTP_MAX_BODY_BYTES", "1023"),
        ("INGEST_DEDUP_WINDOW", "-1"),
    ],
)
def test_bad_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """An out-of-range or malformed value raises ConfigError whose message names the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings(IngestSettings)


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two bad values at once are both reported in one error."""
    monkeypatch.setenv("INGEST_BATCH_MAX_RECORDS", "0")
    monkeypatch.setenv("INGEST_HTTP_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings(IngestSettings)
    assert "INGEST_BATCH_MAX_RECORDS" in str(caught.value)
    assert "INGEST_HTTP_PORT" in str(caught.value)


def test_api_token_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """INGEST_API_TOKEN becomes a SecretStr: usable, but absent from repr, str and JSON dumps."""
    token = "tok-3f9a1c-very-secret"
    monkeypatch.setenv("INGEST_API_TOKEN", token)
    settings = load_settings(IngestSettings)
    assert isinstance(settings.api_token, SecretStr)
    assert settings.api_token.get_secret_value() == token
    assert token not in repr(settings)
    assert token not in str(settings)
    assert token not in repr(settings.api_token)
    assert token not in settings.model_dump_json()
