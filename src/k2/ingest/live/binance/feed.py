"""The live Binance feed: trades and best bid/ask from Binance's WebSocket streams into Kafka.

One asyncio task reads the combined stream of every symbol's ``@trade`` and ``@bookTicker``,
decodes each frame with orjson and normalises it (:mod:`k2.ingest.live.binance.protocol`); a second
task takes the rows from a bounded queue, batches them (``batch_rows`` or ``batch_linger_ms``,
whichever comes first) and hands each batch to a :class:`FeedOutput` on a worker thread, so a
blocking Kafka call never stalls the socket.

Robustness, in the order things go wrong:

- **Reconnect forever.** Any end of a connection (closed by the server, refused, a keepalive
  ping without its pong, no market message for ``silence_timeout_s``) leads to a new one after a
  jittered exponential delay, which resets once a connection delivered data. A connection is
  replaced on purpose, at once, after ``max_connection_age_s`` (Binance cuts at 24 h) or on
  Binance's ``serverShutdown`` event. The feed never fails over to another venue.
- **Gaps.** A trade id that skips ahead of the symbol's last one, across connections and across
  runs (a starting feed asks its output for each symbol's last trade id), is a gap, counted, listed
  and backfilled from the REST recent-trades call (:class:`~k2.ingest.live.binance.gaps.GapTracker`);
  what is not recovered is counted lost.
- **Malformed messages** are counted by reason and sent to the venue's dead-letter topic with
  the reason; the feed carries on.
- **Backpressure.** The queue holds at most ``buffer_messages``. When it is full the reader stops
  reading the socket (TCP pushes back to the server), the time spent so is counted and the
  status says so; nothing is dropped and memory stays bounded. A broker slower than Binance for
  longer than the ping timeout ends the connection like any dead one, and the gap is backfilled.
- **Shutdown** (``stop`` set, e.g. by SIGINT/SIGTERM): the socket closes, every received row
  is produced and the producer flushed.

What the feed has done is in :class:`~k2.ingest.live.status.FeedStats`; a run with signal
handling and a status callback is :func:`~k2.ingest.live.status.run_until_signalled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from k2.errors import ConfigurationError, RetryableError
from k2.ingest.live.binance.gaps import GapTracker
from k2.ingest.live.binance.protocol import (
    EXCHANGE,
    ControlMessage,
    MalformedMessageError,
    MarketMessage,
    Reason,
    StreamKind,
    combined_stream_url,
    parse_frame,
    to_table,
)
from k2.ingest.live.output import FeedOutput, KafkaFeedOutput
from k2.ingest.live.status import FeedStats, StatusCallback, run_until_signalled
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import QUOTES, TRADES
from k2.obs.metrics import K2Metrics
from k2.settings import BinanceSettings, K2Settings

log = structlog.get_logger(__name__)

#: Attempts at producing a batch once stopping, before the feed gives up and says so.
SHUTDOWN_PRODUCE_ATTEMPTS = 3
#: Why a feed's connection ended: its reconnects' reasons.
RECONNECT_REASONS = ("closed", "ping_timeout", "silence", "max_age", "server_shutdown", "connect_failed")
#: Shortest time between two log lines saying the buffer is full.
BACKPRESSURE_LOG_S = 5.0
#: The reason websockets gives when a keepalive ping went unanswered.
KEEPALIVE_TIMEOUT = "keepalive ping timeout"


class _End:
    """Marks the end of the queue."""


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    frame: bytes
    reason: str
    detail: str


_Item = MarketMessage | _DeadLetter | _End
_END = _End()


def _show_zero_counts(metrics: K2Metrics) -> None:
    """Create the feed's counters at zero for every value their labels can take, so that a rate
    over them reads 0 (not "no data") until the first event.
    """
    for reason in RECONNECT_REASONS:
        metrics.feed_reconnects.labels(EXCHANGE, reason)
    for malformed in Reason:
        metrics.feed_malformed.labels(EXCHANGE, malformed.value)
    for outcome in ("backfilled", "lost"):
        metrics.feed_gap_trades.labels(EXCHANGE, outcome)
    metrics.feed_gaps.labels(EXCHANGE)
    metrics.feed_backpressure.labels(EXCHANGE)


class BinanceFeed:
    """Streams ``symbols``' trades and book tickers from Binance into a :class:`FeedOutput`."""

    def __init__(
        self,
        settings: BinanceSettings,
        output: FeedOutput,
        metrics: K2Metrics,
        *,
        symbols: list[str] | None = None,
    ) -> None:
        self._settings = settings
        self._output = output
        self._metrics = metrics
        self.symbols = [s.upper() for s in (symbols or settings.symbols)]
        self.url = combined_stream_url(settings.ws_url, self.symbols)
        self.stats = FeedStats(buffer_limit=settings.buffer_messages)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=settings.buffer_messages)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="k2-feed-produce")
        self._gaps = GapTracker(
            self.stats,
            metrics,
            rest_url=settings.rest_url,
            backfill_limit=settings.backfill_limit,
            on_trade=self._put,
            on_malformed=self._dead_letter,
        )
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
        self._m_last_message = metrics.feed_last_message.labels(EXCHANGE)
        metrics.feed_buffer_capacity.labels(EXCHANGE).set(settings.buffer_messages)
        _show_zero_counts(metrics)

    @property
    def buffered(self) -> int:
        """Items waiting between the socket and the output now."""
        return self._queue.qsize()

    async def run(self, stop: asyncio.Event | None = None) -> FeedStats:
        """Stream until ``stop`` is set, then produce what was received and flush the output.

        Raises:
            ConfigurationError: the endpoint URL is invalid.
            K2Error: the output failed for good (a non-retryable error), or could not take the last
                rows at shutdown.
        """
        self._stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        self._gaps.resume(
            await loop.run_in_executor(self._executor, self._output.last_trade_ids, self.symbols)
        )
        drain = asyncio.create_task(self._drain(), name="k2-feed-drain")
        try:
            async with self._gaps.rest_client():
                reader = asyncio.create_task(self._reconnect_forever(), name="k2-feed-reader")
                done, _ = await asyncio.wait({reader, drain}, return_when=asyncio.FIRST_COMPLETED)
                if drain in done:  # the output failed for good: stop reading and report it
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
                    drain.result()
                reader.result()
                await self._gaps.wait()
            await self._queue.put(_END)
            await drain
            await self._in_worker(self._output.flush)
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
                self._gaps.new_connection()
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
            try:
                message = parse_frame(frame, now_ns // 1000)
            except MalformedMessageError as exc:
                await self._dead_letter(frame.encode() if isinstance(frame, str) else bytes(frame), exc)
                continue
            if isinstance(message, ControlMessage):
                if message.event == "serverShutdown":
                    self._end_reason = "server_shutdown"
                    return
                continue
            if message.kind is StreamKind.TRADE:
                self.stats.trades += 1
                self._gaps.check(message)
            else:
                self.stats.quotes += 1
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

    async def _dead_letter(self, frame: bytes, exc: MalformedMessageError) -> None:
        """Count an unreadable frame and queue it for the dead-letter topic."""
        self.stats.malformed += 1
        self._metrics.feed_malformed.labels(EXCHANGE, exc.reason.value).inc()
        log.warning("feed_malformed_message", reason=exc.reason.value, error=str(exc))
        await self._put(_DeadLetter(frame, exc.reason.value, str(exc)))

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
            self._count(items)
            await self._deliver(items)

    def _count(self, items: list[MarketMessage | _DeadLetter]) -> None:
        """Count a batch's messages in the metrics, and its newest event's lag (a metric per
        message would cost a good part of what handling the message does).
        """
        trades = quotes = 0
        newest: MarketMessage | None = None
        for item in items:
            if isinstance(item, MarketMessage):
                if item.kind is StreamKind.TRADE:
                    trades += 1
                else:
                    quotes += 1
                if item.event_time_ms is not None:
                    newest = item
        self._m_trades.inc(trades)
        self._m_quotes.inc(quotes)
        if trades or quotes:
            self._m_last_message.set_to_current_time()
        if newest is not None and newest.event_time_ms is not None:
            lag = max(0.0, newest.received_us / 1e6 - newest.event_time_ms / 1000)
            self.stats.lag_s = lag
            self._m_lag.observe(lag)

    async def _deliver(self, items: list[MarketMessage | _DeadLetter]) -> None:
        """Hand a batch to the output on the worker thread, retrying while the failure may pass."""
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
        """Hand a batch to the output: trades and quotes first, so a batch offered again after the
        output refused it repeats only them (the lake skips a repeat by ``message_id``), then the
        dead letters, which nothing would de-duplicate.
        """
        trades: list[MarketMessage] = []
        quotes: list[MarketMessage] = []
        dead: list[_DeadLetter] = []
        for item in items:
            if isinstance(item, _DeadLetter):
                dead.append(item)
            elif item.kind is StreamKind.TRADE:
                trades.append(item)
            else:
                quotes.append(item)
        if trades:
            self._output.produce(SourceBatch(TRADES, to_table(StreamKind.TRADE, trades), len(trades), 0))
        if quotes:
            self._output.produce(SourceBatch(QUOTES, to_table(StreamKind.QUOTE, quotes), len(quotes), 0))
        for letter in dead:
            self._output.dead_letter(letter.frame, letter.reason, letter.detail)

    async def _in_worker(self, func: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)


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
    with KafkaFeedOutput(
        settings.kafka, metrics, exchange=EXCHANGE, linger_ms=settings.binance.producer_linger_ms
    ) as output:
        feed = BinanceFeed(settings.binance, output, metrics, symbols=symbols)
        return asyncio.run(run_until_signalled(feed, on_tick=on_tick, tick_s=tick_s))
