"""The live Binance feed against a local server speaking Binance's protocol: normal flow,
server disconnects, a silent server, malformed frames, gaps with REST backfill, a slow broker,
replays, and end to end through real Kafka into Iceberg and out through the query engine and API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from k2.cli.main import app as cli_app
from k2.ingest.live.binance.feed import BinanceFeed
from k2.ingest.live.binance.protocol import parse_frame
from k2.ingest.live.binance.server import Behaviour, BinanceServer
from k2.ingest.live.binance.tapes import ReplayTape, SyntheticTape, Tape, write_sample
from k2.ingest.live.status import FeedStats
from k2.obs.metrics import K2Metrics
from tests.fixtures.feed import MALFORMED, SYMBOLS, RecordingSink, feed_settings_for, run_until

pytestmark = pytest.mark.integration


def _metric(metrics: K2Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


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
            feed = BinanceFeed(feed_settings_for(server, **settings), sink, metrics)
            stats = await run_until(feed, lambda: until(server, feed))
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


def test_a_restarted_feed_finds_the_gap_left_while_it_was_down() -> None:
    """A feed started again asks its sink for each symbol's last trade id, so the trades sent
    while no feed ran are a gap like one across a reconnect, and are backfilled."""
    sink = RecordingSink()

    async def main() -> tuple[FeedStats, FeedStats]:
        tape = SyntheticTape(SYMBOLS, rate=2000)
        async with BinanceServer(tape, Behaviour(skip_on_reconnect=5)) as server:
            first = BinanceFeed(feed_settings_for(server), sink, K2Metrics(CollectorRegistry()))
            before = await run_until(first, lambda: first.stats.produced >= 150)
            second = BinanceFeed(feed_settings_for(server), sink, K2Metrics(CollectorRegistry()))
            after = await run_until(second, lambda: second.stats.backfilled >= 5 * len(SYMBOLS))
            return before, after

    before, after = asyncio.run(main())
    assert before.gaps == 0
    assert after.gaps == len(SYMBOLS)
    # At least the skipped trades; also any the server had sent as the first feed closed.
    assert all(g.missing >= 5 and g.status == "backfilled" for g in after.recent_gaps)
    assert after.backfilled == after.gap_trades
    assert all(_contiguous(ids) for ids in _trade_ids(sink).values())


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
                feed_settings_for(server, buffer_messages=100, batch_rows=20, ping_timeout_s=30),
                sink,
                metrics,
            )

            async def watch() -> None:
                while True:
                    peak["buffered"] = max(peak["buffered"], feed.buffered)
                    peak["backpressured"] += feed.stats.backpressured
                    await asyncio.sleep(0.005)

            stats = await run_until(
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


@pytest.mark.parametrize("command", ["playback", "replay"])
def test_playback_command_runs_offline(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`k2 stream playback FILE --speed 50x --no-kafka` streams the recording through the real
    client and reports what it read; its old name, `replay`, still does for one release."""
    monkeypatch.setenv("K2_DATA_DIR", str(tmp_path / "lake"))
    sample = write_sample(tmp_path / "sample.jsonl", messages=120)
    result = CliRunner().invoke(
        cli_app, ["stream", command, str(sample), "--speed", "50x", "--no-kafka", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["counted_rows"] == {"trades": 60, "quotes": 60}
    assert report["reconnects"] == 0
