"""A bounded load test on loopback: concurrent clients drive a real ``k2 serve`` past the
degradation thresholds it is given. The level rises, nothing answers 500, the server's memory
stays under a bound, and when the load stops the level falls back to 0. The served p99 and the
time to fall are logged, not asserted: they are the loaded machine's (a 3 s bound flaked at 3.6 s
while other work shared the cores).
"""

import asyncio
import logging
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from k2.ingest.sources.synthetic import SyntheticMarket
from k2.testing import EmbeddedLake
from tests.fixtures.servers import Server, k2_serve

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

KEY = "load-key"
CLIENTS = 48
LOAD_S = 12.0
HOLD_S = 2.0
#: Resident memory of the server process at any time.
RSS_BOUND_BYTES = int(1.5 * 1024**3)
#: How long the level may take to fall back to 0 (four falls of one hold each, the latency window
#: emptying first, slack for a loaded machine): a deadline to wait for, not an asserted timing.
FALL_BOUND_S = 4 * HOLD_S + 2.0 + 6.0
SETTINGS = {
    "K2_API_KEYS": f"load:{KEY}",
    "K2_API_RATE_LIMIT": "100000000/minute",
    "K2_API_ANSWER_CACHE_BYTES": "0",  # every read does its work: no answer is served from memory
    "K2_DEGRADATION_IN_FLIGHT": "[4, 8, 12, 16]",
    "K2_DEGRADATION_P99_SECONDS": "[0.25, 0.5, 1.0, 2.0]",
    "K2_DEGRADATION_HOLD_S": str(HOLD_S),
    "K2_DEGRADATION_WINDOW_S": "2",
    "K2_DEGRADATION_EVALUATE_INTERVAL_S": "0.25",
}


@dataclass
class Observed:
    """What the clients got and what the monitor read while the load ran."""

    answers: list[tuple[int, float]] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    #: Requests whose connection the server closed before answering.
    dropped: int = 0

    def served_p99(self) -> float:
        served = sorted(seconds for status, seconds in self.answers if status == 200)
        assert len(served) >= 20, f"only {len(served)} requests served"
        return served[int(0.99 * (len(served) - 1))]


async def _metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """The degradation samples of /metrics by name and direction."""
    text = (await http.get("/metrics")).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("k2_degradation"):
                samples[sample.name + sample.labels.get("direction", "")] = sample.value
    return samples


async def _client(http: httpx.AsyncClient, symbols: list[str], until: float, seen: Observed) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        params: dict[str, str | int] = {
            "symbol": rng.choice(symbols),
            "limit": rng.randint(100, 500),
            "with_quotes": "true",
        }
        began = time.perf_counter()
        try:
            response = await http.get("/v1/trades", params=params, headers={"X-API-Key": KEY})
        except httpx.TransportError:  # a keep-alive connection closed under the client's feet
            seen.dropped += 1
            continue
        seen.answers.append((response.status_code, time.perf_counter() - began))
        if response.status_code == 503:
            await asyncio.sleep(0.05)  # keep the pressure on, without spinning on refusals


async def _monitor(http: httpx.AsyncClient, server: Server, until: float, seen: Observed) -> None:
    while time.monotonic() < until:
        seen.levels.append((await _metrics(http))["k2_degradation_level"])
        seen.rss.append(server.process.rss_bytes())
        await asyncio.sleep(0.25)


async def _overload(server: Server) -> tuple[Observed, dict[str, float], float]:
    """Run the load; then the metrics it left and how long the level took to fall back to 0."""
    seen = Observed()
    limits = httpx.Limits(max_connections=CLIENTS + 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
        auth = {"X-API-Key": KEY}
        listed = await http.get("/v1/symbols", headers=auth)
        symbols = [row["symbol"] for row in listed.json()["data"]]
        for symbol in symbols:  # warm the row-group cache: the bound is about load, not a cold start
            await http.get("/v1/trades", params={"symbol": symbol, "with_quotes": "true"}, headers=auth)
        until = time.monotonic() + LOAD_S
        clients = [_client(http, symbols, until, seen) for _ in range(CLIENTS)]
        await asyncio.gather(_monitor(http, server, until, seen), *clients)
        stopped = time.monotonic()
        after = await _metrics(http)
        while after["k2_degradation_level"] > 0 and time.monotonic() - stopped < FALL_BOUND_S + 5:
            await asyncio.sleep(0.25)
            seen.rss.append(server.process.rss_bytes())
            after = await _metrics(http)
        return seen, after, time.monotonic() - stopped


def test_overload_degrades_and_recovers() -> None:
    """Past capacity the level rises, memory stays bounded, no 500, and the level recovers."""
    with tempfile.TemporaryDirectory(prefix="k2-overload-") as scratch:
        data_dir = Path(scratch) / "lake"
        lake = EmbeddedLake.create(data_dir)
        lake.load_synthetic(SyntheticMarket(symbols=4, days=1, trades_per_day=5000))
        lake.close()
        with k2_serve(data_dir, SETTINGS) as server:
            seen, after, fall_s = asyncio.run(_overload(server))
    statuses = {status for status, _ in seen.answers}
    p99 = seen.served_p99()
    figures = {
        "requests": len(seen.answers),
        "served": sum(status == 200 for status, _ in seen.answers),
        "shed": sum(status == 503 for status, _ in seen.answers),
        "dropped": seen.dropped,
        "max_level": max(seen.levels),
        "served_p99_s": round(p99, 3),
        "max_rss_mb": max(seen.rss) // 2**20,
        "fall_s": round(fall_s, 1),
        "transitions_up": after["k2_degradation_transitions_totalup"],
        "transitions_down": after["k2_degradation_transitions_totaldown"],
    }
    log.info("overload figures: %s", figures)  # shown with -o log_cli=true --log-cli-level=INFO
    assert statuses <= {200, 503}, f"statuses {statuses}: never a 500"
    # Under this overload the server may close a kept-alive connection; rarely, never as the rule.
    assert seen.dropped <= 0.02 * len(seen.answers), f"{seen.dropped} dropped of {len(seen.answers)}"
    assert max(seen.levels) >= 1
    assert after["k2_degradation_transitions_totalup"] >= 1
    assert max(seen.rss) <= RSS_BOUND_BYTES
    assert after["k2_degradation_level"] == 0, f"still at level {after['k2_degradation_level']}"
    assert after["k2_degradation_transitions_totaldown"] >= after["k2_degradation_transitions_totalup"]
