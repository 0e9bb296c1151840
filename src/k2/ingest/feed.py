"""The live Binance feed: trades and best bid/ask from Binance's WebSocket streams into Kafka.

One asyncio task reads the combined stream of every symbol's ``@trade`` and ``@bookTicker``,
decodes each frame with orjson and normalises it (:mod:`k2.ingest.sources.binance`); a second
task takes the rows from a bounded queue, batches them (``batch_rows`` or ``batch_linger_ms``,
whichever comes first) and hands each batch to a :class:`FeedSink` on a worker thread, so a
blocking Kafka call never stalls the socket.

Robustness, in the order things go wrong:

- **Reconnect forever.** Any end of a connection (closed by the server, refused, a keepalive
  ping without its pong, no market message for ``silence_timeout_s``) leads to a new one after a
  jittered exponential delay, which resets once a connection delivered data. A connection is
  replaced on purpose, at once, after ``max_connection_age_s`` (Binance cuts at 24 h) or on
  Binance's ``serverShutdown`` event. The feed never fails over to another venue.
- **Gaps.** Binance numbers each symbol's trades consecutively. The feed remembers the last
  trade id per symbol across connections; a first id after it that skips ahead is a gap, counted
  and listed, and the missing ids are asked of the REST recent-trades call and produced when
  they are still in its window (``backfill_limit`` trades); what is not recovered is counted lost.
- **Malformed messages** are counted by reason and sent to the venue's dead-letter topic with
  the reason; the feed carries on.
- **Backpressure.** The queue holds at most ``buffer_messages``. When it is full the reader stops
  reading the socket (TCP pushes back to the server), the time spent so is counted and the
  status says so; nothing is dropped and memory stays bounded. A broker slower than Binance for
  longer than the ping timeout ends the connection like any dead one, and the gap is backfilled.
- **Shutdown** (``stop`` set, e.g. by SIGINT/SIGTERM): the socket closes, every received row
  is produced and the producer flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from k2.errors import ConfigurationError, RetryableError
from k2.ingest.feed_sink import FeedSink, KafkaFeedSink
from k2.ingest.sources.base import SourceBatch
from k2.ingest.sources.binance import (
    EXCHANGE,
    ControlMessage,
    MalformedMessageError,
    MarketMessage,
    StreamKind,
    combined_stream_url,
    parse_frame,
    rest_trade_message,
    to_table,
)
from k2.lake.tables import QUOTES, TRADES
from k2.obs.metrics import K2Metrics
from k2.settings import BinanceSettings, K2Settings

log = structlog.get_logger(__name__)

#: Gaps kept for listing; older ones are only counted.
RECENT_GAPS = 100
#: Seconds a REST backfill call may take.
BACKFILL_TIMEOUT_S = 10.0
#: Attempts at producing a batch once stopping, before the feed gives up and says so.
SHUTDOWN_PRODUCE_ATTEMPTS = 3
#: Shortest time between two log lines saying the buffer is full.
BACKPRESSURE_LOG_S = 5.0
#: The reason websockets gives when a keepalive ping went unanswered.
KEEPALIVE_TIMEOUT = "keepalive ping timeout"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Gap:
    """Trade ids of a symbol that never came on the stream, and what backfill recovered.

    ``first_missing``..``last_missing`` are the missing ids; ``status`` is ``pending``,
    ``backfilled`` (all recovered), ``partial`` or ``failed``.
    """

    symbol: str
    first_missing: int
    last_missing: int
    at_reconnect: bool
    detected_at: datetime
    backfilled: int = 0
    status: str = "pending"

    @property
    def missing(self) -> int:
        """How many trades the gap holds."""
        return self.last_missing - self.first_missing + 1

    @property
    def lost(self) -> int:
        """Trades not recovered (so far)."""
        return self.missing - self.backfilled


@dataclass
class FeedStats:
    """What the feed has done so far; the status line and the final report read it."""

    trades: int = 0
    quotes: int = 0
    malformed: int = 0
    connections: int = 0
    reconnects: int = 0
    reconnect_reasons: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    gap_trades: int = 0
    backfilled: int = 0
    lost: int = 0
    produced: int = 0
    buffered: int = 0
    buffer_limit: int = 0
    backpressured: bool = False
    backpressure_s: float = 0.0
    lag_s: float | None = None
    connected: bool = False
    recent_gaps: deque[Gap] = field(default_factory=lambda: deque(maxlen=RECENT_GAPS))

    @property
    def messages(self) -> int:
        """Market messages received (trades and quotes)."""
        return self.trades + self.quotes

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view for the final report."""
        return {
            "trades": self.trades,
            "quotes": self.quotes,
            "produced": self.produced,
            "malformed": self.malformed,
            "connections": self.connections,
            "reconnects": self.reconnects,
            "reconnect_reasons": dict(self.reconnect_reasons),
            "gaps": self.gaps,
            "gap_trades": self.gap_trades,
            "backfilled": self.backfilled,
            "lost": self.lost,
            "backpressure_s": round(self.backpressure_s, 3),
            "gap_list": [
                f"{g.symbol} {g.first_missing}..{g.last_missing} ({g.missing}, {g.status})"
                for g in self.recent_gaps
            ],
        }


class _End:
    """Marks the end of the queue."""


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    frame: bytes
    reason: str
    detail: str


_Item = MarketMessage | _DeadLetter | _End
_END = _End()


class BinanceFeed:
    """Streams ``symbols``' trades and book tickers from Binance into a :class:`FeedSink`."""

    def __init__(
        self,
        settings: BinanceSettings,
        sink: FeedSink,
        metrics: K2Metrics,
        *,
        symbols: list[str] | None = None,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._metrics = metrics
        self.symbols = [s.upper() for s in (symbols or settings.symbols)]
        self.url = combined_stream_url(settings.ws_url, self.symbols)
        self.stats = FeedStats(buffer_limit=settings.buffer_messages)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=settings.buffer_messages)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="k2-feed-produce")
        self._last_trade: dict[str, int] = {}
        self._seen_on_connection: set[str] = set()
        self._backfills: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._rng = random.Random()  # noqa: S311 - reconnect jitter, not a secret
        self._stop = asyncio.Event()
        self._last_frame_at = 0.0
        self._end_reason = "closed"
        self._backpressure_logged_at = -BACKPRESSURE_LOG_S
        self._m_trades = metrics.feed_messages.labels(EXCHANGE, StreamKind.TRADE.value)
        self._m_quotes = metrics.feed_messages.labels(EXCHANGE, StreamKind.QUOTE.value)
        self._m_lag = metrics.feed_lag.labels(EXCHANGE)
        self._m_buffered = metrics.feed_buffered.labels(EXCHANGE)
        self._m_connected = metrics.feed_connected.labels(EXCHANGE)

    @property
    def buffered(self) -> int:
        """Items waiting between the socket and the sink now."""
        return self._queue.qsize()

    async def run(self, stop: asyncio.Event | None = None) -> FeedStats:
        """Stream until ``stop`` is set, then produce what was received and flush the sink.

        Raises:
            ConfigurationError: the endpoint URL is invalid.
            K2Error: the sink failed for good (a non-retryable error), or could not take the last
                rows at shutdown.
        """
        self._stop = stop or asyncio.Event()
        drain = asyncio.create_task(self._drain(), name="k2-feed-drain")
        limits = httpx.Timeout(BACKFILL_TIMEOUT_S)
        try:
            async with httpx.AsyncClient(base_url=self._settings.rest_url, timeout=limits) as http:
                self._http = http
                reader = asyncio.create_task(self._reconnect_forever(), name="k2-feed-reader")
                done, _ = await asyncio.wait({reader, drain}, return_when=asyncio.FIRST_COMPLETED)
                if drain in done:  # the sink failed for good: stop reading and report it
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
                    drain.result()
                reader.result()
                if self._backfills:
                    await asyncio.wait(self._backfills, timeout=BACKFILL_TIMEOUT_S * 2)
            await self._queue.put(_END)
            await drain
            await self._in_worker(self._sink.flush)
        finally:
            if not drain.done():
                drain.cancel()
            self._executor.shutdown(wait=True)
            self._m_connected.set(0)
        log.info("feed_stopped", **{k: v for k, v in self.stats.as_dict().items() if k != "gap_list"})
        return self.stats

    async def _reconnect_forever(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            delivered_before = self.stats.messages
            reason = await self._session()
            if self._stop.is_set():
                return
            if self.stats.messages > delivered_before:
                attempt = 0
            self.stats.reconnects += 1
            self.stats.reconnect_reasons[reason] = self.stats.reconnect_reasons.get(reason, 0) + 1
            self._metrics.feed_reconnects.labels(EXCHANGE, reason).inc()
            delay = 0.0 if reason in ("max_age", "server_shutdown") else self._backoff(attempt)
            if delay:
                attempt += 1
            log.warning("feed_reconnect", reason=reason, delay_s=round(delay, 3), attempt=attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    def _backoff(self, attempt: int) -> float:
        """Equal jitter: half the capped exponential delay, plus up to as much again at random."""
        s = self._settings
        cap = min(s.reconnect_backoff_max_s, s.reconnect_backoff_base_s * 2.0 ** min(attempt, 30))
        return cap / 2 + self._rng.uniform(0, cap / 2)

    async def _session(self) -> str:
        """One connection, from opening to its end; returns why it ended."""
        s = self._settings
        self._end_reason = "closed"
        try:
            async with connect(
                self.url,
                open_timeout=s.ping_timeout_s,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                close_timeout=s.close_timeout_s,
            ) as ws:
                self.stats.connections += 1
                self.stats.connected = True
                self._m_connected.set(1)
                self._seen_on_connection = set()
                self._last_frame_at = time.monotonic()
                log.info("feed_connected", url=self.url, connection=self.stats.connections)
                watchdog = asyncio.create_task(self._watch(ws), name="k2-feed-watchdog")
                try:
                    await self._read(ws)
                except ConnectionClosed as exc:
                    if exc.sent is not None and exc.sent.reason == KEEPALIVE_TIMEOUT:
                        self._end_reason = "ping_timeout"
                finally:
                    watchdog.cancel()
                    self.stats.connected = False
                    self._m_connected.set(0)
        except InvalidURI as exc:
            raise ConfigurationError(f"invalid Binance stream URL {self.url!r}: {exc}") from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.warning("feed_connect_failed", url=self.url, error=str(exc) or type(exc).__name__)
            return "connect_failed"
        return self._end_reason

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            self._last_frame_at = time.monotonic()
            now_ns = time.time_ns()
            received = _EPOCH + timedelta(microseconds=now_ns // 1000)
            try:
                message = parse_frame(frame, received)
            except MalformedMessageError as exc:
                raw = frame.encode() if isinstance(frame, str) else bytes(frame)
                self._count_malformed(exc)
                await self._put(_DeadLetter(raw, exc.reason.value, str(exc)))
                continue
            if isinstance(message, ControlMessage):
                if message.event == "serverShutdown":
                    self._end_reason = "server_shutdown"
                    return
                continue
            if message.kind is StreamKind.TRADE:
                self.stats.trades += 1
                self._m_trades.inc()
                self._check_gap(message, received)
            else:
                self.stats.quotes += 1
                self._m_quotes.inc()
            if message.event_time_ms is not None:
                lag = max(0.0, now_ns / 1e9 - message.event_time_ms / 1000)
                self.stats.lag_s = lag
                self._m_lag.observe(lag)
            await self._put(message)

    async def _watch(self, ws: ClientConnection) -> None:
        """Close the connection when stopping, when it is too old, or when it went silent."""
        s = self._settings
        opened = time.monotonic()
        tick = min(1.0, s.max_connection_age_s / 4, (s.silence_timeout_s or 4.0) / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=tick)
            now = time.monotonic()
            if self._stop.is_set():
                reason = "stop"
            elif now - opened >= s.max_connection_age_s:
                reason = "max_age"
            elif (
                s.silence_timeout_s is not None
                and not self.stats.backpressured
                and now - self._last_frame_at >= s.silence_timeout_s
            ):
                reason = "silence"
            else:
                continue
            self._end_reason = reason
            await ws.close(reason=reason)
            return

    def _count_malformed(self, exc: MalformedMessageError) -> None:
        self.stats.malformed += 1
        self._metrics.feed_malformed.labels(EXCHANGE, exc.reason.value).inc()
        log.warning("feed_malformed_message", reason=exc.reason.value, error=str(exc))

    def _check_gap(self, message: MarketMessage, received: datetime) -> None:
        symbol, trade_id = message.symbol, message.sequence
        first_on_connection = symbol not in self._seen_on_connection
        self._seen_on_connection.add(symbol)
        last = self._last_trade.get(symbol)
        if last is None or trade_id > last:
            self._last_trade[symbol] = trade_id
        if last is None or trade_id <= last + 1:
            return
        gap = Gap(symbol, last + 1, trade_id - 1, at_reconnect=first_on_connection, detected_at=received)
        self.stats.gaps += 1
        self.stats.gap_trades += gap.missing
        self.stats.recent_gaps.append(gap)
        self._metrics.feed_gaps.labels(EXCHANGE).inc()
        log.warning(
            "feed_gap",
            symbol=symbol,
            first_missing=gap.first_missing,
            last_missing=gap.last_missing,
            missing=gap.missing,
            at_reconnect=gap.at_reconnect,
        )
        task = asyncio.create_task(self._backfill(gap), name=f"k2-feed-backfill-{symbol}")
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)

    async def _backfill(self, gap: Gap) -> None:
        """Ask the REST recent-trades call for the gap's trades and produce those it still has."""
        if self._http is None:
            raise RuntimeError("backfill outside run()")
        try:
            response = await self._http.get(
                "/api/v3/trades", params={"symbol": gap.symbol, "limit": self._settings.backfill_limit}
            )
            response.raise_for_status()
            items = orjson.loads(response.content)
            if not isinstance(items, list):
                raise TypeError(f"expected a JSON list, got {type(items).__name__}")
        except (httpx.HTTPError, orjson.JSONDecodeError, TypeError) as exc:
            gap.status = "failed"
            self.stats.lost += gap.missing
            self._metrics.feed_gap_trades.labels(EXCHANGE, "lost").inc(gap.missing)
            log.error("feed_backfill_failed", symbol=gap.symbol, missing=gap.missing, error=str(exc))
            return
        received = datetime.now(UTC)
        recovered = 0
        for item in items:
            try:
                message = rest_trade_message(gap.symbol, item, received)
            except MalformedMessageError as exc:
                self._count_malformed(exc)
                await self._put(_DeadLetter(orjson.dumps(item), exc.reason.value, str(exc)))
                continue
            if gap.first_missing <= message.sequence <= gap.last_missing:
                await self._put(message)
                recovered += 1
        gap.backfilled = recovered
        gap.status = "backfilled" if recovered == gap.missing else "partial"
        self.stats.backfilled += recovered
        self._metrics.feed_gap_trades.labels(EXCHANGE, "backfilled").inc(recovered)
        if gap.lost:
            self.stats.lost += gap.lost
            self._metrics.feed_gap_trades.labels(EXCHANGE, "lost").inc(gap.lost)
        log.info("feed_backfill", symbol=gap.symbol, missing=gap.missing, backfilled=recovered, lost=gap.lost)

    async def _put(self, item: _Item) -> None:
        """Queue an item; when the queue is full, wait (the socket is not read meanwhile)."""
        try:
            self._queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        self.stats.backpressured = True
        started = time.monotonic()
        if started - self._backpressure_logged_at >= BACKPRESSURE_LOG_S:
            self._backpressure_logged_at = started
            log.warning("feed_backpressure", buffered=self._queue.qsize(), waited_s=self.stats.backpressure_s)
        try:
            await self._queue.put(item)
        finally:
            waited = time.monotonic() - started
            self.stats.backpressured = False
            self.stats.backpressure_s += waited
            self._metrics.feed_backpressure.labels(EXCHANGE).inc(waited)

    async def _drain(self) -> None:
        """Take queued items in batches and deliver them until the end marker."""
        linger = self._settings.batch_linger_ms / 1000
        limit = self._settings.batch_rows
        ended = False
        while not ended:
            item = await self._queue.get()
            if isinstance(item, _End):
                break
            items: list[MarketMessage | _DeadLetter] = [item]
            deadline = time.monotonic() + linger
            while len(items) < limit:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout=remaining)
                    except TimeoutError:
                        break
                if isinstance(item, _End):
                    ended = True
                    break
                items.append(item)
            self.stats.buffered = self._queue.qsize()
            self._m_buffered.set(self.stats.buffered)
            await self._deliver(items)

    async def _deliver(self, items: list[MarketMessage | _DeadLetter]) -> None:
        """Hand a batch to the sink on the worker thread, retrying while the failure may pass."""
        attempt = 0
        while True:
            try:
                await self._in_worker(self._deliver_now, items)
            except RetryableError as exc:
                attempt += 1
                if self._stop.is_set() and attempt >= SHUTDOWN_PRODUCE_ATTEMPTS:
                    raise
                delay = self._backoff(attempt)
                log.warning("feed_produce_retry", error=str(exc), attempt=attempt, delay_s=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            self.stats.produced += sum(1 for i in items if isinstance(i, MarketMessage))
            return

    def _deliver_now(self, items: list[MarketMessage | _DeadLetter]) -> None:
        trades: list[dict[str, Any]] = []
        quotes: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, _DeadLetter):
                self._sink.dead_letter(item.frame, item.reason, item.detail)
            elif item.kind is StreamKind.TRADE:
                trades.append(item.row)
            else:
                quotes.append(item.row)
        if trades:
            self._sink.produce(SourceBatch(TRADES, to_table(StreamKind.TRADE, trades), len(trades), 0))
        if quotes:
            self._sink.produce(SourceBatch(QUOTES, to_table(StreamKind.QUOTE, quotes), len(quotes), 0))

    async def _in_worker(self, func: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)


StatusCallback = Callable[[FeedStats], None]


async def run_until_signalled(
    feed: BinanceFeed,
    *,
    stop: asyncio.Event | None = None,
    on_tick: StatusCallback | None = None,
    tick_s: float = 0.5,
) -> FeedStats:
    """Run ``feed`` until SIGINT, SIGTERM or ``stop``, calling ``on_tick`` every ``tick_s`` seconds.

    Raises:
        K2Error: as :meth:`BinanceFeed.run` does.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker: asyncio.Task[None] | None = None
    if on_tick is not None:
        ticker = asyncio.create_task(_tick(feed.stats, on_tick, stop, tick_s))
    try:
        return await feed.run(stop)
    finally:
        stop.set()
        if ticker is not None:
            await ticker
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _tick(stats: FeedStats, on_tick: StatusCallback, stop: asyncio.Event, tick_s: float) -> None:
    while not stop.is_set():
        on_tick(stats)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick_s)
    on_tick(stats)


def stream_binance(
    settings: K2Settings,
    metrics: K2Metrics,
    *,
    symbols: list[str] | None = None,
    on_tick: StatusCallback | None = None,
    tick_s: float = 0.5,
) -> FeedStats:
    """Stream Binance into Kafka until SIGINT or SIGTERM, then flush; the ``k2 stream binance`` service.

    Args:
        settings: K2's settings; ``binance`` names the endpoints, ``kafka`` the cluster.
        metrics: where the feed and producer count.
        symbols: pairs to stream instead of ``settings.binance.symbols``.
        on_tick: called with the live statistics every ``tick_s`` seconds and once at the end.
        tick_s: seconds between status calls.

    Returns:
        What the feed did.

    Raises:
        ConfigurationError: the endpoint URL is invalid, or Kafka refused a topic or the schema.
        DeliveryFailedError: rows could not be delivered at shutdown.
    """
    with KafkaFeedSink(settings.kafka, metrics) as sink:
        feed = BinanceFeed(settings.binance, sink, metrics, symbols=symbols)
        return asyncio.run(run_until_signalled(feed, on_tick=on_tick, tick_s=tick_s))
