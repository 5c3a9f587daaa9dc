"""The Prometheus configuration and the generated rules pass Prometheus's own tools: ``promtool
check config``, ``promtool check rules`` and the rule unit tests in deploy/prometheus/tests/ (a
shortfall fires after its ``for``, a healthy trajectory does not, a stale indicator and a
rejecting pipeline fire)."""

from __future__ import annotations

import shutil
import subprocess

from tests.support.services import REPO

RULES = REPO / "deploy" / "prometheus" / "rules" / "roadmap.rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "tests" / "roadmap.rules.test.yml"
CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, (
        "promtool is missing: install Debian's 'prometheus' package (make test does it as root)"
    )
    return found


def test_promtool_accepts_the_rules() -> None:
    """``promtool check rules`` finds every rule valid."""
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    # 3 recording; per indicator 3, and RoadmapTargetAtRisk for the 2 projected ones; 2 pipeline
    assert "SUCCESS: 28 rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    """``promtool test rules`` with the hand-written series and expected alerts."""
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_configuration() -> None:
    """``promtool check config``: the scrape configuration and the rule files it loads."""
    result = subprocess.run(
        [_promtool(), "check", "config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
