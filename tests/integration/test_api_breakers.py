"""The API while the embedded lake's object store fails for real: the warehouse folder replaced by
a file, so every data-file read fails with an OSError. The store's breaker opens, reads are refused
fast with 503 and Retry-After, and once the folder is back the half-open probe closes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from k2.api import create_app
from k2.ingest.sources.synthetic import SyntheticMarket
from k2.settings import ApiSettings, QuerySettings, ResilienceSettings
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}
FAIL_MAX = 2
RESET_S = 1.0


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[EmbeddedLake]:
    embedded = EmbeddedLake.create(tmp_path / "lake")
    embedded.load_synthetic(SyntheticMarket(symbols=2, days=1, trades_per_day=200))
    yield embedded
    embedded.close()


@pytest.fixture
def api(lake: EmbeddedLake) -> Iterator[tuple[TestClient, CollectorRegistry]]:
    """The API with no caches (every read touches the files) and quick breakers."""
    settings = lake.settings.model_copy(
        update={
            "api": ApiSettings(keys=SecretStr("tester:test-key"), answer_cache_bytes=0),
            "query": QuerySettings(cache_bytes=0),
            "resilience": ResilienceSettings(breaker_fail_max=FAIL_MAX, breaker_reset_s=RESET_S),
        }
    )
    registry = CollectorRegistry()
    with TestClient(create_app(settings, registry=registry)) as client:
        yield client, registry


def _trades(client: TestClient) -> tuple[int, dict[str, object], dict[str, str]]:
    response = client.get("/v1/trades", params={"limit": 5}, headers=KEY)
    return response.status_code, response.json(), dict(response.headers)


def test_store_outage_opens_the_breaker_and_recovery_closes_it(
    lake: EmbeddedLake, api: tuple[TestClient, CollectorRegistry]
) -> None:
    """Store down: 503 DEPENDENCY_UNAVAILABLE at once, then refused (before any I/O: a breaker_open
    shed) with Retry-After; store back: after the reset time the API's background probe closes the
    breaker without any request, and reads are 200 again.
    """
    client, registry = api
    assert _trades(client)[0] == 200
    warehouse = lake.settings.data_dir / "warehouse"
    aside = warehouse.with_name("warehouse-away")
    warehouse.rename(aside)
    warehouse.write_bytes(b"not a folder")
    try:
        state = {"dependency": "object_store"}
        failing = 0
        while registry.get_sample_value("k2_circuit_breaker_state", state) != 1:
            # One read may touch several files, so it can count more than one failure.
            status, body, headers = _trades(client)
            assert status == 503
            assert body["error"]["code"] == "DEPENDENCY_UNAVAILABLE"  # type: ignore[index]
            failing += 1
            assert failing <= FAIL_MAX
        shed = {"reason": "breaker_open"}
        assert registry.get_sample_value("k2_http_requests_shed_total", shed) in (None, 0)
        status, body, headers = _trades(client)
        error = body["error"]
        assert status == 503, body
        assert error["code"] == "DEPENDENCY_UNAVAILABLE"  # type: ignore[index]
        assert error["details"] == [{"field": "dependency", "message": "object_store"}]  # type: ignore[index]
        assert error["correlation_id"]  # type: ignore[index]
        assert 1 <= int(headers["retry-after"]) <= RESET_S
        assert registry.get_sample_value("k2_http_requests_shed_total", shed) == 1
        assert client.get("/health").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["breakers"]["object_store"] == "open"
    finally:
        warehouse.unlink()
        aside.rename(warehouse)
    # No request needed: once the reset time has passed, the API's own probe closes the breaker.
    deadline = time.monotonic() + RESET_S + 10
    while registry.get_sample_value("k2_circuit_breaker_state", state) != 0:
        assert time.monotonic() < deadline, "the background probe never closed the breaker"
        time.sleep(0.2)
    assert _trades(client)[0] == 200
    assert registry.get_sample_value("k2_circuit_breaker_state", {"dependency": "object_store"}) == 0
    assert client.get("/health/ready").json()["breakers"]["object_store"] == "closed"


def test_a_missing_table_never_trips_a_breaker(tmp_path: Path) -> None:
    """An empty lake answers 404 NO_DATA as often as asked; the catalog's breaker stays closed."""
    empty = EmbeddedLake.create(tmp_path / "empty")
    settings = empty.settings.model_copy(
        update={
            "api": ApiSettings(keys=SecretStr("tester:test-key")),
            "resilience": ResilienceSettings(breaker_fail_max=FAIL_MAX, breaker_reset_s=RESET_S),
        }
    )
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        for _ in range(FAIL_MAX * 3):
            assert client.get("/v1/trades", headers=KEY).status_code == 404
        assert client.get("/health/ready").json()["breakers"]["catalog"] == "closed"
    empty.close()
