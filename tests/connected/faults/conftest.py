"""The fault suite: every test here also carries the ``faults`` marker (``make test-faults``).

Each test reports what it injected and what it checked through the ``fault_report`` fixture;
the lines are printed together at the end of the run, so the log reads as a report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_FAULTS_DIR = Path(__file__).parent
_reports: dict[str, list[str]] = {}


class FaultReport:
    """Lines of one fault test: what was injected, what was checked, what was seen."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def injected(self, what: str) -> None:
        self._lines.append(f"  injected: {what}")

    def checked(self, what: str) -> None:
        self._lines.append(f"  checked:  {what}")

    def saw(self, what: str) -> None:
        self._lines.append(f"  saw:      {what}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _FAULTS_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    return FaultReport(_reports.setdefault(request.node.nodeid, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _reports:
        return
    terminalreporter.section("fault suite report")
    for nodeid, lines in _reports.items():
        terminalreporter.write_line(nodeid.rsplit("::", 1)[-1])
        for line in lines:
            terminalreporter.write_line(line)
