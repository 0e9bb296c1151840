"""K2's Grafana dashboards as code, built with Grafana's typed ``grafana-foundation-sdk``.

``make dashboards`` (``python -m deploy.grafana``) writes each dashboard's JSON model into
``deploy/grafana/dashboards/``, which Grafana's provisioning (``provisioning/dashboards/k2.yml``)
loads. :func:`panel_queries` lists every panel's PromQL with Grafana's variables replaced, for
tests that evaluate them against a real Prometheus.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import prometheus

from deploy.grafana._panels import DATASOURCE_UID, RATE
from deploy.grafana.exchange import exchange
from deploy.grafana.overview import overview
from deploy.grafana.query import query

__all__ = [
    "DASHBOARDS",
    "DATASOURCE_UID",
    "OUTPUT",
    "PanelQuery",
    "panel_queries",
    "render",
    "write_dashboards",
]

#: Each dashboard by the stem of its JSON file.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "k2-overview": overview,
    "k2-exchange": exchange,
    "k2-query": query,
}

#: Where the generated JSON models are committed and Grafana's provisioning reads them.
OUTPUT = Path(__file__).parent / "dashboards"


class PanelQuery(NamedTuple):
    """One target of one panel: the dashboard's title, the panel's title, and plain PromQL."""

    dashboard: str
    panel: str
    expr: str


def render(board: Dashboard) -> str:
    """The dashboard's JSON model as Grafana loads it: sorted keys, two-space indent, final newline."""
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboards(folder: Path = OUTPUT) -> list[Path]:
    """Write every dashboard's JSON model into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem, build in DASHBOARDS.items():
        path = folder / f"{stem}.json"
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


def panel_queries(*, rate_interval: str = "1m", exchange: str = ".*") -> list[PanelQuery]:
    """Every panel target's PromQL, with ``$__rate_interval`` and ``$exchange`` replaced.

    Args:
        rate_interval: the range ``rate()`` takes in place of Grafana's ``$__rate_interval``.
        exchange: the regex that stands for the ``$exchange`` variable (``.*``: all exchanges).

    Returns:
        One entry per target, in dashboard and panel order.
    """
    substitutions = {RATE: rate_interval, "$exchange": exchange}
    queries: list[PanelQuery] = []
    for build in DASHBOARDS.values():
        model = build().build()
        for panel in model.panels or []:
            if isinstance(panel, dashboard_model.Panel):
                queries.extend(
                    PanelQuery(model.title or "", panel.title or "", _substitute(target.expr, substitutions))
                    for target in panel.targets or []
                    if isinstance(target, prometheus.Dataquery)
                )
    return queries


def _substitute(expr: str, substitutions: dict[str, str]) -> str:
    for variable, value in substitutions.items():
        expr = expr.replace(variable, value)
    return expr
