"""The fault suite: every test here also carries the ``faults`` marker (``make test-faults``).

Each test reports what it injected and what it checked through the ``fault_report`` fixture
(``tests/support/fault_report.py``); the lines are printed together at the end of the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_FAULTS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _FAULTS_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.faults)
