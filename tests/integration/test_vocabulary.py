"""The command line and the API name each field of the same answer the same way: for every query
they share, the CLI's ``--format json`` rows and CSV header carry exactly the API's fields, in the
same order (the API's documented deprecated aliases aside).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from k2.api import create_app
from k2.api.routes.summary import DEPRECATED_DAY_ALIAS
from k2.cli.main import app
from k2.lake.tables import QUOTES, TRADES
from k2.settings import ApiSettings
from k2.testing import EmbeddedLake, make_quote_rows, make_trade_rows, quote_row, trade_row

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}
T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)  # 11:00 in Sydney: SYN's trading day 2024-01-08
START, END = "2024-01-07T20:00:00Z", "2024-01-08T06:00:00Z"
#: Sequence numbers with a hole (4), so the gaps answer has rows to compare.
SEQUENCES = (1, 2, 3, 5, 6, 7)


class Shared(NamedTuple):
    """A query both answer: the CLI's arguments, and the API's method, path and query or body."""

    name: str
    cli: list[str]
    method: str
    path: str
    args: dict[str, Any]


SHARED = [
    Shared(
        "trades",
        ["trades", "-s", "BHP", "--start", START, "--end", END],
        "GET",
        "/v1/trades",
        {"symbol": "BHP", "start_time": START, "end_time": END},
    ),
    Shared(
        "quotes",
        ["quotes", "-s", "BHP", "--start", START, "--end", END],
        "GET",
        "/v1/quotes",
        {"symbol": "BHP", "start_time": START, "end_time": END},
    ),
    Shared(
        "bars",
        ["bars", "-s", "BHP", "-i", "5m", "--start", START, "--end", END],
        "POST",
        "/v1/aggregations",
        {"symbols": ["BHP"], "interval": "5m", "start_time": START, "end_time": END},
    ),
    Shared(
        "bars, every metric",
        [
            "bars",
            "-s",
            "BHP",
            "-i",
            "1h",
            "-m",
            "ohlcv",
            "-m",
            "vwap",
            "-m",
            "twap",
            "-m",
            "trade_count",
            "--start",
            START,
            "--end",
            END,
        ],
        "POST",
        "/v1/aggregations",
        {
            "symbols": ["BHP"],
            "interval": "1h",
            "metrics": ["ohlcv", "vwap", "twap", "trade_count"],
            "start_time": START,
            "end_time": END,
        },
    ),
    Shared("summary", ["summary", "BHP", "2024-01-08"], "GET", "/v1/summary/BHP/2024-01-08", {}),
    Shared("symbols", ["symbols"], "GET", "/v1/symbols", {}),
    Shared("stats", ["stats"], "GET", "/v1/stats", {}),
    Shared("snapshots", ["snapshots"], "GET", "/v1/snapshots", {}),
    Shared("loads", ["loads"], "GET", "/v1/loads", {}),
    Shared("gaps", ["gaps", "-s", "BHP"], "GET", "/v1/coverage/gaps", {"symbol": "BHP"}),
    Shared("coverage", ["coverage", "-s", "BHP"], "GET", "/v1/coverage", {"symbol": "BHP"}),
]
#: Fields the API still answers under an old name for one release (documented as deprecated).
DEPRECATED = {"summary": {DEPRECATED_DAY_ALIAS}}


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    """BHP trades and quotes of one SYN day, with a hole in the sequence numbers."""
    lake = EmbeddedLake.create(tmp_path_factory.mktemp("vocabulary") / "lake")
    times = [T0 + timedelta(minutes=7 * i, microseconds=i) for i in range(len(SEQUENCES))]
    trades = [
        trade_row("BHP", t, "10.5", "7", sequence=n, exchange="SYN")
        for t, n in zip(times, SEQUENCES, strict=True)
    ]
    quotes = [quote_row("BHP", t, sequence=n, exchange="SYN") for t, n in zip(times, SEQUENCES, strict=True)]
    lake.writer.append(TRADES, make_trade_rows(trades), {"k2.load.id": "vocabulary"})
    lake.writer.append(QUOTES, make_quote_rows(quotes), {"k2.load.id": "vocabulary"})
    yield lake
    lake.close()


@pytest.fixture(scope="module")
def client(small_lake: EmbeddedLake) -> Iterator[TestClient]:
    settings = small_lake.settings.model_copy(
        update={"api": ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="10000/minute")}
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _api_fields(client: TestClient, query: Shared) -> list[str]:
    if query.method == "GET":
        response = client.get(query.path, params=query.args, headers=KEY)
    else:
        response = client.post(query.path, json=query.args, headers=KEY)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    row = data[0] if isinstance(data, list) else data
    assert row, f"{query.path} answered no row to compare"
    return list(row)


def _cli(small_lake: EmbeddedLake, monkeypatch: pytest.MonkeyPatch, args: list[str], fmt: str) -> str:
    monkeypatch.setenv("K2_DATA_DIR", str(small_lake.settings.data_dir))
    result = CliRunner().invoke(app, ["query", *args, "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("query", SHARED, ids=[s.name for s in SHARED])
def test_the_cli_and_the_api_name_the_fields_alike(
    small_lake: EmbeddedLake, client: TestClient, monkeypatch: pytest.MonkeyPatch, query: Shared
) -> None:
    api = [f for f in _api_fields(client, query) if f not in DEPRECATED.get(query.name, set())]
    answer = orjson.loads(_cli(small_lake, monkeypatch, query.cli, "json"))
    row = answer[0] if isinstance(answer, list) else answer
    assert list(row) == api
    header = next(csv.reader(io.StringIO(_cli(small_lake, monkeypatch, query.cli, "csv"))))
    assert header == api


def test_the_summary_still_answers_its_old_day_field(client: TestClient) -> None:
    """``date`` repeats ``day`` for one release, as documented."""
    data = client.get("/v1/summary/BHP/2024-01-08", headers=KEY).json()["data"]
    assert data["day"] == data[DEPRECATED_DAY_ALIAS] == "2024-01-08"
