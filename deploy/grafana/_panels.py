"""Declarations of K2's Grafana panels and the one place that turns them into SDK builders.

A dashboard module declares :class:`Section` s of :class:`Chart` s (title, meaning, unit, PromQL);
:func:`build_dashboard` lays them out on Grafana's 24-column grid, numbers the panels, and points
every panel, target and template variable at the provisioned Prometheus datasource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import gauge, prometheus, stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

#: The datasource ``provisioning/datasources/prometheus.yml`` provisions; every query uses it.
DATASOURCE_UID = "k2-prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

#: Grafana's step for ``rate()``: at least four scrape intervals, so a rate never comes out empty.
RATE = "$__rate_interval"
#: Share of read-path cache look-ups answered from the cache, by cache (two dashboards show it).
CACHE_HIT_RATIO = (
    f"sum by (cache) (rate(k2_query_cache_hits_total[{RATE}])) / "
    f"(sum by (cache) (rate(k2_query_cache_hits_total[{RATE}])) "
    f"+ sum by (cache) (rate(k2_query_cache_misses_total[{RATE}])))"
)

_PANEL_HEIGHT = 8
_LAST = "lastNotNull"


class Kind(StrEnum):
    """The visualisation a chart uses."""

    TIMESERIES = "timeseries"
    STAT = "stat"
    GAUGE = "gauge"


@dataclass(frozen=True)
class Query:
    """One PromQL target of a chart, with the legend its series get."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Chart:
    """One panel: what it shows, in which unit, from which queries.

    ``steps`` are threshold colours from a value up (the first step's value is ignored: it is the
    base colour); ``labels`` map exact values to text (a breaker's states).
    """

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: Kind = Kind.TIMESERIES
    width: int = 8
    steps: tuple[tuple[float, str], ...] = ()
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    max_value: float | None = None


@dataclass(frozen=True)
class Section:
    """A titled row of charts."""

    title: str
    charts: tuple[Chart, ...]


@dataclass(frozen=True)
class Variable:
    """A multi-valued query variable (``$name``) filled from a label's values."""

    name: str
    label: str
    query: str


def histogram_quantile(quantile: float, metric: str, by: str, selector: str = "") -> str:
    """PromQL for a quantile of a K2 histogram over Grafana's rate interval, per ``by`` labels."""
    grouping = f"{by}, le" if by else "le"
    return (
        f"histogram_quantile({quantile}, sum by ({grouping}) (rate({metric}_bucket{{{selector}}}[{RATE}])))"
    )


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    sections: tuple[Section, ...],
    variables: tuple[Variable, ...] = (),
) -> dashboard_builders.Dashboard:
    """A dashboard of ``sections``, panels numbered from 1 in reading order."""
    board = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["k2"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .readonly()
    )
    for variable in variables:
        board = board.with_variable(_variable(variable))
    panel_id = 0
    for section in sections:
        panel_id += 1
        board = board.with_row(dashboard_builders.Row(section.title).id(panel_id))
        for chart in section.charts:
            panel_id += 1
            board = board.with_panel(_panel(chart, panel_id))
    return board


def _variable(variable: Variable) -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable(variable.name)
        .label(variable.label)
        .datasource(DATASOURCE)
        .query(variable.query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def _panel(chart: Chart, panel_id: int) -> timeseries.Panel | stat.Panel | gauge.Panel:
    panel = _visualisation(chart.kind)
    panel = (
        panel.id(panel_id)
        .title(chart.title)
        .description(chart.description)
        .datasource(DATASOURCE)
        .unit(chart.unit)
        .span(chart.width)
        .height(_PANEL_HEIGHT)
        .targets([_target(query, index) for index, query in enumerate(chart.queries)])
    )
    if chart.steps:
        panel = panel.thresholds(
            dashboard_builders.ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps(
                [Threshold(None if i == 0 else value, color) for i, (value, color) in enumerate(chart.steps)]
            )
        )
    if chart.labels:
        panel = panel.mappings(_value_mappings(chart.labels))
    if chart.max_value is not None:
        panel = panel.min(0).max(chart.max_value)
    return panel


def _visualisation(kind: Kind) -> timeseries.Panel | stat.Panel | gauge.Panel:
    if kind is Kind.STAT:
        return (
            stat.Panel()
            .reduce_options(common_builders.ReduceDataOptions().calcs([_LAST]).values(False))
            .graph_mode(common.BigValueGraphMode.AREA)
            .color_mode(common.BigValueColorMode.BACKGROUND)
        )
    if kind is Kind.GAUGE:
        return gauge.Panel().reduce_options(common_builders.ReduceDataOptions().calcs([_LAST]).values(False))
    return (
        timeseries.Panel()
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )


def _target(query: Query, index: int) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + index))
        .datasource(DATASOURCE)
        .expr(query.expr)
        .legend_format(query.legend or "__auto")
        .range()
    )


def _value_mappings(labels: dict[str, tuple[str, str]]) -> list[ValueMapping]:
    options = {
        value: ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(labels.items())
    }
    return [ValueMap(options=options)]
