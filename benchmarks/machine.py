"""What a benchmark ran on: cores, memory, versions. Printed with every report."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from services.common.embedded_broker import resolve_tansu


def _memory_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _aiokafka_c_extension() -> bool:
    try:
        from aiokafka.record import _crecords  # noqa: F401
    except ImportError:
        return False
    return True


def tansu_version() -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv
        [resolve_tansu(), "--version"], capture_output=True, text=True, check=False, timeout=10
    )
    return result.stdout.strip() or "unknown"


def describe() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and the versions of what is measured."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu": cpu,
        "python": platform.python_version(),
        "aiokafka": metadata.version("aiokafka"),
        "aiokafka_c_extension": _aiokafka_c_extension(),
        "faststream": metadata.version("faststream"),
        "pydantic": metadata.version("pydantic"),
        "broker": tansu_version(),
    }
