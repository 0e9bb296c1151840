"""What the peers benchmark asks of every system: the queries, their arguments and answers.

A system answers through an :class:`Engine`, one per protocol or format it is asked in; a peer
engine (QuestDB, chDB, DuckDB) is a :class:`Peer` that loads the benchmark's rows first.
An answer is whatever the system returned, timed as it arrives; its :meth:`Answer.table` reads it
as Arrow with the column names the checks compare: ``message_id`` for trades, ``symbol``,
``interval_start``, ``open``, ``high``, ``low``, ``close``, ``volume``, ``trade_count`` and
``vwap`` for bars, and ``message_id``, ``bid_price`` and ``ask_price`` for trades with quotes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import pyarrow as pa

PAGE_ROWS = 5000
DAY_ROWS = 100_000  # the most one K2 API request returns (K2_API_MAX_ROWS' default)
BAR_SECONDS = 60
# K2's prevailing-quote tolerance, as large as its API allows: it does not cut on this data
# (the peers look back as far, see `Window.quotes_from`).
TOLERANCE = timedelta(milliseconds=86_400_000)
TRADE_COLUMNS = ("message_id", "symbol", "exchange", "timestamp", "price", "quantity", "source_sequence")
QUOTE_COLUMNS = (
    "symbol",
    "exchange",
    "timestamp",
    "source_sequence",
    "bid_price",
    "bid_quantity",
    "ask_price",
    "ask_quantity",
)


class Query(Enum):
    """The queries, by their short name; the value is the label of the report.

    ``TICKS_AGAIN`` and ``BARS_AGAIN`` ask Q1's and Q2's timed picks once more, in the same
    order: the K2 API's answer cache then holds every answer. ``FULL_QUOTES`` joins every trade
    of the table, once per run (no pick).
    """

    TICKS = "Q1 trades of 1 symbol x 1 hour, first 5,000 (distinct picks)"
    TICKS_AGAIN = "Q1 again: the same Q1 requests repeated"
    BARS = "Q2 1-minute bars, 1 symbol x 1 day (distinct picks)"
    BARS_AGAIN = "Q2 again: the same Q2 requests repeated"
    ALL_BARS = "Q3 1-minute bars, all symbols, all trades"
    QUOTES = "Q4 1 symbol-day of trades + prevailing quote"
    FULL_QUOTES = "Q4 full: every trade of the table + prevailing quote"
    EXPORT = "Q5 1 symbol-day of trades to Arrow"

    @property
    def short(self) -> str:
        """Q1 … Q5, "Q1 again", "Q4 full"."""
        return self.value.split(":", 1)[0] if ":" in self.value else self.value.split(" ", 1)[0]


# The queries asked request by request (all but the whole-table join).
PER_REQUEST = tuple(q for q in Query if q is not Query.FULL_QUOTES)
# Q4 full's answer: trades, trades with a prevailing quote, and the sums of their bids and asks.
CHECKSUM = ("trades", "matched", "bid_sum", "ask_sum")


@dataclass(frozen=True, slots=True)
class Window:
    """One symbol's trades in [start, end): the first ``limit`` in K2's order (timestamp, then
    source sequence, then message id).
    """

    symbol: str
    start: datetime
    end: datetime
    limit: int

    @property
    def quotes_from(self) -> datetime:
        """The oldest quote that may prevail over a trade of the window."""
        return self.start - TOLERANCE


class Answer(Protocol):
    """A system's answer to one query."""

    def table(self) -> pa.Table:
        """The answer as Arrow, with the column names the checks compare."""
        ...


@dataclass(frozen=True, slots=True)
class Arrow:
    """An answer that arrived as Arrow."""

    rows: pa.Table

    def table(self) -> pa.Table:
        """The rows as they came."""
        return self.rows


@dataclass(frozen=True, slots=True)
class Rows:
    """An answer that arrived as rows of Python values (a database driver's)."""

    names: list[str]
    rows: list[tuple[Any, ...]]

    def table(self) -> pa.Table:
        """The rows, column by column."""
        columns = list(zip(*self.rows, strict=True)) if self.rows else [() for _ in self.names]
        return pa.table(
            {name: pa.array(list(values)) for name, values in zip(self.names, columns, strict=True)}
        )


class Engine(Protocol):
    """Answers the five queries."""

    def trades(self, window: Window) -> Answer:
        """Q1 and Q5: the window's trades."""
        ...

    def bars(self, window: Window | None) -> Answer:
        """Q2 and Q3: 1-minute OHLCV, trade count and VWAP bars of the window's trades, or of
        every trade when ``window`` is None, ordered by symbol and bucket.
        """
        ...

    def with_quotes(self, window: Window) -> Answer:
        """Q4: the window's trades, each with the last quote of its symbol at or before it (of
        several at one instant, the one with the highest source sequence).
        """
        ...

    def all_quotes(self) -> Answer:
        """Q4 full: every trade of the table joined as in Q4, answered as the one row of
        ``CHECKSUM`` (the sums exact, as decimals).
        """
        ...


class Dialect(Protocol):
    """The SQL text of the queries in one engine's dialect, values written in as literals."""

    def trades(self, window: Window) -> str:
        """Q1 and Q5."""
        ...

    def bars(self, window: Window | None) -> str:
        """Q2 (a window) and Q3 (None)."""
        ...

    def with_quotes(self, window: Window) -> str:
        """Q4."""
        ...

    def all_quotes(self) -> str:
        """Q4 full."""
        ...


@dataclass(frozen=True, slots=True)
class SqlEngine:
    """An engine asked in SQL: a dialect's text, sent by ``run``."""

    dialect: Dialect
    run: Callable[[str], Answer]

    def trades(self, window: Window) -> Answer:
        """Q1 and Q5."""
        return self.run(self.dialect.trades(window))

    def bars(self, window: Window | None) -> Answer:
        """Q2 and Q3."""
        return self.run(self.dialect.bars(window))

    def with_quotes(self, window: Window) -> Answer:
        """Q4."""
        return self.run(self.dialect.with_quotes(window))

    def all_quotes(self) -> Answer:
        """Q4 full."""
        return self.run(self.dialect.all_quotes())


def quoted(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Loaded:
    """How long a peer took to load the rows, what that covers, and how much of it went to
    writing the file the peer imports from (none when it reads Arrow in memory).
    """

    seconds: float
    how: str
    file_seconds: float = 0.0


class Peer(Protocol):
    """A peer engine: loads the rows, then answers the queries through one or more engines."""

    name: str

    def load(self, trades: pa.Table, quotes: pa.Table) -> Loaded:
        """Load ``trades`` and ``quotes`` (the columns of TRADE_COLUMNS and QUOTE_COLUMNS)."""
        ...

    def engines(self) -> dict[str, Engine]:
        """Its ways of being asked, by protocol name ("" when it has only one)."""
        ...

    def describe(self) -> str:
        """How it was run, loaded and asked, for the report's notes."""
        ...

    def close(self) -> None:
        """Release what the peer holds."""
        ...
