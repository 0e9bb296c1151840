"""The operator's view on a real workload: K2's processes (a bulk load through Kafka, the sink, a
live feed replaying a recording, the API under requests) register with the platform's
Prometheus, and every panel of every shipped Grafana dashboard then answers with data.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from deploy.grafana import PanelQuery, panel_queries
from k2.ingest.live.binance.tapes import SyntheticTape
from k2.platform.prometheus import Prometheus
from k2.settings import ApiSettings, K2Settings
from k2.testing.processes import K2Process, processes
from tests.fixtures.platform import isolated

pytestmark = [pytest.mark.e2e, pytest.mark.platform, pytest.mark.kafka]

KEY = "ops-key"
BURST_KEY = "burst-key"
#: Frames in the live recording (10 ms apart), replayed at 2x: the feed outlives the test (~5 min).
FRAMES = 60_000
#: How long the panels may take to fill after the workload (Prometheus scrapes every 5 s).
PANELS_TIMEOUT_S = 90.0


def _recording(path: Path) -> Path:
    start_ms = int(datetime.now(UTC).timestamp() * 1000)
    clock = itertools.count(start_ms, 10)
    tape = SyntheticTape(("BTCUSDT", "ETHUSDT"), clock_ms=lambda: next(clock), first_trade_id=start_ms)
    frames = (tape.step() for _ in range(FRAMES))
    path.write_bytes(b"".join(orjson.dumps({"stream": e.stream, "data": e.data}) + b"\n" for e in frames))
    return path


def _eventually(check: Callable[[], bool], what: str, timeout_s: float, process: K2Process) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} within {timeout_s:g} s; {process.name} said:\n{process.output()[-3000:]}"
            )
        time.sleep(1.0)


def _workload(url: str) -> None:
    """What users do: ticks, live ticks, bars, summaries, metadata, mistakes, and a burst past the
    rate limit of a second key.
    """
    headers = {"X-API-Key": KEY}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(3):
            for path, params in (
                (
                    "/v1/trades",
                    {"symbol": "BHP", "start": "2014-03-10T00:00:00Z", "end": "2014-03-11T00:00:00Z"},
                ),
                (
                    "/v1/quotes",
                    {"symbol": "BHP", "start": "2014-03-10T00:00:00Z", "end": "2014-03-10T06:00:00Z"},
                ),
                ("/v1/trades", {"symbol": "BTCUSDT", "exchange": "BINANCE", "include_live": "true"}),
                ("/v1/trades/recent", {"symbol": "BTCUSDT"}),
                ("/v1/summary/BHP/2014-03-11", {}),
                ("/v1/summary/BHP/2014-03-15", {}),  # no trades that day: a 404
                ("/v1/symbols", {}),
                ("/v1/stats", {}),
                ("/v1/snapshots", {}),
                ("/v1/coverage", {"symbol": "BHP"}),
                ("/v1/trades", {"symbol": "BHP", "start": "not a time"}),  # a 4xx
            ):
                client.get(path, params=params)
            client.post(
                "/v1/aggregations",
                json={
                    "symbols": ["BHP"],
                    "interval": "5m",
                    "start_time": "2014-03-10T00:00:00Z",
                    "end_time": "2014-03-11T00:00:00Z",
                    "metrics": ["ohlcv", "vwap"],
                },
            )
        refused = [client.get("/v1/symbols", headers={"X-API-Key": BURST_KEY}).status_code for _ in range(40)]
    assert 429 in refused, refused


def _query(prometheus: str, expr: str) -> dict[str, Any]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    body: dict[str, Any] = answer.json()
    return body


def _empty_panels(prometheus: str, queries: list[PanelQuery]) -> list[str]:
    """The panels whose query is malformed or has no series yet."""
    empty = []
    for query in queries:
        body = _query(prometheus, query.expr)
        assert body["status"] == "success", f"{query.dashboard} / {query.panel}: {body} for {query.expr}"
        if not body["data"]["result"]:
            empty.append(f"{query.dashboard} / {query.panel}: {query.expr}")
    return empty


def test_every_dashboard_panel_has_data_after_a_real_workload(
    platform: K2Settings, asx_sample: Path, tmp_path: Path
) -> None:
    base = isolated(platform, tmp_path / "k2")
    settings = base.model_copy(
        update={"api": ApiSettings(keys=SecretStr(f"ops:{KEY},burst:{BURST_KEY}"), rate_limit="10/second")}
    )
    prometheus = Prometheus(platform).url
    recording = _recording(tmp_path / "recording.jsonl")
    with processes(settings, tmp_path / "logs") as run:
        sink = run.start("sink", "stream", "run")
        loader = run.start("producer", "ingest", "asx", str(asx_sample), "--via", "kafka")
        feed = run.start("feed", "stream", "playback", str(recording), "--speed", "2x")
        api, url = run.serve()
        assert loader.wait(600) == 0, loader.output()[-3000:]

        def landed() -> bool:
            stats = httpx.get(f"{url}/v1/stats", headers={"X-API-Key": KEY}, timeout=30).json()
            return any(row["table"] == "trades" and row["rows"] > 0 for row in stats["data"])

        _eventually(landed, "the sink landed trades", 300, sink)
        _workload(url)

        def scraped(job: str) -> Callable[[], bool]:
            query = f'count_over_time(up{{job="{job}"}}[1m]) >= 3'
            return lambda: bool(_query(prometheus, query)["data"]["result"])

        for job, process in (("k2-sink", sink), ("k2-feed", feed), ("k2-api", api)):
            _eventually(scraped(job), f"Prometheus scraped {job} three times", 60, process)

        queries = panel_queries()
        assert len(queries) >= 15
        deadline = time.monotonic() + PANELS_TIMEOUT_S
        empty = _empty_panels(prometheus, queries)
        while empty and time.monotonic() < deadline:
            time.sleep(5)
            empty = _empty_panels(prometheus, queries)
        assert not empty, "panels without data:\n" + "\n".join(empty)
        for process in (sink, feed, api):
            assert process.running(), f"{process.name} exited:\n{process.output()[-3000:]}"
    target_files = list((platform.platform_data / "prometheus" / "targets").glob(f"k2-*-{sink.pid}-*.json"))
    assert target_files == []  # stopped processes unregister
