"""Encoded answers kept per snapshot: a repeated request is served from memory with its own
correlation id, and a commit (a new snapshot) is never answered from an older one.
"""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from k2.api import create_app
from k2.lake.tables import TRADES
from k2.settings import ApiSettings
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}
T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)


def _append(lake: EmbeddedLake, first: int, count: int) -> None:
    rows = [
        trade_row("BHP", T0 + timedelta(seconds=i), str(10 + i), sequence=i + 1)
        for i in range(first, first + count)
    ]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": f"load-{first}"})


def _cache_counts(registry: CollectorRegistry) -> tuple[float, float]:
    hits = registry.get_sample_value("k2_query_cache_hits_total", {"cache": "answers"}) or 0.0
    misses = registry.get_sample_value("k2_query_cache_misses_total", {"cache": "answers"}) or 0.0
    return hits, misses


def test_a_repeated_request_is_served_from_its_snapshot_and_a_commit_is_not_missed(
    lake: EmbeddedLake,
) -> None:
    """The second identical request is a hit with the same rows and its own correlation id; after
    a commit the same request reads the new snapshot; bars are kept the same way.
    """
    _append(lake, 0, 5)
    registry = CollectorRegistry()
    settings = lake.settings.model_copy(
        update={"api": ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="1000/minute")}
    )
    params: dict[str, str | int] = {"symbol": "BHP", "limit": 100}
    bars: dict[str, object] = {
        "metrics": ["ohlcv", "trade_count"],
        "symbols": ["BHP"],
        "interval": "1m",
        "start_time": "2024-01-08T00:00:00Z",
        "end_time": "2024-01-08T01:00:00Z",
    }
    with TestClient(create_app(settings, registry=registry)) as client:
        first = client.get("/v1/trades", params=params, headers={**KEY, "X-Correlation-ID": "one"})
        again = client.get("/v1/trades", params=params, headers={**KEY, "X-Correlation-ID": "two"})
        assert _cache_counts(registry) == (1.0, 1.0)
        one, two = orjson.loads(first.content), orjson.loads(again.content)
        assert (one["meta"]["correlation_id"], two["meta"]["correlation_id"]) == ("one", "two")
        assert one["data"] == two["data"]
        assert len(one["data"]) == 5
        for fmt in ("arrow", "csv"):
            assert client.get("/v1/trades", params={**params, "format": fmt}, headers=KEY).content == (
                client.get("/v1/trades", params={**params, "format": fmt}, headers=KEY).content
            )
        minute = client.post("/v1/aggregations", json=bars, headers=KEY).json()["data"]

        _append(lake, 5, 3)
        after = client.get("/v1/trades", params=params, headers=KEY).json()
        assert len(after["data"]) == 8
        assert after["meta"]["snapshot_id"] != one["meta"]["snapshot_id"]
        assert [
            row["trade_count"]
            for row in client.post("/v1/aggregations", json=bars, headers=KEY).json()["data"]
        ] == [8]
        assert [row["trade_count"] for row in minute] == [5]
        pinned = client.get(
            "/v1/trades", params={**params, "as_of_snapshot": one["meta"]["snapshot_id"]}, headers=KEY
        )
        assert pinned.json()["data"] == one["data"]
