"""Every metric a dashboard panel or an alert rule reads is one K2 exports."""

from __future__ import annotations

import pytest

from deploy.grafana import panel_queries
from deploy.grafana.exchange import EXCHANGE
from tests.unit.obs._catalogue import ROOT, alert_rules, exported_names, k2_family_names, metric_names

EXPRESSIONS = [
    *((f"{query.dashboard} / {query.panel}", query.expr) for query in panel_queries()),
    (f"variable ${EXCHANGE.name}", EXCHANGE.query),
    *((f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()),
]


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[where for where, _ in EXPRESSIONS])
def test_every_metric_read_is_in_the_catalogue(where: str, expr: str) -> None:
    """Each K2, process or Python metric name in the expression is a sample K2's registry exposes."""
    names = metric_names(expr)
    assert names or "up{" in expr, f"{where} reads no metric of K2's (nor Prometheus's up)"
    assert names <= exported_names(), f"{where} reads metrics K2 does not export: {names - exported_names()}"


def test_the_name_parser_maps_histogram_and_counter_samples_to_their_families() -> None:
    """Bucket and total samples of K2's histograms and counters count as exported; invented names do not."""
    exported = exported_names()
    assert {"k2_query_duration_seconds_bucket", "k2_http_requests_total", "k2_build_info"} <= exported
    assert "k2_query_duration_seconds_total" not in exported
    assert metric_names('up{job=~"k2-.*"} * on (instance) k2_degradation_level') == {"k2_degradation_level"}


def test_the_metrics_reference_lists_every_k2_family() -> None:
    """docs/operations/metrics.md has a row for each K2 family, under the name Prometheus shows."""
    reference = (ROOT / "docs" / "operations" / "metrics.md").read_text(encoding="utf-8")
    missing = [name for name in k2_family_names() if f"| `{name}` |" not in reference]
    assert not missing
