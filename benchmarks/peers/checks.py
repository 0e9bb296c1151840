"""The checks of the peers benchmark: whether a system's answer is K2's.

Values are compared as decimals, whatever form they arrived in (decimal, string, integer): prices,
volumes and counts exactly, VWAP within 1e-6; times as UTC microseconds (a naive time is UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from benchmarks.api.latency import VWAP_TOLERANCE, close_enough, ids
from benchmarks.peers.engine import CHECKSUM, Query

EXACT_BAR_FIELDS = ("open", "high", "low", "close", "volume", "trade_count")
QUOTE_FIELDS = ("bid_price", "ask_price")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(value: Any) -> int:
    """An instant (datetime or ISO-8601 text) as UTC microseconds since the epoch."""
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return (instant - EPOCH) // timedelta(microseconds=1)


def _bar_agrees(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    return (
        got["symbol"] == expected["symbol"]
        and micros(got["interval_start"]) == micros(expected["interval_start"])
        and all(close_enough(got[f], expected[f]) for f in EXACT_BAR_FIELDS)
        and close_enough(got["vwap"], expected["vwap"], VWAP_TOLERANCE)
    )


def _rows(table: pa.Table, names: tuple[str, ...]) -> list[dict[str, Any]]:
    if table.num_rows == 0:
        return []
    rows: list[dict[str, Any]] = table.select(list(names)).to_pylist()
    return rows


def bars_agree(got: pa.Table, expected: pa.Table) -> bool:
    """The same bars in the same order."""
    names = ("symbol", "interval_start", *EXACT_BAR_FIELDS, "vwap")
    mine, theirs = _rows(got, names), _rows(expected, names)
    return len(mine) == len(theirs) and all(map(_bar_agrees, mine, theirs))


def quotes_agree(got: pa.Table, expected: pa.Table) -> bool:
    """The same trades in the same order, each with the same bid and ask price."""
    names = ("message_id", *QUOTE_FIELDS)
    mine, theirs = _rows(got, names), _rows(expected, names)
    return len(mine) == len(theirs) and all(
        str(g["message_id"]) == str(e["message_id"]) and all(close_enough(g[f], e[f]) for f in QUOTE_FIELDS)
        for g, e in zip(mine, theirs, strict=True)
    )


def checksums_agree(got: pa.Table, expected: pa.Table) -> bool:
    """The same trade and match counts and the same sums of bids and asks, exactly."""
    mine, theirs = _rows(got, CHECKSUM), _rows(expected, CHECKSUM)
    return len(mine) == len(theirs) == 1 and all(close_enough(mine[0][f], theirs[0][f]) for f in CHECKSUM)


def agrees(query: Query, got: pa.Table, expected: pa.Table) -> bool:
    """Whether ``got`` answers ``query`` as ``expected`` does."""
    match query:
        case Query.TICKS | Query.TICKS_AGAIN | Query.EXPORT:
            return got.num_rows == expected.num_rows and (got.num_rows == 0 or ids(got) == ids(expected))
        case Query.BARS | Query.BARS_AGAIN | Query.ALL_BARS:
            return bars_agree(got, expected)
        case Query.QUOTES:
            return quotes_agree(got, expected)
        case Query.FULL_QUOTES:
            return checksums_agree(got, expected)


def unquoted(table: pa.Table) -> int:
    """Trades of a Q4 answer with no prevailing quote."""
    return int(table["quote_timestamp"].null_count)
