"""The fault suite's report, a pytest plugin loaded by ``tests/conftest.py``.

Each fault test says what it injected and what it checked through the ``fault_report``
fixture; the lines are printed together at the end of the run, so the log reads as a report.
They travel with the test's report (``user_properties``), so under pytest-xdist they reach the
controlling process, which is the one that prints the summary (and which never loads a
sub-folder's ``conftest.py``).
"""

from __future__ import annotations

import pytest

_REPORT = "fault report"
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


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    lines: list[str] = []
    request.node.user_properties.append((_REPORT, lines))
    return FaultReport(lines)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for name, lines in report.user_properties:
        if name == _REPORT:
            _reports.setdefault(report.nodeid, []).extend(lines)  # type: ignore[arg-type]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _reports:
        return
    terminalreporter.section("fault suite report")
    for nodeid, lines in _reports.items():
        terminalreporter.write_line(nodeid.rsplit("::", 1)[-1])
        for line in lines:
            terminalreporter.write_line(line)
