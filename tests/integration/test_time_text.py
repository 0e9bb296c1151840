"""Every time K2 writes as text has one shape, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: microseconds
always present (also on a whole second) and ``Z``, in every JSON and CSV answer of the API and
every ``--format json|csv`` of the CLI; so times sort and compare as text and keep their width.
The ASX sample has trades on whole seconds (one of BHP's at 2014-03-09T23:29:42 UTC).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from k2.api import create_app
from k2.cli.main import app
from k2.settings import ApiSettings
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
#: Any text that starts like a time, to be held to TIME.
TIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:")
DAY = {"start_time": "2014-03-09T13:00:00Z", "end_time": "2014-03-10T13:00:00Z"}
WHOLE_SECOND = "2014-03-09T23:29:42.000000Z"

#: Every route that answers times (``/v1/symbols`` has none), as (method, path, query or body).
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/trades", {"symbol": "BHP", "limit": 50, **DAY}),
    ("GET", "/v1/trades", {"symbol": "BHP", "limit": 50, "with_quotes": "true", **DAY}),
    ("GET", "/v1/quotes", {"symbol": "BHP", "limit": 50, **DAY}),
    ("POST", "/v1/aggregations", {"symbols": ["BHP"], "interval": "1m", "metrics": ["ohlcv", "twap"], **DAY}),
    ("POST", "/v1/replay", {"symbols": ["BHP"], "batch_size": 50, **DAY}),
    ("GET", "/v1/summary/BHP/2014-03-10", {}),
    ("GET", "/v1/stats", {}),
    ("GET", "/v1/snapshots", {}),
    ("GET", "/v1/loads", {}),
    ("GET", "/v1/coverage", {}),
    ("GET", "/v1/coverage/gaps", {}),
]
FORMATTED = {"/v1/trades", "/v1/quotes", "/v1/aggregations", "/v1/replay"}


def _times_in(value: object) -> Iterator[str]:
    """Every string in a JSON value that starts like a time."""
    if isinstance(value, str) and TIME_LIKE.match(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _times_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _times_in(item)


def _csv_times(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row if TIME_LIKE.match(cell)]


@pytest.fixture(scope="module")
def client(asx_lake: EmbeddedLake) -> Iterator[TestClient]:
    settings = asx_lake.settings.model_copy(
        update={"api": ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="10000/minute")}
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _call(client: TestClient, method: str, path: str, args: dict[str, Any], fmt: str | None) -> str:
    if method == "GET":
        params = {**args, "format": fmt} if fmt else args
        response = client.get(path, params=params, headers=KEY)
    else:
        response = client.post(path, json={**args, "format": fmt} if fmt else args, headers=KEY)
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize(("method", "path", "args"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_api_answer_writes_times_with_microseconds(
    client: TestClient, method: str, path: str, args: dict[str, Any]
) -> None:
    """JSON (the rows and the envelope) and, where the route has it, CSV."""
    times = list(_times_in(orjson.loads(_call(client, method, path, args, None))))
    assert times or path == "/v1/coverage/gaps", f"{path} wrote no time"  # the sample has no gaps
    assert [t for t in times if not TIME.fullmatch(t)] == []
    if path in FORMATTED:
        written = _csv_times(_call(client, method, path, args, "csv"))
        assert written
        assert [t for t in written if not TIME.fullmatch(t)] == []


def test_a_trade_on_a_whole_second_keeps_its_microseconds(client: TestClient) -> None:
    """The case that changed shape: a trade on a whole second."""
    params: dict[str, str | int] = {"symbol": "BHP", "limit": 1, "start_time": WHOLE_SECOND}
    page = client.get("/v1/trades", params=params, headers=KEY).json()
    assert page["data"][0]["timestamp"] == WHOLE_SECOND
    csv_text = client.get("/v1/trades", params={**params, "format": "csv"}, headers=KEY).text
    assert WHOLE_SECOND in _csv_times(csv_text)


def test_health_writes_its_time_with_microseconds(client: TestClient) -> None:
    checked = client.get("/health").json()["checked_at"]
    assert TIME.fullmatch(checked), checked


CLI_QUERIES = [
    ["trades", "--symbol", "BHP", "--limit", "20", "--start", DAY["start_time"], "--end", DAY["end_time"]],
    ["quotes", "--symbol", "BHP", "--limit", "20", "--start", DAY["start_time"], "--end", DAY["end_time"]],
    ["bars", "--symbol", "BHP", "-i", "5m", "--start", DAY["start_time"], "--end", DAY["end_time"]],
    ["summary", "BHP", "2014-03-10"],
    ["stats"],
    ["snapshots"],
    ["loads"],
    ["coverage", "--symbol", "BHP"],
]


@pytest.mark.parametrize("args", CLI_QUERIES, ids=[a[0] for a in CLI_QUERIES])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_every_cli_query_writes_times_with_microseconds(
    asx_lake: EmbeddedLake, monkeypatch: pytest.MonkeyPatch, args: list[str], fmt: str
) -> None:
    monkeypatch.setenv("K2_DATA_DIR", str(Path(asx_lake.settings.data_dir)))
    result = CliRunner().invoke(app, ["query", *args, "--format", fmt])
    assert result.exit_code == 0, result.output
    times = list(_times_in(orjson.loads(result.stdout))) if fmt == "json" else _csv_times(result.stdout)
    assert times
    assert [t for t in times if not TIME.fullmatch(t)] == []
