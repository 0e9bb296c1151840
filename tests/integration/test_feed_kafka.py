"""The live Binance feed end to end on the platform: through real Kafka into Iceberg and out
through the query engine and the API, its dead letters, a stop by signal, and a restart that
resumes its gap checks from what the topic holds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from k2.api import create_app
from k2.ingest.live.binance.feed import BinanceFeed
from k2.ingest.live.binance.protocol import EXCHANGE
from k2.ingest.live.binance.server import Behaviour, BinanceServer
from k2.ingest.live.binance.tapes import SyntheticTape, Tape
from k2.ingest.live.output import KafkaFeedOutput
from k2.ingest.live.status import FeedStats
from k2.kafka.dead_letters import REASON_HEADER
from k2.kafka.topics import DataType, market_topic
from k2.lake.tables import QUOTES, TRADES
from k2.obs.metrics import K2Metrics
from k2.query.ticks import TickQuery, trades
from k2.settings import ApiSettings, K2Settings
from k2.stream.sink import Sink
from k2.testing import EmbeddedLake
from tests.fixtures.feed import DEADLINE_S, MALFORMED, SYMBOLS, feed_settings_for, run_until
from tests.fixtures.platform import dead_letters, isolated

pytestmark = pytest.mark.integration


# --- end to end through the platform -------------------------------------------------------------


@pytest.fixture
def feed_settings(platform: K2Settings, tmp_path: Path) -> K2Settings:
    """The platform with a catalog, topic prefix and consumer group of this test's own."""
    return isolated(platform, tmp_path)


def _header(message: Message, name: str) -> str:
    value = dict(message.headers() or [])[name]
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.platform
@pytest.mark.kafka
def test_feed_lands_in_iceberg_through_kafka(feed_settings: K2Settings) -> None:
    """Trades and quotes from the feed (with a reconnect, a backfilled gap and malformed frames)
    go through Kafka, the sink lands them once each in Iceberg, the query engine and the API read
    them back exactly, and the malformed frames wait in the dead-letter topic with their reason."""
    metrics = K2Metrics(CollectorRegistry())
    behaviour = Behaviour(
        disconnect_after=150, skip_on_reconnect=4, malformed=MALFORMED[:2], malformed_every=40
    )
    with KafkaFeedOutput(
        feed_settings.kafka, metrics, exchange=EXCHANGE, linger_ms=feed_settings.binance.producer_linger_ms
    ) as kafka_sink:

        async def main() -> FeedStats:
            async with BinanceServer(SyntheticTape(SYMBOLS, total=300), behaviour) as server:
                feed = BinanceFeed(feed_settings_for(server), kafka_sink, metrics)
                expected = 300 + 4 * len(SYMBOLS)
                return await run_until(
                    feed, lambda: server.finished.is_set() and feed.stats.produced >= expected
                )

        stats = asyncio.run(main())
    assert stats.gaps == len(SYMBOLS)
    assert stats.backfilled == 4 * len(SYMBOLS)
    assert kafka_sink.resent == 0
    assert kafka_sink.dead_letters == 2

    lake = EmbeddedLake.open(feed_settings)
    try:
        sink = Sink(feed_settings, lake.writer, K2Metrics(CollectorRegistry()))
        sink.run(threading.Event(), idle_exit_s=4.0)
        assert sink.report.rows_written == 300 + stats.backfilled
        page = trades(lake.engine, TickQuery(symbols=("BTCUSDT",), exchange="BINANCE", limit=10_000))
        rows = page.rows.to_pylist()
        ids = [r["source_sequence"] for r in rows]
        assert ids == list(range(1_000_000, 1_000_000 + 50 + 4))  # 50 streamed + 4 backfilled, in order
        assert all(r["currency"] == "USDT" and r["asset_class"] == "crypto" for r in rows)
        assert all(isinstance(r["price"], Decimal) for r in rows)
        quotes = lake.writer.table(QUOTES).scan(selected_fields=("message_id",)).to_arrow()
        assert quotes.num_rows == 150
        assert lake.writer.table(TRADES).scan(selected_fields=("message_id",)).to_arrow().num_rows == 162
    finally:
        lake.close()

    api_settings = feed_settings.model_copy(update={"api": ApiSettings(keys=SecretStr("t:key"))})
    with TestClient(create_app(api_settings, registry=CollectorRegistry())) as client:
        start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        answer = client.get(
            "/v1/trades",
            params={"symbol": "ETHUSDT", "exchange": "BINANCE", "start_time": start, "limit": 1000},
            headers={"X-API-Key": "key"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["meta"]["count"] == 54

    letters = dead_letters(feed_settings, "BINANCE", 2)
    assert sorted(m.value() or b"" for m in letters) == sorted(MALFORMED[:2])
    reasons = sorted(_header(m, REASON_HEADER) for m in letters)
    assert reasons == ["invalid_json", "unknown_stream"]


@pytest.mark.platform
@pytest.mark.kafka
def test_a_restarted_feed_resumes_from_the_last_trades_in_kafka(feed_settings: K2Settings) -> None:
    """A feed started again reads each symbol's last trade id back from the trades topic, so
    the trades Binance sent while no feed ran are found as a gap and backfilled into Kafka."""
    linger = feed_settings.binance.producer_linger_ms

    async def run(server: BinanceServer, until: Callable[[BinanceFeed], bool]) -> FeedStats:
        metrics = K2Metrics(CollectorRegistry())
        with KafkaFeedOutput(feed_settings.kafka, metrics, exchange=EXCHANGE, linger_ms=linger) as sink:
            feed = BinanceFeed(feed_settings_for(server), sink, metrics)
            return await run_until(feed, lambda: until(feed))

    async def main() -> tuple[FeedStats, FeedStats]:
        async with BinanceServer(SyntheticTape(SYMBOLS, rate=2000), Behaviour(skip_on_reconnect=6)) as server:
            before = await run(server, lambda feed: feed.stats.produced >= 150)
            after = await run(server, lambda feed: feed.stats.backfilled >= 6 * len(SYMBOLS))
            return before, after

    before, after = asyncio.run(main())
    assert before.gaps == 0
    assert after.gaps == len(SYMBOLS)
    # At least the skipped trades; also any the server had sent as the first feed closed.
    assert all(g.missing >= 6 and g.status == "backfilled" for g in after.recent_gaps)
    assert after.backfilled == after.gap_trades


class _ServerThread:
    """A :class:`BinanceServer` on its own thread and event loop, for a feed in another process."""

    def __init__(self, tape: Tape, behaviour: Behaviour) -> None:
        self._tape, self._behaviour = tape, behaviour
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.server: BinanceServer | None = None

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with BinanceServer(self._tape, self._behaviour) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> BinanceServer:
        self._thread.start()
        assert self._ready.wait(10)
        assert self.server is not None
        return self.server

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def _end_offsets(settings: K2Settings, topic: str) -> int:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "k2-test-offsets"}
    )
    try:
        total = 0
        for partition in range(settings.kafka.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high
        return total
    finally:
        consumer.close()


@pytest.mark.platform
@pytest.mark.kafka
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_feed_after_producing_everything_received(
    feed_settings: K2Settings, sig: signal.Signals
) -> None:
    """`k2 stream binance` stopped by SIGINT or SIGTERM exits cleanly after every message it
    received is in Kafka: the topics' end offsets add up to what it reports."""
    with _ServerThread(SyntheticTape(SYMBOLS, rate=1000), Behaviour()) as server:
        env = {
            **os.environ,
            "K2_PROFILE": "platform",
            "K2_DATA_DIR": str(feed_settings.data_dir),
            "K2_KAFKA_TOPIC_PREFIX": feed_settings.kafka.topic_prefix,
            "K2_KAFKA_PARTITIONS": str(feed_settings.kafka.partitions),
            "K2_BINANCE_WS_URL": server.ws_url,
            "K2_BINANCE_REST_URL": server.rest_url,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "k2.cli.main",
                "stream",
                "binance",
                "--symbols",
                ",".join(SYMBOLS),
                "-f",
                "json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + DEADLINE_S
        while server.stats.sent < 1500 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(sig)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    report = orjson.loads(out)
    assert report["trades"] >= 700
    assert report["produced"] == report["trades"] + report["quotes"]
    prefix = feed_settings.kafka.topic_prefix
    in_kafka = sum(
        _end_offsets(feed_settings, market_topic("crypto", data_type, "BINANCE", prefix))
        for data_type in (DataType.TRADES, DataType.QUOTES)
    )
    assert in_kafka == report["produced"]
