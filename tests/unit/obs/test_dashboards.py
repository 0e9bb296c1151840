"""K2's Grafana dashboards: generated as committed, shaped as Grafana loads them, on the provisioned
datasource.
"""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import pytest
import yaml

from deploy.grafana import DASHBOARDS, DATASOURCE_UID, OUTPUT, panel_queries, render
from tests.unit.obs._catalogue import ROOT

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
GRID_COLUMNS = 24


def _model(stem: str) -> dict[str, Any]:
    model: dict[str, Any] = json.loads((OUTPUT / f"{stem}.json").read_text(encoding="utf-8"))
    return model


def _charts(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in model["panels"] if panel["type"] != "row"]


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_the_committed_json_is_what_the_generator_writes(stem: str) -> None:
    """Running ``make dashboards`` again gives the committed file, byte for byte."""
    assert (OUTPUT / f"{stem}.json").read_text(encoding="utf-8") == render(DASHBOARDS[stem]())


def test_the_dashboards_folder_holds_only_generated_files() -> None:
    """Grafana loads every JSON file of the folder: none is left over from an earlier generator."""
    assert sorted(path.stem for path in OUTPUT.glob("*.json")) == sorted(DASHBOARDS)


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_the_model_has_grafanas_dashboard_fields(stem: str) -> None:
    """A dashboard has its uid (the file's stem), a title, a schema version and panels with unique ids."""
    model = _model(stem)
    assert model["uid"] == stem
    assert model["title"].startswith("K2 ")
    assert isinstance(model["schemaVersion"], int)
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_panels_sit_on_the_grid_without_overlapping(stem: str) -> None:
    """Each panel has a type and a gridPos inside the 24 columns, and no two panels overlap."""
    panels = _model(stem)["panels"]
    for panel in panels:
        grid = panel["gridPos"]
        assert panel["type"] in {"row", "timeseries", "stat", "gauge"}
        assert min(grid["w"], grid["h"]) > 0
        assert 0 <= grid["x"] <= GRID_COLUMNS - grid["w"]
    for a, b in combinations([panel["gridPos"] for panel in panels], 2):
        apart = a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
        apart = apart or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
        assert apart, f"{a} overlaps {b}"


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_every_panel_and_target_queries_the_provisioned_prometheus(stem: str) -> None:
    """Each chart and each of its targets names the datasource by uid, with a refId and an expr."""
    for panel in _charts(_model(stem)):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert target["expr"].strip()


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_template_variables_query_the_provisioned_prometheus(stem: str) -> None:
    """Each template variable names the datasource by uid and has a query."""
    for variable in _model(stem)["templating"].get("list", []):
        assert variable["datasource"] == DATASOURCE
        assert variable["query"]


def test_every_datasource_uid_referenced_is_provisioned() -> None:
    """The only datasource uid the dashboards use is the one the provisioning file declares."""
    provisioned = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    declared = {(source["type"], source["uid"]) for source in provisioned["datasources"]}
    used = {
        (ref["type"], ref["uid"])
        for stem in DASHBOARDS
        for panel in _charts(_model(stem))
        for ref in (panel["datasource"], *(target["datasource"] for target in panel["targets"]))
    }
    assert used <= declared


def test_the_overview_has_at_least_the_briefs_fifteen_panels() -> None:
    """The system overview carries at least 15 charts (rows not counted)."""
    assert len(_charts(_model("k2-overview"))) >= 15


def test_the_exchange_drill_down_filters_on_its_exchange_variable() -> None:
    """The per-exchange dashboard declares ``$exchange`` and every chart's queries filter on it."""
    model = _model("k2-exchange")
    assert [variable["name"] for variable in model["templating"]["list"]] == ["exchange"]
    for panel in _charts(model):
        assert all('exchange=~"$exchange"' in target["expr"] for target in panel["targets"]), panel["title"]


def test_panel_queries_are_plain_promql() -> None:
    """The helper a live-Prometheus test evaluates gives every target with no Grafana variable left."""
    queries = panel_queries()
    targets = sum(len(panel["targets"]) for stem in DASHBOARDS for panel in _charts(_model(stem)))
    assert len(queries) == targets
    assert not [query for query in queries if "$" in query.expr]
    filtered = [query for query in panel_queries(exchange="binance") if 'exchange=~"binance"' in query.expr]
    assert len(filtered) == sum(len(panel["targets"]) for panel in _charts(_model("k2-exchange")))
