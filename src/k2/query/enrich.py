"""Trades with the quote that prevailed when they printed (an as-of join), like kdb's ``aj``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.lake import decimals
from k2.lake.errors import SnapshotNotFoundError, TableNotFoundError
from k2.lake.tables import QUOTES, TRADES
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
    (snapshot ids belong to one table); a tag only the trades carry reads the quotes as they were
    when the tagged trades were committed, and a time before the first quotes reads none.
    """
    if trades.num_rows == 0:
        return _append_empty(trades)
    symbol_codes = trades["symbol"].combine_chunks().dictionary_encode()
    symbols = tuple(sorted(symbol_codes.dictionary.to_pylist()))
    bounds = pc.min_max(trades["timestamp"])
    selection = Selection(
        symbols, None, bounds["min"].as_py() - tolerance, bounds["max"].as_py() + timedelta(microseconds=1)
    )
    try:
        scan = engine.scan(QUOTES, selection, _quotes_as_of(engine, as_of))
    except (TableNotFoundError, SnapshotNotFoundError):
        return _append_empty(trades)
    books = _books(engine, scan, selection)
    if not books:
        return _append_empty(trades)
    picked = _Picked.empty(trades.num_rows)
    trade_times = trades["timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
    groups = _rows_by_book(symbol_codes, trades["exchange"].combine_chunks().dictionary_encode())
    window = tolerance // timedelta(microseconds=1)
    for key, book in books.items():
        rows = groups.get(key)
        if rows is not None:
            times = trade_times[rows]
            at = np.searchsorted(book.times, times, "right") - 1
            fresh = (at >= 0) & (times - book.times[np.maximum(at, 0)] <= window)
            picked.take(book, rows[fresh], at[fresh])
    return _append(trades, picked)


def _quotes_as_of(engine: QueryEngine, as_of: AsOf) -> AsOf:
    """The quotes' version for trades read ``as_of`` (see :func:`with_prevailing_quotes`)."""
    if as_of.snapshot_id is not None:
        return CURRENT
    if as_of.tag is not None and engine.table(QUOTES).snapshot_by_name(as_of.tag) is None:
        tagged = engine.table(TRADES).snapshot_by_name(as_of.tag)
        if tagged is not None:
            return AsOf(time=datetime.fromtimestamp(tagged.timestamp_ms / 1000, UTC))
    return AsOf(time=as_of.time, tag=as_of.tag)


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


_PRICES = ("bid_price", "bid_quantity", "ask_price", "ask_quantity")


def _books(engine: QueryEngine, scan: Scan, selection: Selection) -> dict[tuple[str, str], _Book]:
    """The quotes of ``selection`` per symbol and exchange, in K2's order."""
    by_book: dict[tuple[str, str], list[ranges.Piece]] = {}
    for piece in ranges.pieces(engine, scan, selection, _PRICES):
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
        merged = ranges.merge(engine, scan, found, _PRICES)
        if merged is not None:
            books[key] = _Book(merged.rows, merged.times)
    return books


@dataclass(frozen=True, slots=True)
class _Picked:
    """Each trade's prevailing quote, gathered column by column: its time (µs) and the unscaled
    integers of its prices and quantities, with which of them are there.
    """

    found: np.ndarray
    times: np.ndarray
    units: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]

    @classmethod
    def empty(cls, rows: int) -> _Picked:
        """No quote yet for any of ``rows`` trades."""
        return cls(
            np.zeros(rows, dtype=bool),
            np.zeros(rows, dtype=np.int64),
            {name: np.zeros(rows, dtype=np.int64) for name in _PRICES},
            {name: np.zeros(rows, dtype=bool) for name in _PRICES},
        )

    def take(self, book: _Book, trades: np.ndarray, quotes: np.ndarray) -> None:
        """Trades at positions ``trades`` get the quotes of ``book`` at positions ``quotes``."""
        self.found[trades] = True
        self.times[trades] = book.times[quotes]
        for name in _PRICES:
            units, valid = _units_of(book.rows[name])
            self.units[name][trades] = units[quotes]
            self.valid[name][trades] = True if valid is None else valid[quotes]


def _units_of(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """A decimal column's unscaled integers, and which are not null (None: all of them)."""
    chunks = column.chunks
    units = np.concatenate([decimals.units(chunk) for chunk in chunks]) if chunks else np.zeros(0, np.int64)
    if column.null_count == 0:
        return units, None
    return units, np.concatenate([decimals.valid(chunk) for chunk in chunks])


def _append(trades: pa.Table, picked: _Picked) -> pa.Table:
    found, units, valid = picked.found, picked.units, picked.valid
    for name in _PRICES:
        valid[name] &= found
    bid, ask = units["bid_price"], units["ask_price"]
    both = valid["bid_price"] & valid["ask_price"]
    stamps = pa.Array.from_buffers(
        pa.int64(), len(found), [_bitmap(found), pa.py_buffer(picked.times)], null_count=-1
    )
    columns = {
        "quote_timestamp": stamps.view(QUOTE_COLUMNS.field("quote_timestamp").type),
        **{name: decimals.decimals(units[name], PRICE, valid[name]) for name in _PRICES},
        "mid_price": decimals.decimals(decimals.halve(np.where(both, bid + ask, 0)), PRICE, both),
        "spread": decimals.decimals(np.where(both, ask - bid, 0), PRICE, both),
    }
    result = trades
    for field in QUOTE_COLUMNS:
        result = result.append_column(field, columns[field.name])
    return result


def _bitmap(valid: np.ndarray) -> pa.Buffer | None:
    return None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))


def _append_empty(trades: pa.Table) -> pa.Table:
    result = trades
    for field in QUOTE_COLUMNS:
        result = result.append_column(field, pa.nulls(trades.num_rows, field.type))
    return result
