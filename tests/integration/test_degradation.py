"""The API at each degradation level, on a real embedded lake: what it still answers, what it
leaves out, how the response says so, and the way back to level 0.

The level is forced through the controller's own input: requests reported as started and not yet
finished (the in-flight signal), with thresholds of 1000 per level so that the test's own
requests do not count.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from k2.api import create_app
from k2.ingest.sources.synthetic import SyntheticMarket
from k2.resilience.degradation import DegradationController, Level
from k2.settings import ApiSettings, DegradationSettings, K2Settings
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}
PER_LEVEL = 1000
MAX_ROWS = 100


class Load:
    """Holds the controller's in-flight count at a chosen level."""

    def __init__(self, controller: DegradationController) -> None:
        self.controller = controller
        self.held = 0

    def to(self, level: Level) -> None:
        """Hold exactly the requests that make ``level`` and decide it now."""
        wanted = PER_LEVEL * level
        while self.held < wanted:
            self.controller.request_started()
            self.held += 1
        while self.held > wanted:
            self.controller.request_finished(0.0)
            self.held -= 1
        assert self.controller.evaluate() is level

    def release(self) -> None:
        """Finish every held request; the level then falls at its own pace."""
        while self.held:
            self.controller.request_finished(0.0)
            self.held -= 1


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("degrade") / "lake"
    EmbeddedLake.create(data_dir).load_synthetic(SyntheticMarket(symbols=2, days=1, trades_per_day=500))
    settings = K2Settings(
        data_dir=data_dir,
        api=ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="100000/minute", max_rows=MAX_ROWS),
        degradation=DegradationSettings(
            in_flight=(PER_LEVEL, 2 * PER_LEVEL, 3 * PER_LEVEL, 4 * PER_LEVEL),
            p99_seconds=(100.0, 200.0, 300.0, 400.0),
            hold_s=0.2,
            evaluate_interval_s=0.0,
            retry_after_s=7,
        ),
    )
    with TestClient(create_app(settings, registry=CollectorRegistry())) as test_client:
        yield test_client


@pytest.fixture
def load(client: TestClient) -> Iterator[Load]:
    """Forces levels; back at 0 (through the hold, level by level) after the test."""
    controller: DegradationController = client.app.state.degradation  # type: ignore[attr-defined]
    held = Load(controller)
    yield held
    held.release()
    _wait_for_normal(client)


def _wait_for_normal(client: TestClient) -> None:
    for _ in range(200):
        if "x-k2-degraded" not in client.get("/health").headers:
            return
        time.sleep(0.05)
    pytest.fail("the level did not fall back to 0")


@pytest.fixture(scope="module")
def symbol(client: TestClient) -> str:
    name: str = client.get("/v1/symbols", headers=KEY).json()["data"][0]["symbol"]
    return name


def _metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0


def test_level_0_answers_in_full(client: TestClient, load: Load, symbol: str) -> None:
    """At level 0 a response carries neither the header nor meta.degraded."""
    load.to(Level.NORMAL)
    response = client.get("/v1/trades", params={"symbol": symbol, "limit": 5}, headers=KEY)
    assert response.status_code == 200
    assert "x-k2-degraded" not in response.headers
    assert "degraded" not in response.json()["meta"]


def test_level_1_leaves_out_the_live_tail_and_the_quotes(client: TestClient, load: Load, symbol: str) -> None:
    """include_live is answered from the lake and with_quotes is skipped; the answer says both."""
    load.to(Level.NO_ENRICHMENTS)
    params: dict[str, str | int] = {
        "symbol": symbol,
        "limit": 5,
        "include_live": "true",
        "with_quotes": "true",
    }
    response = client.get("/v1/trades", params=params, headers=KEY)
    assert response.status_code == 200
    assert response.headers["x-k2-degraded"] == "1"
    body = response.json()
    assert body["meta"]["degraded"] == {"level": 1, "reduced": ["with_quotes", "include_live"]}
    assert len(body["data"]) == 5
    assert "bid_price" not in body["data"][0]
    recent = client.get("/v1/trades/recent", headers=KEY)
    assert recent.status_code == 200
    assert recent.json()["meta"]["degraded"] == {"level": 1, "reduced": ["include_live"]}
    plain = client.get("/v1/symbols", headers=KEY)
    assert plain.headers["x-k2-degraded"] == "1"
    assert plain.json()["meta"]["degraded"] == {"level": 1, "reduced": []}
    assert _metric(client, 'k2_http_degraded_responses_total{level="1"}') >= 3


def test_level_2_caps_pages_and_exports(client: TestClient, load: Load, symbol: str) -> None:
    """JSON pages hold at most half of max_rows, exports a quarter; the cursor goes on from there."""
    load.to(Level.SMALLER_CAPS)
    params: dict[str, str | int] = {"symbol": symbol, "limit": 80}
    response = client.get("/v1/trades", params=params, headers=KEY)
    body = response.json()
    assert len(body["data"]) == MAX_ROWS // 2
    assert body["pagination"]["limit"] == MAX_ROWS // 2
    assert body["pagination"]["next_cursor"]
    assert body["meta"]["degraded"] == {"level": 2, "reduced": ["page_size"]}
    csv = client.get("/v1/trades", params={**params, "format": "csv"}, headers=KEY)
    assert csv.headers["x-k2-degraded"] == "2"
    assert len(csv.text.strip().splitlines()) == 1 + MAX_ROWS // 4
    posted = client.post("/v1/trades/query", json={"symbols": [symbol], "limit": 80}, headers=KEY)
    assert len(posted.json()["data"]) == MAX_ROWS // 2
    small = client.get("/v1/trades", params={"symbol": symbol, "limit": 10}, headers=KEY).json()
    assert small["meta"]["degraded"] == {"level": 2, "reduced": []}


def test_level_3_answers_from_cache_and_metadata(client: TestClient, load: Load, symbol: str) -> None:
    """A read answered before is answered again; a new read, a summary, a replay: 503; metadata: 200."""
    load.to(Level.NORMAL)
    params: dict[str, str | int] = {"symbol": symbol, "limit": 7}
    first = client.get("/v1/trades", params=params, headers=KEY).json()
    load.to(Level.CACHED_ONLY)
    again = client.get("/v1/trades", params=params, headers=KEY)
    assert again.status_code == 200
    assert again.json()["data"] == first["data"]
    assert again.json()["meta"]["degraded"] == {"level": 3, "reduced": []}
    new = client.get("/v1/trades", params={"symbol": symbol, "limit": 8}, headers=KEY)
    assert new.status_code == 503
    assert new.headers["retry-after"] == "7"
    assert new.json()["error"]["code"] == "OVERLOADED"
    assert new.json()["error"]["details"] == {"level": 3}
    summary = client.get(f"/v1/summary/{symbol}/2024-01-08", headers=KEY)
    assert summary.status_code == 503
    assert summary.headers["x-k2-degraded"] == "3"
    window = {"start_time": "2024-01-07T00:00:00Z", "end_time": "2024-01-09T00:00:00Z"}
    assert client.post("/v1/replay", json=window, headers=KEY).status_code == 503
    for path in ("/v1/symbols", "/v1/stats", "/v1/snapshots", "/v1/loads", "/v1/coverage", "/health"):
        assert client.get(path, headers=KEY).status_code == 200, path


def test_level_4_sheds_everything_but_health_and_metrics(client: TestClient, load: Load) -> None:
    """Every new request is a 503 with Retry-After and the standard body; /health and /metrics answer."""
    shed_before = _metric(client, 'k2_http_requests_shed_total{reason="degraded"}')
    load.to(Level.SHEDDING)
    response = client.get("/v1/symbols", headers=KEY)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-k2-degraded"] == "4"
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("OVERLOADED", {"level": 4})
    assert error["correlation_id"] == response.headers["x-correlation-id"]
    assert error["message"]
    assert client.get("/v1/stats", headers=KEY).status_code == 503
    health = client.get("/health")
    assert health.status_code == 200
    assert health.headers["x-k2-degraded"] == "4"
    assert _metric(client, "k2_degradation_level") == 4
    assert _metric(client, 'k2_http_requests_shed_total{reason="degraded"}') == shed_before + 2


def test_the_level_falls_back_to_0(client: TestClient, load: Load, symbol: str) -> None:
    """Released from level 4, the level falls one step per hold to 0, and reads answer in full again."""
    load.to(Level.SHEDDING)
    downs = _metric(client, 'k2_degradation_transitions_total{direction="down"}')
    load.release()
    _wait_for_normal(client)
    assert _metric(client, 'k2_degradation_transitions_total{direction="down"}') == downs + 4
    assert _metric(client, "k2_degradation_level") == 0
    response = client.get("/v1/trades", params={"symbol": symbol, "limit": 3}, headers=KEY)
    assert response.status_code == 200
    assert "degraded" not in response.json()["meta"]
