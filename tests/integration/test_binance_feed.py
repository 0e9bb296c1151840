"""The live Binance feed against a local server speaking Binance's protocol: normal flow,
server disconnects, a silent server, malformed frames, gaps with REST backfill, a slow broker,
replays, and end to end through real Kafka into Iceberg and out through the query engine and API."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from k2.api import create_app
from k2.cli.main import app as cli_app
from k2.ingest.feed import BinanceFeed
from k2.ingest.feed_sink import REASON_HEADER, KafkaFeedSink
from k2.ingest.feed_status import FeedStats
from k2.ingest.sources.base import SourceBatch
from k2.ingest.sources.binance import parse_frame
from k2.lake.tables import QUOTES, TRADES
from k2.obs.metrics import K2Metrics
from k2.query.ticks import TickQuery, trades
from k2.schemas.topics import DataType, dlq_topic, market_topic
from k2.settings import ApiSettings, BinanceSettings, K2Settings
from k2.stream.sink import Sink
from k2.testing import EmbeddedLake
from k2.testing.binance_server import (
    Behaviour,
    BinanceServer,
    ReplayTape,
    SyntheticTape,
    Tape,
    write_sample,
)
from tests.fixtures.platform import isolated

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
DEADLINE_S = 30.0
MALFORMED = (
    b"{not json",
    orjson.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline"}}),
    orjson.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 5}}),
    orjson.dumps(
        {
            "stream": "ethusdt@trade",
            "data": {
                "e": "trade",
                "E": 1,
                "s": "ETHUSDT",
                "t": 5,
                "p": "1.000000001",
                "q": "1",
                "T": 1,
                "m": True,
            },
        }
    ),
)


class RecordingSink:
    """A feed sink that keeps what it is given; ``delay_s`` makes it a slow broker."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[SourceBatch] = []
        self.dead: list[tuple[bytes, str, str]] = []
        self.flushes = 0
        self._lock = threading.Lock()

    def produce(self, batch: SourceBatch) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.batches.append(batch)

    def dead_letter(self, frame: bytes, reason: str, detail: str) -> None:
        with self._lock:
            self.dead.append((frame, reason, detail))

    def flush(self) -> None:
        self.flushes += 1

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            tables = [b.rows for b in self.batches if b.table.name == table]
        return pa.concat_tables(tables).to_pylist() if tables else []

    def count(self, table: str) -> int:
        with self._lock:
            return sum(b.rows.num_rows for b in self.batches if b.table.name == table)


def _settings(server: BinanceServer, **overrides: Any) -> BinanceSettings:
    values: dict[str, Any] = {
        "ws_url": server.ws_url,
        "rest_url": server.rest_url,
        "symbols": SYMBOLS,
        "reconnect_backoff_base_s": 0.02,
        "reconnect_backoff_max_s": 0.2,
        "ping_interval_s": 1.0,
        "ping_timeout_s": 2.0,
        "close_timeout_s": 0.5,
        "silence_timeout_s": None,
    }
    values.update(overrides)
    return BinanceSettings(**values)


def _metric(metrics: K2Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def _run(
    feed: BinanceFeed,
    until: Callable[[], bool],
    *,
    during: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> FeedStats:
    """Run ``feed`` until ``until()`` holds (or the deadline), then stop it and return its stats."""
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    watcher = asyncio.create_task(during()) if during is not None else None
    deadline = time.monotonic() + DEADLINE_S
    while not until() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.02)
    stop.set()
    stats = await asyncio.wait_for(task, DEADLINE_S)
    if watcher is not None:
        watcher.cancel()
    return stats


def _feed_against(
    tape: Tape,
    behaviour: Behaviour,
    sink: RecordingSink,
    until: Callable[[BinanceServer, BinanceFeed], bool],
    **settings: Any,
) -> tuple[FeedStats, BinanceServer, K2Metrics]:
    metrics = K2Metrics(CollectorRegistry())

    async def main() -> tuple[FeedStats, BinanceServer]:
        async with BinanceServer(tape, behaviour) as server:
            feed = BinanceFeed(_settings(server, **settings), sink, metrics)
            stats = await _run(feed, lambda: until(server, feed))
            return stats, server

    stats, server = asyncio.run(main())
    return stats, server, metrics


def _all_received(total: int) -> Callable[[BinanceServer, BinanceFeed], bool]:
    return lambda server, feed: server.finished.is_set() and feed.stats.produced >= total


def _trade_ids(sink: RecordingSink) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for row in sink.rows("trades"):
        ids.setdefault(row["symbol"], []).append(row["source_sequence"])
    return ids


def _contiguous(ids: list[int]) -> bool:
    return sorted(set(ids)) == list(range(min(ids), max(ids) + 1))


def test_normal_flow_normalises_every_trade_and_quote() -> None:
    """One combined-stream connection delivers every trade and quote as v2 rows, in order, with
    lag measured and the sink flushed at shutdown."""
    sink = RecordingSink()
    stats, server, metrics = _feed_against(
        SyntheticTape(SYMBOLS, total=600), Behaviour(), sink, _all_received(600)
    )
    assert (stats.trades, stats.quotes, stats.produced) == (300, 300, 600)
    assert (stats.connections, stats.reconnects, stats.gaps, stats.malformed) == (1, 0, 0, 0)
    assert server.stats.paths == [
        "/stream?streams=btcusdt@trade/btcusdt@bookTicker/ethusdt@trade/ethusdt@bookTicker"
        "/bnbusdt@trade/bnbusdt@bookTicker"
    ]
    assert sink.flushes == 1
    trades_rows = sink.rows("trades")
    assert {r["symbol"] for r in trades_rows} == set(SYMBOLS)
    for symbol, ids in _trade_ids(sink).items():
        assert ids == list(range(1_000_000, 1_000_100)), symbol  # in order, none missing
    first = trades_rows[0]
    assert (first["exchange"], first["asset_class"], first["currency"]) == ("BINANCE", "crypto", "USDT")
    assert first["side"] in {"BUY", "SELL"}
    assert first["ingestion_timestamp"] >= first["timestamp"]
    assert stats.lag_s is not None
    assert stats.lag_s < 5
    assert len(sink.rows("quotes")) == 300
    assert _metric(metrics, "k2_feed_messages_total", exchange="BINANCE", kind="trade") == 300
    assert _metric(metrics, "k2_feed_messages_total", exchange="BINANCE", kind="quote") == 300
    assert 1 <= _metric(metrics, "k2_feed_lag_seconds_count", exchange="BINANCE") <= 300  # one a batch


def test_server_disconnect_reconnects_and_resubscribes() -> None:
    """A server that closes every connection after 100 messages is reconnected to and
    resubscribed each time; nothing is lost and no gap is reported."""
    sink = RecordingSink()
    stats, server, metrics = _feed_against(
        SyntheticTape(SYMBOLS, total=450), Behaviour(disconnect_after=100), sink, _all_received(450)
    )
    assert stats.produced == 450
    assert server.stats.connections == 5
    assert stats.reconnect_reasons == {"closed": 4}
    assert len(set(server.stats.paths)) == 1  # every connection subscribed the same streams
    assert stats.gaps == 0
    assert all(_contiguous(ids) for ids in _trade_ids(sink).values())
    assert _metric(metrics, "k2_feed_reconnects_total", exchange="BINANCE", reason="closed") == 4


def test_silent_server_is_detected_by_ping_timeout() -> None:
    """A connection that stops sending and stops answering pings is declared dead by the
    keepalive and replaced; the feed then receives the rest."""
    sink = RecordingSink()
    started = time.monotonic()
    stats, server, _ = _feed_against(
        SyntheticTape(SYMBOLS, total=300),
        Behaviour(silent_after=60),
        sink,
        _all_received(300),
        ping_interval_s=0.3,
        ping_timeout_s=0.5,
        close_timeout_s=0.2,
    )
    assert stats.reconnect_reasons == {"ping_timeout": 1}
    assert server.stats.connections == 2
    assert stats.produced == 300
    assert time.monotonic() - started < 10


def test_a_connection_without_market_data_is_replaced() -> None:
    """A connection that answers pings but carries no market data for ``silence_timeout_s`` is
    replaced."""
    sink = RecordingSink()
    stats, _, _ = _feed_against(
        SyntheticTape(SYMBOLS, total=30),
        Behaviour(),
        sink,
        lambda _server, feed: feed.stats.reconnect_reasons.get("silence", 0) >= 1,
        silence_timeout_s=0.4,
    )
    assert stats.reconnect_reasons.get("silence", 0) >= 1
    assert stats.produced == 30


def test_connections_are_replaced_before_their_maximum_age() -> None:
    """An old connection is replaced at once, without backoff; trades in flight at the switch are
    recovered through the REST call, so every trade id arrives."""
    sink = RecordingSink()
    wanted = set(range(1_000_000, 1_000_100))

    def first_hundred_trades(_server: BinanceServer, _feed: BinanceFeed) -> bool:
        ids = _trade_ids(sink)
        return len(ids) == len(SYMBOLS) and all(wanted <= set(v) for v in ids.values())

    stats, server, _ = _feed_against(
        SyntheticTape(SYMBOLS, rate=400),
        Behaviour(),
        sink,
        first_hundred_trades,
        max_connection_age_s=0.4,
    )
    assert stats.reconnect_reasons.get("max_age", 0) >= 2
    assert set(stats.reconnect_reasons) == {"max_age"}
    assert server.stats.connections >= 3
    ids = _trade_ids(sink)
    assert all(wanted <= set(v) and _contiguous(v) for v in ids.values())


def test_malformed_frames_are_counted_dead_lettered_and_passed() -> None:
    """Invalid JSON, an unknown stream, a trade without a price and one with nine decimals are
    each counted by reason and dead-lettered; every good message around them still arrives."""
    sink = RecordingSink()
    stats, server, metrics = _feed_against(
        SyntheticTape(SYMBOLS, total=200),
        Behaviour(malformed=MALFORMED, malformed_every=25),
        sink,
        _all_received(200),
    )
    assert server.stats.malformed_sent == 4
    assert stats.malformed == 4
    assert stats.produced == 200
    assert [frame for frame, _, _ in sink.dead] == list(MALFORMED)
    assert [reason for _, reason, _ in sink.dead] == [
        "invalid_json",
        "unknown_stream",
        "missing_field",
        "invalid_field",
    ]
    assert all(detail.startswith(reason) for _, reason, detail in sink.dead)
    assert _metric(metrics, "k2_feed_malformed_total", exchange="BINANCE", reason="invalid_field") == 1
    assert stats.connections == 1


def test_gaps_across_reconnects_are_detected_and_backfilled() -> None:
    """Trade ids skipped while the feed reconnects are detected per symbol, listed, and filled
    from the REST recent-trades call, so the produced trades have no hole."""
    sink = RecordingSink()
    stats, server, metrics = _feed_against(
        SyntheticTape(SYMBOLS, total=400),
        Behaviour(disconnect_after=120, skip_on_reconnect=7),
        sink,
        lambda server, feed: (
            server.finished.is_set() and feed.stats.produced >= 400 + server.stats.skipped_trades
        ),
    )
    reconnects = server.stats.connections - 1
    assert reconnects == 3
    assert stats.gaps == 3 * reconnects
    assert stats.gap_trades == stats.backfilled == 7 * 3 * reconnects
    assert server.stats.rest_calls == stats.gaps
    assert all(g.at_reconnect and g.status == "backfilled" and g.missing == 7 for g in stats.recent_gaps)
    ids = _trade_ids(sink)
    assert all(_contiguous(v) for v in ids.values())
    backfilled = [r for r in sink.rows("trades") if r["vendor_data"] == [("source", "rest_backfill")]]
    assert len(backfilled) == stats.backfilled
    assert _metric(metrics, "k2_feed_gaps_total", exchange="BINANCE") == stats.gaps
    assert (
        _metric(metrics, "k2_feed_gap_trades_total", exchange="BINANCE", outcome="backfilled")
        == stats.backfilled
    )
    assert stats.as_dict()["gap_list"][0].endswith("(7, backfilled)")


def test_a_gap_beyond_the_rest_window_is_counted_lost() -> None:
    """When more trades are missing than the REST call returns, what it has is produced and the
    rest is counted lost, never hidden."""
    sink = RecordingSink()
    stats, _, metrics = _feed_against(
        SyntheticTape(["BTCUSDT"], total=200, rate=300),
        Behaviour(disconnect_after=60, skip_on_reconnect=40),
        sink,
        lambda server, feed: server.finished.is_set() and feed.stats.gaps >= 3 and not feed.buffered,
        symbols=["BTCUSDT"],
        backfill_limit=10,
    )
    assert stats.gaps >= 3
    for gap in stats.recent_gaps:
        assert gap.status == "partial"
        assert 0 < gap.backfilled < gap.missing == 40
    lost = sum(g.lost for g in stats.recent_gaps)
    assert stats.lost == lost
    assert _metric(metrics, "k2_feed_gap_trades_total", exchange="BINANCE", outcome="lost") == lost


def test_a_failed_backfill_is_reported() -> None:
    """A REST error leaves the gap listed as failed and its trades counted lost; the feed goes on."""
    sink = RecordingSink()
    stats, _, metrics = _feed_against(
        SyntheticTape(SYMBOLS, total=200),
        Behaviour(disconnect_after=100, skip_on_reconnect=3, rest_status=503),
        sink,
        lambda server, feed: server.finished.is_set() and feed.stats.produced >= 200,
    )
    assert stats.gaps == 3
    assert all(g.status == "failed" for g in stats.recent_gaps)
    assert _metric(metrics, "k2_feed_gap_trades_total", exchange="BINANCE", outcome="lost") == 9
    assert stats.lost == 9
    assert stats.produced == 200


def test_a_slow_broker_fills_a_bounded_buffer_then_pauses_reading() -> None:
    """With a sink slower than the socket, the buffer never holds more than its bound, the feed
    reports backpressure, and still delivers every message: nothing is dropped."""
    sink = RecordingSink(delay_s=0.01)
    metrics = K2Metrics(CollectorRegistry())
    peak = {"buffered": 0, "backpressured": 0}

    async def main() -> tuple[FeedStats, BinanceServer]:
        async with BinanceServer(SyntheticTape(SYMBOLS, total=2000), Behaviour()) as server:
            feed = BinanceFeed(
                _settings(server, buffer_messages=100, batch_rows=20, ping_timeout_s=30), sink, metrics
            )

            async def watch() -> None:
                while True:
                    peak["buffered"] = max(peak["buffered"], feed.buffered)
                    peak["backpressured"] += feed.stats.backpressured
                    await asyncio.sleep(0.005)

            stats = await _run(
                feed, lambda: server.finished.is_set() and feed.stats.produced >= 2000, during=watch
            )
            return stats, server

    stats, server = asyncio.run(main())
    assert 0 < peak["buffered"] <= 100
    assert peak["backpressured"] > 0
    assert stats.backpressure_s > 0
    assert _metric(metrics, "k2_feed_backpressure_seconds_total", exchange="BINANCE") > 0
    assert stats.produced == server.stats.sent == 2000
    assert sink.count("trades") == sink.count("quotes") == 1000


def test_raw_streams_deliver_unwrapped_payloads() -> None:
    """``/ws/<stream>`` serves the bare payloads the normaliser reads as raw messages."""

    async def main() -> list[str]:
        tape = SyntheticTape(["BTCUSDT"], total=4)
        async with BinanceServer(tape) as server, connect(f"{server.ws_url}/ws/btcusdt@trade") as ws:
            frames = [await ws.recv() for _ in range(2)]
        return [str(f) for f in frames]

    frames = asyncio.run(main())
    for frame in frames:
        assert "stream" not in orjson.loads(frame)
        message = parse_frame(frame, time.time_ns() // 1000)
        assert getattr(message, "symbol", None) == "BTCUSDT"


def test_replay_sends_a_recording_at_the_chosen_speed(tmp_path: Path) -> None:
    """A recorded sample replays through the server at ten times its pace, message for message."""
    sample = write_sample(tmp_path / "sample.jsonl", messages=300, interval_ms=10)
    assert len(sample.read_bytes().splitlines()) == 300
    sink = RecordingSink()
    started = time.monotonic()
    stats, _, _ = _feed_against(ReplayTape.from_file(sample, speed=10), Behaviour(), sink, _all_received(300))
    elapsed = time.monotonic() - started
    assert stats.produced == 300
    recorded_span_s = (150 - 1) * 10 / 1000  # 150 trades 10 ms apart
    assert elapsed >= recorded_span_s / 10
    first = sink.rows("trades")[0]
    assert first["timestamp"] == datetime(2024, 6, 1, tzinfo=UTC)
    assert first["price"] == Decimal("60000.00000000")


def test_replay_command_runs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`k2 stream replay FILE --speed 50x --no-kafka` streams the recording through the real
    client and reports what it read."""
    monkeypatch.setenv("K2_DATA_DIR", str(tmp_path / "lake"))
    sample = write_sample(tmp_path / "sample.jsonl", messages=120)
    result = CliRunner().invoke(
        cli_app, ["stream", "replay", str(sample), "--speed", "50x", "--no-kafka", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["counted_rows"] == {"trades": 60, "quotes": 60}
    assert report["reconnects"] == 0


# --- end to end through the platform -------------------------------------------------------------


@pytest.fixture
def feed_settings(platform: K2Settings, tmp_path: Path) -> K2Settings:
    """The platform with a catalog, topic prefix and consumer group of this test's own."""
    return isolated(platform, tmp_path)


def _header(message: Message, name: str) -> str:
    value = dict(message.headers() or [])[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def _dead_letters(settings: K2Settings, expected: int) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([dlq_topic("BINANCE", settings.kafka.topic_prefix)])
    letters: list[Message] = []
    deadline = time.monotonic() + 30
    while len(letters) < expected and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            letters.append(message)
    consumer.close()
    return letters


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
    with KafkaFeedSink(
        feed_settings.kafka, metrics, linger_ms=feed_settings.binance.producer_linger_ms
    ) as kafka_sink:

        async def main() -> FeedStats:
            async with BinanceServer(SyntheticTape(SYMBOLS, total=300), behaviour) as server:
                feed = BinanceFeed(_settings(server), kafka_sink, metrics)
                expected = 300 + 4 * len(SYMBOLS)
                return await _run(feed, lambda: server.finished.is_set() and feed.stats.produced >= expected)

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

    letters = _dead_letters(feed_settings, 2)
    assert sorted(m.value() or b"" for m in letters) == sorted(MALFORMED[:2])
    reasons = sorted(_header(m, REASON_HEADER) for m in letters)
    assert reasons == ["invalid_json", "unknown_stream"]


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
