"""Trades with the quote that prevailed when they printed (an as-of join), like kdb's ``aj``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.lake import decimals
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import QUOTES
from k2.query import ranges
from k2.query.engine import CURRENT, AsOf, QueryEngine, Scan, Selection

PRICE = pa.decimal128(18, 8)

QUOTE_COLUMNS = pa.schema(
    [
        pa.field("quote_timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("bid_price", pa.decimal128(18, 8)),
        pa.field("bid_quantity", pa.decimal128(18, 8)),
        pa.field("ask_price", pa.decimal128(18, 8)),
        pa.field("ask_quantity", pa.decimal128(18, 8)),
        pa.field("mid_price", pa.decimal128(18, 8)),
        pa.field("spread", pa.decimal128(18, 8)),
    ]
)


def with_prevailing_quotes(
    engine: QueryEngine, trades: pa.Table, tolerance: timedelta, as_of: AsOf = CURRENT
) -> pa.Table:
    """``trades`` plus the last quote of the same symbol and exchange at or before each trade,
    if it is at most ``tolerance`` older; its columns are null otherwise.

    Of several quotes at one instant the last in K2's order (highest sequence) prevails.
    ``spread`` is ask minus bid and may be zero or negative while the book is locked or crossed
    (auctions); ``mid_price`` is their mean, rounded half to even to 8 decimals. Quotes are read
    at ``as_of`` when it names a time or a tag, otherwise at the quotes table's current snapshot
    (snapshot ids belong to one table).
    """
    if trades.num_rows == 0:
        return _append_empty(trades)
    quotes_as_of = AsOf(time=as_of.time, tag=as_of.tag) if as_of.snapshot_id is None else AsOf()
    symbol_codes = trades["symbol"].combine_chunks().dictionary_encode()
    symbols = tuple(sorted(symbol_codes.dictionary.to_pylist()))
    bounds = pc.min_max(trades["timestamp"])
    selection = Selection(
        symbols, None, bounds["min"].as_py() - tolerance, bounds["max"].as_py() + timedelta(microseconds=1)
    )
    try:
        scan = engine.scan(QUOTES, selection, quotes_as_of)
    except TableNotFoundError:
        return _append_empty(trades)
    books = _books(engine, scan, selection)
    if not books:
        return _append_empty(trades)
    # Each trade's prevailing quote as a row of all the books' quotes put end to end.
    quotes = pa.concat_tables([book.rows for book in books.values()])
    offsets = np.cumsum([0] + [book.rows.num_rows for book in books.values()])
    chosen = np.full(trades.num_rows, -1, dtype=np.int64)
    trade_times = trades["timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
    groups = _rows_by_book(symbol_codes, trades["exchange"].combine_chunks().dictionary_encode())
    for position, (key, book) in enumerate(books.items()):
        rows = groups.get(key)
        if rows is None:
            continue
        at = np.searchsorted(book.times, trade_times[rows], "right") - 1
        found = at >= 0
        fresh = trade_times[rows] - book.times[np.maximum(at, 0)] <= int(tolerance.total_seconds() * 1e6)
        chosen[rows] = np.where(found & fresh, at + offsets[position], -1)
    picked = quotes.take(pa.array(chosen, mask=chosen < 0))
    return _append(trades, picked)


def _rows_by_book(
    symbols: pa.DictionaryArray, exchanges: pa.DictionaryArray
) -> dict[tuple[str, str], np.ndarray]:
    """The positions of the trades of each (symbol, exchange), from their dictionary codes."""
    width = len(exchanges.dictionary)
    codes = symbols.indices.to_numpy(zero_copy_only=False).astype(
        np.int64
    ) * width + exchanges.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    stops = np.concatenate((starts[1:], [len(ordered)]))
    names, venues = symbols.dictionary.to_pylist(), exchanges.dictionary.to_pylist()
    return {
        (names[int(ordered[a]) // width], venues[int(ordered[a]) % width]): order[a:b]
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
    }


@dataclass(frozen=True, slots=True)
class _Book:
    """One symbol's quotes at one exchange in K2's order, with their times (µs)."""

    rows: pa.Table
    times: np.ndarray


_SOURCE = ["timestamp", "bid_price", "bid_quantity", "ask_price", "ask_quantity"]


def _books(engine: QueryEngine, scan: Scan, selection: Selection) -> dict[tuple[str, str], _Book]:
    """The quotes of ``selection`` per symbol and exchange, in K2's order."""
    by_book: dict[tuple[str, str], list[ranges.Piece]] = {}
    for piece in ranges.pieces(engine, scan, selection, _SOURCE):
        exchange = piece.block.group.file.exchange
        if exchange is None:  # a file whose partition does not pin its exchange: split its rows
            names = pc.unique(ranges.materialise(engine, scan, piece, ["exchange"]).rows["exchange"])
            for name in names.to_pylist():
                filtered = ranges.Piece(piece.block, piece.symbol, piece.start, piece.stop, str(name))
                by_book.setdefault((piece.symbol, str(name)), []).append(filtered)
        else:
            by_book.setdefault((piece.symbol, exchange), []).append(piece)
    books = {}
    for key, found in sorted(by_book.items()):
        merged = ranges.merge(engine, scan, found, _SOURCE)
        if merged is not None:
            books[key] = _Book(merged.rows, merged.times)
    return books


def _append(trades: pa.Table, quotes: pa.Table) -> pa.Table:
    bid, ask = quotes["bid_price"].combine_chunks(), quotes["ask_price"].combine_chunks()
    both = decimals.valid(bid) & decimals.valid(ask)
    bid_units, ask_units = decimals.units(bid), decimals.units(ask)
    columns = {
        "quote_timestamp": quotes["timestamp"].combine_chunks(),
        "bid_price": bid,
        "bid_quantity": quotes["bid_quantity"].combine_chunks(),
        "ask_price": ask,
        "ask_quantity": quotes["ask_quantity"].combine_chunks(),
        "mid_price": decimals.decimals(decimals.halve(np.where(both, bid_units + ask_units, 0)), PRICE, both),
        "spread": decimals.decimals(np.where(both, ask_units - bid_units, 0), PRICE, both),
    }
    result = trades
    for field in QUOTE_COLUMNS:
        result = result.append_column(field, columns[field.name].cast(field.type))
    return result


def _append_empty(trades: pa.Table) -> pa.Table:
    result = trades
    for field in QUOTE_COLUMNS:
        result = result.append_column(field, pa.nulls(trades.num_rows, field.type))
    return result
