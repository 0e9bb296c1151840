"""K2's REST API answering the peers benchmark's queries, in JSON or as an Arrow IPC stream,
through the benchmark's keep-alive client (``benchmarks.api.serving``).

Q3 asks for the same bars on every run; so that the API's answer cache does not answer it, each
of an :class:`Api`'s Q3 requests starts one more whole minute before the lake's first trade,
which changes the request and not its answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from benchmarks.api.latency import arrow_rows, json_rows
from benchmarks.api.serving import Client, Reply, iso
from benchmarks.peers.engine import BAR_SECONDS, TOLERANCE, Window
from k2.api.routes.aggregations import MAX_BUCKETS
from k2.settings import ApiSettings

METRICS = ["ohlcv", "vwap", "trade_count"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Every symbol and the whole time range of the lake: Q3 through the API names them."""

    symbols: tuple[str, ...]
    start: datetime
    end: datetime

    def refusal(self, settings: ApiSettings) -> str | None:
        """Why the API would refuse Q3 over the whole scope; None when it takes it."""
        buckets = len(self.symbols) * int((self.end - self.start).total_seconds() // BAR_SECONDS + 1)
        if len(self.symbols) > settings.max_symbols:
            return f"{len(self.symbols)} symbols, more than K2_API_MAX_SYMBOLS ({settings.max_symbols})"
        if self.end - self.start > timedelta(days=settings.max_span_days):
            return f"a span beyond K2_API_MAX_SPAN_DAYS ({settings.max_span_days})"
        if buckets > MAX_BUCKETS:
            return f"{buckets:,} buckets, more than the API's {MAX_BUCKETS:,}"
        return None


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """A JSON answer; its table keeps the scalar members of the rows."""

    reply: Reply

    def table(self) -> pa.Table:
        """The rows' scalar columns."""
        rows = json_rows(self.reply)
        if not rows:
            return pa.table({})
        names = [name for name, value in rows[0].items() if not isinstance(value, dict | list)]
        return pa.table({name: pa.array([row[name] for row in rows]) for name in names})


@dataclass(frozen=True, slots=True)
class ArrowAnswer:
    """An Arrow IPC stream answer."""

    reply: Reply

    def table(self) -> pa.Table:
        """The stream's rows."""
        return arrow_rows(self.reply)


@dataclass(frozen=True, slots=True)
class Api:
    """The API asked in one format (JSON or Arrow)."""

    client: Client
    arrow: bool
    scope: Scope
    _q3_asked: Iterator[int] = field(default_factory=itertools.count, compare=False)

    def _answer(self, reply: Reply) -> JsonAnswer | ArrowAnswer:
        return ArrowAnswer(reply) if self.arrow else JsonAnswer(reply)

    def _params(self, window: Window) -> dict[str, str | int]:
        params: dict[str, str | int] = {
            "symbol": window.symbol,
            "start_time": iso(window.start),
            "end_time": iso(window.end),
            "limit": window.limit,
        }
        return {**params, "format": "arrow"} if self.arrow else params

    def trades(self, window: Window) -> JsonAnswer | ArrowAnswer:
        """Q1 and Q5: ``GET /v1/trades``."""
        return self._answer(self.client.get("/v1/trades", self._params(window)))

    def bars(self, window: Window | None) -> JsonAnswer | ArrowAnswer:
        """Q2 and Q3: ``POST /v1/aggregations``; Q3 names every symbol and the whole range,
        starting a minute earlier each time.
        """
        symbols, start, end = (
            (self.scope.symbols, self.scope.start - timedelta(minutes=next(self._q3_asked)), self.scope.end)
            if window is None
            else ((window.symbol,), window.start, window.end)
        )
        body: dict[str, Any] = {
            "symbols": list(symbols),
            "metrics": METRICS,
            "interval": "1m",
            "start_time": iso(start),
            "end_time": iso(end),
            "format": "arrow" if self.arrow else "json",
        }
        return self._answer(self.client.post("/v1/aggregations", body))

    def with_quotes(self, window: Window) -> JsonAnswer | ArrowAnswer:
        """Q4: ``GET /v1/trades?with_quotes=true`` with a tolerance that does not cut."""
        params = {
            **self._params(window),
            "with_quotes": "true",
            "quote_tolerance_ms": TOLERANCE // timedelta(milliseconds=1),
        }
        return self._answer(self.client.get("/v1/trades", params))

    def all_quotes(self) -> JsonAnswer | ArrowAnswer:
        """Q4 full is not asked of the API: one request returns at most K2_API_MAX_ROWS rows.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("the API answers at most K2_API_MAX_ROWS rows a request")
