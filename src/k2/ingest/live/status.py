"""What a live feed reports while it runs: its statistics, and a run that ticks a status callback.

:class:`FeedStats` is what the feed has done so far (messages, reconnects, gaps, backfill,
backpressure, lag); the live status line and the final report read it.
:func:`run_until_signalled` runs a feed until SIGINT, SIGTERM or a stop event, calling a
:data:`StatusCallback` with the statistics every tick and once at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


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


#: Gaps kept for listing; older ones are only counted.
RECENT_GAPS = 100


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


StatusCallback = Callable[[FeedStats], None]


class RunnableFeed(Protocol):
    """A feed :func:`run_until_signalled` can run."""

    @property
    def stats(self) -> FeedStats:
        """The feed's live statistics."""
        ...

    async def run(self, stop: asyncio.Event | None = None) -> FeedStats:
        """Stream until ``stop`` is set, then flush; what the feed did."""
        ...


async def run_until_signalled(
    feed: RunnableFeed,
    *,
    stop: asyncio.Event | None = None,
    on_tick: StatusCallback | None = None,
    tick_s: float = 0.5,
) -> FeedStats:
    """Run ``feed`` until SIGINT, SIGTERM or ``stop``, calling ``on_tick`` every ``tick_s`` seconds.

    Raises:
        K2Error: as the feed's ``run`` does.
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
