"""docker-compose.yml agrees with the code: settings, ports, health checks, images, topics.

No Docker engine is needed: the file is read as YAML and checked against the settings classes,
the alerts file and the contracts' topic registry, so a renamed setting or topic fails here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from contracts.topics import TOPICS
from services.alerts.alerts_file import load_alerts_file
from services.common.config import KafkaSettings
from services.registry import service_parts
from tests.support.services import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = ("ingest", "metrics", "alerts")


def _env_names(settings_cls: type[BaseSettings]) -> set[str]:
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    names = set()
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else (prefix + name).upper())
    return names


def _receiver_variables() -> set[str]:
    alerts = load_alerts_file(REPO / "deploy" / "alerts.yaml")
    found = set()
    for receiver in alerts.receivers:
        found |= {v for v in (receiver.url_env, receiver.secret_env) if v}
    return found


def test_every_service_variable_is_a_setting_it_reads() -> None:
    """Each variable given to ingest, metrics or alerts names a field of its settings, the
    shared Kafka settings, or (alerts) a receiver variable of deploy/alerts.yaml."""
    unknown = {}
    for name in SERVICES:
        settings_cls, _ = service_parts(name)
        known = _env_names(settings_cls) | _env_names(KafkaSettings)
        if name == "alerts":
            known |= _receiver_variables()
        given = set(COMPOSE["services"][name]["environment"])
        if given - known:
            unknown[name] = sorted(given - known)
    assert unknown == {}


def test_ports_and_health_checks_match_the_services() -> None:
    """The HTTP port a service is told to use is the one published and the one its health
    check asks, on /healthz (the liveness endpoint every service serves)."""
    for name in SERVICES:
        service = COMPOSE["services"][name]
        port = service["environment"][f"{name.upper()}_HTTP_PORT"]
        assert service["environment"][f"{name.upper()}_HTTP_HOST"] == "0.0.0.0"
        assert service["ports"] == [f"{port}:{port}"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check
        assert service["command"] == ["run", name]


def test_every_image_is_pinned() -> None:
    """Third-party images carry an explicit version tag, never ``latest``; ours are built."""
    for name, service in COMPOSE["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), (name, image)
        assert not image.endswith(":latest"), (name, image)


def test_the_initialiser_creates_the_registry_topics_compacting_the_compacted_ones() -> None:
    """Topics created by the one-shot initialiser are exactly the contracts' topics, and the
    compacted ones are those the registry marks compacted."""
    script = COMPOSE["services"]["topics"]["command"][0]
    created = dict(re.findall(r"^\s*create (\S+) (\S+)$", script, flags=re.MULTILINE))
    assert set(created) == {spec.name for spec in TOPICS}
    compacted = {topic for topic, config in created.items() if config == "cleanup.policy=compact"}
    assert compacted == {spec.name for spec in TOPICS if spec.compacted}


def test_no_secret_is_written_in_the_file() -> None:
    """Secret-looking variables come from .env (``${...}``), and .env.example lists each."""
    example = (REPO / ".env.example").read_text()
    for service in COMPOSE["services"].values():
        for variable, value in (service.get("environment") or {}).items():
            if (
                re.search(r"TOKEN|SECRET|PASSWORD|_URL$", variable)
                and "ALERTMANAGER" not in variable
            ):
                if variable.endswith("EXTERNAL_URL"):
                    continue
                assert str(value).startswith("${"), (variable, value)
                assert f"\n{variable}=" in f"\n{example}", variable
