"""``roadmap-monitor run SERVICE``: run one service in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from contracts.roadmap.loader import RoadmapFileError
from services.common.config import ConfigError, ServiceSettings, load_settings
from services.common.logs import configure_logging
from services.common.runtime import ServiceApp, serve

# name -> (settings class path, create_app path); imported only for the service that runs.
SERVICES: dict[str, tuple[str, str]] = {
    "ingest": ("services.ingest.settings:IngestSettings", "services.ingest.app:create_app"),
    "metrics": ("services.metrics.settings:MetricsSettings", "services.metrics.app:create_app"),
}


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def run_service(name: str) -> int:
    """Load ``name``'s settings (exit 2 naming any bad variable), then serve it."""
    settings_path, factory_path = SERVICES[name]
    settings_cls: type[ServiceSettings] = _load(settings_path)
    create_app: Callable[[Any], ServiceApp] = _load(factory_path)
    try:
        settings = load_settings(settings_cls)
    except ConfigError as exc:
        sys.stderr.write(f"roadmap-monitor run {name}: {exc}\n")
        return 2
    configure_logging(name, level=settings.log_level, fmt=settings.log_format)
    try:
        app = create_app(settings)
    except RoadmapFileError as exc:
        sys.stderr.write(f"roadmap-monitor run {name}: invalid roadmap file: {exc}\n")
        return 2
    try:
        asyncio.run(serve(app))
    except Exception:
        logging.getLogger(__name__).exception("service %s failed", name)
        return 1
    return 0
