"""``GET /v1/pipeline`` and ``k2 query pipeline`` over a real embedded lake: the tables' figures
from their metadata, the API's level and breakers, and no stream without a Prometheus.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from typer.testing import CliRunner

from k2.api import create_app
from k2.cli.main import app as cli
from k2.ingest.sources.synthetic import SyntheticMarket
from k2.lake.tables import QUOTES, TRADES
from k2.query.pipeline import NO_STREAM
from k2.settings import ApiSettings, K2Settings
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}
UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _client(settings: K2Settings) -> TestClient:
    api = ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="10000/minute")
    return TestClient(create_app(settings.model_copy(update={"api": api}), registry=CollectorRegistry()))


def _pipeline(client: TestClient) -> dict[str, Any]:
    response = client.get("/v1/pipeline", headers=KEY)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
def loaded(lake: EmbeddedLake) -> EmbeddedLake:
    """The fresh lake after two loads of a small synthetic market (two snapshots per table)."""
    for day in (date(2024, 1, 8), date(2024, 1, 9)):
        lake.load_synthetic(SyntheticMarket(symbols=2, days=1, trades_per_day=40, start=day, seed=3))
    return lake


def test_after_a_load_the_tables_figures_are_the_metadatas(loaded: EmbeddedLake) -> None:
    """Each market table's snapshots, data files, partitions and rows are its metadata's and
    ``/v1/stats``'s; its last commit is seconds old; no stream on the embedded profile; the API
    at level 0 with every breaker closed.
    """
    with _client(loaded.settings) as client:
        data = _pipeline(client)
        stats = {s["table"]: s for s in client.get("/v1/stats", headers=KEY).json()["data"]}
    assert UTC_TEXT.match(data["checked_at"])
    assert data["profile"] == "embedded"
    assert data["lake_status"] == "ok"
    tables = {t["table"]: t for t in data["lake"]}
    assert list(tables) == ["trades", "quotes", "bars_1m"]
    for spec in (TRADES, QUOTES):
        table = loaded.engine.table(spec)
        found = tables[spec.name]
        assert found["exists"] is True
        assert found["snapshots"] == len(table.snapshots()) == 2
        assert found["snapshot_id"] == table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        for figure in ("data_files", "partitions", "rows", "max_files_per_partition"):
            assert found[figure] == stats[spec.name][figure], figure
        assert found["data_files"] >= found["partitions"] >= 2
        assert UTC_TEXT.match(found["last_commit_at"])
        assert 0 < found["last_commit_age_s"] < 60
    assert data["stream"] is None
    assert (data["stream_status"], data["stream_reason"]) == ("none", NO_STREAM)
    assert data["api"]["degradation_level"] == 0
    assert data["api"]["degradation_name"] == "normal"
    assert data["api"]["breakers"] == {
        "catalog": "closed",
        "object_store": "closed",
        "kafka": "closed",
        "schema_registry": "closed",
    }


def test_an_empty_lake_reports_its_tables_missing(lake: EmbeddedLake) -> None:
    """Before any load every table is reported as not existing yet, and the answer is still 200."""
    with _client(lake.settings) as client:
        data = _pipeline(client)
    assert [(t["table"], t["exists"], t["last_commit_at"]) for t in data["lake"]] == [
        ("trades", False, None),
        ("quotes", False, None),
        ("bars_1m", False, None),
    ]


def test_without_a_key_the_answer_is_401(lake: EmbeddedLake) -> None:
    """Like every /v1 route, the pipeline's health needs an API key."""
    with _client(lake.settings) as client:
        response = client.get("/v1/pipeline")
    assert response.status_code == 401
    assert response.json()["error"]["code"]


@pytest.fixture
def silent_prometheus() -> Iterator[str]:
    """The URL of a server that accepts connections and never answers (a hung Prometheus)."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_prometheus_that_does_not_answer_leaves_the_stream_unavailable(
    lake: EmbeddedLake, silent_prometheus: str
) -> None:
    """A configured Prometheus that hangs costs the answer its timeout, not a 500 or a hang: the
    stream part is unavailable with the reason, the rest answered.
    """
    obs = lake.settings.obs.model_copy(
        update={"prometheus_url": silent_prometheus, "prometheus_timeout_s": 0.5}
    )
    with _client(lake.settings.model_copy(update={"obs": obs})) as client:
        began = time.monotonic()
        data = _pipeline(client)
        took = time.monotonic() - began
    assert data["stream"] is None
    assert data["stream_status"] == "unavailable"
    assert data["stream_reason"] == f"Prometheus at {silent_prometheus} did not answer within 0.5 s"
    assert data["lake_status"] == "ok"
    assert took < 5


def test_the_command_line_answers_with_the_same_fields(
    loaded: EmbeddedLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``k2 query pipeline --format json`` prints the route's fields and figures (``api`` null)."""
    monkeypatch.setenv("K2_DATA_DIR", str(loaded.settings.data_dir))
    result = CliRunner().invoke(cli, ["query", "pipeline", "--format", "json"])
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    with _client(loaded.settings) as client:
        data = _pipeline(client)
    assert list(printed) == list(data)
    assert printed["api"] is None
    drop = ("last_commit_age_s",)
    assert [{k: v for k, v in t.items() if k not in drop} for t in printed["lake"]] == [
        {k: v for k, v in t.items() if k not in drop} for t in data["lake"]
    ]
    text = CliRunner().invoke(cli, ["query", "pipeline"])
    assert text.exit_code == 0, text.output
    assert NO_STREAM in text.stdout
