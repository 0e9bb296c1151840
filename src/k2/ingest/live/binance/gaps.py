"""Trade-id gaps of the live Binance feed, and their backfill through Binance's REST recent-trades call.

Binance numbers each symbol's trades consecutively. :class:`GapTracker` remembers the last trade
id per symbol across connections, and across runs through :meth:`GapTracker.resume`; a first id
after it that skips ahead is a gap, counted and listed, and the missing ids are asked of the REST
recent-trades call and handed back to the feed when they are still in its window
(``backfill_limit`` trades); what is not recovered is counted lost. Backfills run as tasks beside
the stream, so a slow REST call never stalls the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import orjson
import structlog

from k2.ingest.live.binance.protocol import EXCHANGE, MalformedMessageError, MarketMessage, rest_trade_message
from k2.ingest.live.status import FeedStats, Gap
from k2.obs.metrics import K2Metrics

log = structlog.get_logger(__name__)

#: Seconds a REST backfill call may take.
BACKFILL_TIMEOUT_S = 10.0

#: Takes a recovered trade (the feed queues it for the sink).
OnTrade = Callable[[MarketMessage], Awaitable[None]]
#: Takes a REST item that could not be read, as JSON, with why (the feed dead-letters it).
OnMalformed = Callable[[bytes, MalformedMessageError], Awaitable[None]]


class GapTracker:
    """Finds trade-id gaps per symbol, across connections, and backfills them from REST.

    Counts into ``stats`` (``gaps``, ``gap_trades``, ``backfilled``, ``lost``, ``recent_gaps``)
    and ``metrics``; hands recovered trades to ``on_trade`` and unreadable REST items to
    ``on_malformed``.
    """

    def __init__(
        self,
        stats: FeedStats,
        metrics: K2Metrics,
        *,
        rest_url: str,
        backfill_limit: int,
        on_trade: OnTrade,
        on_malformed: OnMalformed,
    ) -> None:
        self._stats = stats
        self._metrics = metrics
        self._rest_url = rest_url
        self._backfill_limit = backfill_limit
        self._on_trade = on_trade
        self._on_malformed = on_malformed
        self._last_trade: dict[str, int] = {}
        self._seen_on_connection: set[str] = set()
        self._backfills: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def rest_client(self) -> AsyncIterator[None]:
        """Keep the REST client backfills use open for the duration of the block."""
        async with httpx.AsyncClient(
            base_url=self._rest_url, timeout=httpx.Timeout(BACKFILL_TIMEOUT_S)
        ) as http:
            self._http = http
            yield

    def resume(self, last_trade_ids: dict[str, int]) -> None:
        """Start from the last trade id of each symbol an earlier run delivered, so the trades
        sent while no feed ran are a gap like one across a reconnect.
        """
        for symbol, trade_id in last_trade_ids.items():
            if trade_id > self._last_trade.get(symbol, -1):
                self._last_trade[symbol] = trade_id

    def new_connection(self) -> None:
        """A new connection opened: each symbol's first trade on it may follow a gap."""
        self._seen_on_connection = set()

    def check(self, message: MarketMessage) -> None:
        """Note a trade's id; when it skips ahead of the symbol's last one, count the gap and backfill it."""
        symbol, trade_id = message.symbol, message.sequence
        first_on_connection = symbol not in self._seen_on_connection
        self._seen_on_connection.add(symbol)
        last = self._last_trade.get(symbol)
        if last is None or trade_id > last:
            self._last_trade[symbol] = trade_id
        if last is None or trade_id <= last + 1:
            return
        detected_at = datetime.fromtimestamp(message.received_us / 1e6, UTC)
        gap = Gap(symbol, last + 1, trade_id - 1, at_reconnect=first_on_connection, detected_at=detected_at)
        self._stats.gaps += 1
        self._stats.gap_trades += gap.missing
        self._stats.recent_gaps.append(gap)
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

    async def wait(self) -> None:
        """Wait for running backfills, at most twice a REST call's timeout."""
        if self._backfills:
            await asyncio.wait(self._backfills, timeout=BACKFILL_TIMEOUT_S * 2)

    async def _backfill(self, gap: Gap) -> None:
        """Ask the REST recent-trades call for the gap's trades and hand on those it still has."""
        if self._http is None:
            raise RuntimeError("backfill outside rest_client()")
        try:
            response = await self._http.get(
                "/api/v3/trades", params={"symbol": gap.symbol, "limit": self._backfill_limit}
            )
            response.raise_for_status()
            items = orjson.loads(response.content)
            if not isinstance(items, list):
                raise TypeError(f"expected a JSON list, got {type(items).__name__}")
        except (httpx.HTTPError, orjson.JSONDecodeError, TypeError) as exc:
            gap.status = "failed"
            self._stats.lost += gap.missing
            self._metrics.feed_gap_trades.labels(EXCHANGE, "lost").inc(gap.missing)
            log.error("feed_backfill_failed", symbol=gap.symbol, missing=gap.missing, error=str(exc))
            return
        received_us = time.time_ns() // 1000
        recovered = 0
        for item in items:
            try:
                message = rest_trade_message(gap.symbol, item, received_us)
            except MalformedMessageError as exc:
                await self._on_malformed(orjson.dumps(item), exc)
                continue
            if gap.first_missing <= message.sequence <= gap.last_missing:
                await self._on_trade(message)
                recovered += 1
        gap.backfilled = recovered
        gap.status = "backfilled" if recovered == gap.missing else "partial"
        self._stats.backfilled += recovered
        self._metrics.feed_gap_trades.labels(EXCHANGE, "backfilled").inc(recovered)
        if gap.lost:
            self._stats.lost += gap.lost
            self._metrics.feed_gap_trades.labels(EXCHANGE, "lost").inc(gap.lost)
        log.info("feed_backfill", symbol=gap.symbol, missing=gap.missing, backfilled=recovered, lost=gap.lost)
