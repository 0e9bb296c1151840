"""K2's alert rules: valid for Prometheus, unit-tested with promtool, each with its runbook."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.obs._catalogue import ROOT, RULE_TESTS, RULES, alert_rules

RUNBOOK = ROOT / "docs" / "operations" / "alerts.md"
ALERTS = sorted(rule["alert"] for rule in alert_rules())


def test_promtool_checks_the_rule_files(promtool: Path) -> None:
    """``promtool check rules`` accepts every rule file Prometheus loads."""
    files = [str(path) for path in sorted(RULES.glob("*.yml"))]
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: Path) -> None:
    """Every case of ``k2-alerts.test.yml`` passes under ``promtool test rules``."""
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_each_alert_has_a_severity_and_its_annotations(rule: dict[str, Any]) -> None:
    """An alert carries a severity label and summary, description and runbook_url annotations."""
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(rule["annotations"]) >= {"summary", "description", "runbook_url"}


def test_each_runbook_url_points_at_a_section_of_the_runbook() -> None:
    """Each alert's runbook_url is docs/operations/alerts.md#<alert>, and that section exists."""
    anchors = {
        line.removeprefix("## ").strip().lower()
        for line in RUNBOOK.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    for rule in alert_rules():
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (path, anchor) == ("docs/operations/alerts.md", rule["alert"].lower())
        assert anchor in anchors, f"no '## {rule['alert']}' section in {RUNBOOK.name}"


def test_each_alert_is_tested_firing_and_not_firing() -> None:
    """The promtool suite has, for every alert, a case where it fires and one where it stays quiet."""
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
        for case in test["alert_rule_test"]
    ]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert sorted(firing) == ALERTS
    assert sorted(quiet) == ALERTS


def test_alert_names_are_unique() -> None:
    """No two rules share an alert name, so each has one runbook section."""
    assert len(ALERTS) == len(set(ALERTS))
