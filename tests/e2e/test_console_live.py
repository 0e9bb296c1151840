"""The console following the live tail on the platform, in a real browser: trades produced to
Kafka that no sink has committed reach the page's tape and candles without a reload.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from k2.domain.venues import venue
from k2.ingest.producer import MarketProducer
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import TRADES
from k2.settings import K2Settings
from k2.testing import EmbeddedLake, make_trade_rows, trade_row
from k2.testing.processes import environment
from tests.fixtures.platform import isolated
from tests.fixtures.servers import k2_serve

pytestmark = [pytest.mark.e2e, pytest.mark.platform, pytest.mark.kafka]

KEY = "live-key"
SYMBOL = "LIVE"
EXCHANGE = "SYN"


def _trades(start: datetime, count: int, first_sequence: int, price: str) -> list[dict[str, object]]:
    return [
        trade_row(
            SYMBOL,
            start + timedelta(seconds=i),
            Decimal(price) + i,
            "10",
            sequence=first_sequence + i,
            exchange=EXCHANGE,
        )
        for i in range(count)
    ]


def _produce(settings: K2Settings, rows: list[dict[str, object]]) -> None:
    with MarketProducer(settings.kafka) as producer:
        producer.produce_batch(SourceBatch(TRADES, make_trade_rows(rows), rows_read=len(rows), bytes_read=0))


def test_following_live_shows_the_kafka_tail_without_a_reload(
    platform: K2Settings, tmp_path: Path, page: Page, screenshots: Path
) -> None:
    """The lake holds the day's first trades; trades produced after them (no sink runs) reach the
    top of the tape and new candles once "Follow live" is on, and so do trades produced while
    the page follows."""
    settings = isolated(platform, tmp_path / "lake")
    now = datetime.now(UTC).replace(microsecond=0)
    midnight = datetime.combine(now.astimezone(venue(EXCHANGE).zone).date(), time(0), venue(EXCHANGE).zone)
    next_midnight = datetime.combine(midnight.date() + timedelta(days=1), time(0), midnight.tzinfo)
    # The lake's minute and the tail's six after it, all on the venue's today.
    latest = min(now - timedelta(minutes=30), next_midnight - timedelta(minutes=10))
    lake_start = max(midnight, latest).astimezone(UTC).replace(second=0)
    lake = EmbeddedLake.open(settings)
    try:
        lake.writer.append(TRADES, make_trade_rows(_trades(lake_start, 5, 1, "10")), {"k2.load.id": "lake"})
    finally:
        lake.close()
    tail_start = lake_start + timedelta(minutes=3)
    _produce(settings, _trades(tail_start, 4, 100, "20"))
    env = {
        **environment(settings),
        "K2_API_KEYS": f"live:{KEY}",
        "K2_API_RATE_LIMIT": "10000/minute",
        "K2_DEGRADATION_ENABLED": "false",
    }
    with k2_serve(settings.data_dir, env) as server:
        page.goto(f"{server.url}/ui/")
        page.get_by_label("API key").fill(KEY)
        page.get_by_role("button", name="Use this key").click()
        page.get_by_label("Symbol").select_option(f"{EXCHANGE}:{SYMBOL}")
        expect(page.locator("#chart")).to_have_attribute("data-candles", "1")  # the lake's minute
        expect(page.locator("#pipeline-body")).to_have_attribute("data-profile", "platform")
        page.get_by_label("Follow live").check()
        tape = page.locator("#tape-rows tr")
        expect(tape).to_have_count(9)  # the last candle's trades again, and the tail's
        expect(tape.first.locator("td").nth(1)).to_have_text("23")
        expect(page.locator("#chart")).to_have_attribute("data-candles", "2")
        expect(page.locator("#live-status")).to_contain_text("9 trades arrived")

        _produce(settings, _trades(tail_start + timedelta(minutes=2), 2, 200, "30"))
        expect(tape).to_have_count(11)
        expect(tape.first.locator("td").nth(1)).to_have_text("31")
        expect(page.locator("#chart")).to_have_attribute("data-candles", "3")
        expect(page.locator("#live-status")).to_contain_text("11 trades arrived")
        page.screenshot(path=screenshots / "live.png")
        page.get_by_label("Follow live").uncheck()
        expect(page.locator("#live-status")).to_have_text("")
