"""The services this product runs, by name: their settings class and ``create_app``.

Imported lazily by name, so starting one service does not import the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from services.common.config import ServiceSettings
from services.common.runtime import ServiceApp

SERVICES: dict[str, tuple[str, str]] = {
    "ingest": ("services.ingest.settings:IngestSettings", "services.ingest.app:create_app"),
    "metrics": ("services.metrics.settings:MetricsSettings", "services.metrics.app:create_app"),
    "alerts": ("services.alerts.settings:AlertsSettings", "services.alerts.app:create_app"),
}


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def service_parts(name: str) -> tuple[type[ServiceSettings], Callable[..., ServiceApp]]:
    """The settings class and the ``create_app`` of service ``name``."""
    settings_path, factory_path = SERVICES[name]
    return _load(settings_path), _load(factory_path)
