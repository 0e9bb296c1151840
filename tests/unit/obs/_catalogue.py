"""What K2 exports and what its dashboards and alert rules ask for, by metric name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from k2.obs.metrics import K2Metrics, process_registry

ROOT = Path(__file__).parents[3]
RULES = ROOT / "src" / "k2" / "obs" / "rules"
RULE_TESTS = Path(__file__).parent / "k2-alerts.test.yml"

#: The sample names a family of each type exposes, by suffix of the family's name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
}
_METRIC_NAME = re.compile(r"\b(?:k2|process|python)_[a-z0-9_]+\b")


def exported_names() -> set[str]:
    """Every sample name a K2 process's registry can expose (families with no child yet included)."""
    names: set[str] = set()
    for family in K2Metrics(process_registry()).registry.collect():
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def k2_family_names() -> list[str]:
    """K2's own families as Prometheus shows them: counters with ``_total``, info with ``_info``."""
    suffix = {"counter": "_total", "info": "_info"}
    return [
        family.name + suffix.get(family.type, "")
        for family in K2Metrics(CollectorRegistry()).registry.collect()
    ]


def metric_names(expr: str) -> set[str]:
    """K2, process and Python metric names a PromQL expression reads."""
    return set(_METRIC_NAME.findall(expr))


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of every rule file Prometheus loads from ``src/k2/obs/rules``."""
    rules: list[dict[str, Any]] = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules
