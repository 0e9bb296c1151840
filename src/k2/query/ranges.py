"""Rows of a selection read from decoded row groups: the pieces that hold them, in K2's order.

Each block (:mod:`k2.query.blocks`) keeps its rows in K2's order — symbol, event time, sequence
(null as -1), message id — so the rows of one symbol and time range in a block are one *piece*,
found by two binary searches and already in order. A page is the first rows of the pieces
merged: when the pieces follow one another (the usual case: one file's row groups, or files
of successive commits) they are concatenated without copying; otherwise only the first ``limit``
rows of each are sorted together.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.query.blocks import MESSAGE_ID, Block
from k2.query.engine import QueryEngine, Scan, Selection

_TIME = "__k2_time"
_SEQUENCE = "__k2_sequence"


@dataclass(frozen=True, slots=True)
class Key:
    """A row's place in K2's order: event time (µs), sequence (null as -1) and message id."""

    micros: int
    sequence: int
    message_id: str

    def as_tuple(self) -> tuple[int, int, str]:
        """The key as a comparable tuple."""
        return (self.micros, self.sequence, self.message_id)


@dataclass(frozen=True, slots=True)
class Piece:
    """Rows ``[start, stop)`` of a block, one symbol's, in K2's order.

    ``exchange`` is set when the rows still have to be filtered by exchange (a file whose
    partition does not pin it).
    """

    block: Block
    symbol: str
    start: int
    stop: int
    exchange: str | None = None

    @property
    def rows(self) -> int:
        """Rows in the piece (before any exchange filter)."""
        return self.stop - self.start

    def head(self, rows: int) -> Piece:
        """The piece's first ``rows`` rows."""
        if self.exchange is not None:
            return self
        return Piece(self.block, self.symbol, self.start, min(self.stop, self.start + rows))

    def tail(self, rows: int) -> Piece:
        """The piece's last ``rows`` rows."""
        if self.exchange is not None:
            return self
        return Piece(self.block, self.symbol, max(self.start, self.stop - rows), self.stop)


def pieces(engine: QueryEngine, scan: Scan, selection: Selection, columns: Sequence[str] = ()) -> list[Piece]:
    """The pieces holding the rows of ``selection`` in the files of ``scan``; ``columns`` are
    the ones the caller will read (decoded with the index when a row group is first read).
    """
    projection = scan.projection
    if projection is None:
        return []
    start_us, end_us = selection.start_us, selection.end_us
    exchange = selection.exchange.upper() if selection.exchange else None
    groups = [
        group
        for file in scan.files
        for group in engine.blocks.row_groups(file, projection, selection.symbols, start_us, end_us)
    ]
    blocks = engine.blocks.blocks(groups, projection, columns, workers=engine.settings.threads)
    found = []
    for block in blocks:
        row_filter = exchange if exchange is not None and block.group.file.exchange is None else None
        for symbol in selection.symbols or tuple(block.runs):
            if symbol not in block.runs:
                continue
            first, last = block.runs[symbol]
            times = block.times[first:last]
            lo = first + (int(np.searchsorted(times, start_us, "left")) if start_us is not None else 0)
            hi = first + (int(np.searchsorted(times, end_us, "left")) if end_us is not None else len(times))
            if hi > lo:
                found.append(Piece(block, symbol, lo, hi, row_filter))
    return found


def after(engine: QueryEngine, scan: Scan, piece: Piece, key: Key, *, descending: bool) -> Piece:
    """The rows of ``piece`` after ``key`` in K2's order (before it when ``descending``)."""
    times = piece.block.times[piece.start : piece.stop]
    lo = int(np.searchsorted(times, key.micros, "left"))
    hi = int(np.searchsorted(times, key.micros, "right"))
    sequences = piece.block.sequences[piece.start + lo : piece.start + hi]
    equal_from = lo + int(np.searchsorted(sequences, key.sequence, "left"))
    equal_to = lo + int(np.searchsorted(sequences, key.sequence, "right"))
    ids: list[str] = []
    if equal_to > equal_from:
        ids = _message_ids(engine, scan, piece, piece.start + equal_from, piece.start + equal_to)
    if descending:
        return Piece(
            piece.block,
            piece.symbol,
            piece.start,
            piece.start + equal_from + bisect.bisect_left(ids, key.message_id),
            piece.exchange,
        )
    return Piece(
        piece.block,
        piece.symbol,
        piece.start + equal_from + bisect.bisect_right(ids, key.message_id),
        piece.stop,
        piece.exchange,
    )


@dataclass(frozen=True, slots=True)
class Part:
    """The rows of a piece with their event times and sequences (aligned with the rows)."""

    rows: pa.Table
    times: np.ndarray
    sequences: np.ndarray

    def bound(self, row: int) -> tuple[int, int]:
        """Event time and sequence of row ``row``."""
        return int(self.times[row]), int(self.sequences[row])


def ordered(
    engine: QueryEngine,
    scan: Scan,
    found: Sequence[Piece],
    names: Sequence[str],
    limit: int,
    *,
    descending: bool = False,
) -> pa.Table:
    """The first ``limit`` rows of ``found`` in K2's order (the last, newest first, when
    ``descending``), with columns ``names``.
    """
    merged = merge(engine, scan, [(p.tail(limit) if descending else p.head(limit)) for p in found], names)
    if merged is None:
        return _empty(scan, names)
    rows = merged.rows
    if descending:
        rows = rows.slice(max(0, rows.num_rows - limit))
        return rows.take(pa.array(np.arange(rows.num_rows - 1, -1, -1)))
    return rows.slice(0, limit)


def merge(engine: QueryEngine, scan: Scan, found: Sequence[Piece], names: Sequence[str]) -> Part | None:
    """All rows of ``found`` in K2's order, with columns ``names``; None when there are none.

    Pieces that follow one another are joined without copying; pieces that overlap are sorted
    together, the message id deciding between rows tied on time and sequence.
    """
    parts = [
        part for part in (materialise(engine, scan, p, names) for p in found if p.rows) if part.rows.num_rows
    ]
    if not parts:
        return None
    parts.sort(key=lambda part: part.bound(0))
    if all(a.bound(a.rows.num_rows - 1) < b.bound(0) for a, b in itertools.pairwise(parts)):
        return Part(
            pa.concat_tables([part.rows for part in parts]),
            np.concatenate([part.times for part in parts]),
            np.concatenate([part.sequences for part in parts]),
        )
    tie = scan.projection.tie if scan.projection else None
    if tie is not None and tie not in names:
        with_ties = merge(engine, scan, found, [*names, tie])
        assert with_ties is not None
        return Part(with_ties.rows.drop_columns([tie]), with_ties.times, with_ties.sequences)
    return _sorted(parts, tie)


def count(engine: QueryEngine, scan: Scan, found: Sequence[Piece]) -> int:
    """Rows in ``found`` (after their exchange filters)."""
    return sum(
        piece.rows if piece.exchange is None else materialise(engine, scan, piece, ["exchange"]).rows.num_rows
        for piece in found
    )


def materialise(engine: QueryEngine, scan: Scan, piece: Piece, names: Sequence[str]) -> Part:
    """Columns ``names`` of the piece's rows (filtered by its exchange when it has one)."""
    assert scan.projection is not None
    wanted = list(names) if piece.exchange is None or "exchange" in names else [*names, "exchange"]
    table = engine.blocks.columns(piece.block, scan.projection, wanted).slice(piece.start, piece.rows)
    times = piece.block.times[piece.start : piece.stop]
    sequences = piece.block.sequences[piece.start : piece.stop]
    if piece.exchange is not None:
        mask = pc.equal(table["exchange"], piece.exchange)
        keep = mask.to_numpy(zero_copy_only=False)
        table, times, sequences = table.filter(mask).select(list(names)), times[keep], sequences[keep]
    return Part(table, times, sequences)


def _message_ids(engine: QueryEngine, scan: Scan, piece: Piece, start: int, stop: int) -> list[str]:
    assert scan.projection is not None
    column = engine.blocks.columns(piece.block, scan.projection, [MESSAGE_ID])[MESSAGE_ID]
    return [str(v) for v in column.slice(start, stop - start).to_pylist()]


def _sorted(parts: Sequence[Part], tie: str | None) -> Part:
    """The parts' rows merged in K2's order (``tie`` deciding between rows tied on time and
    sequence, when the table has such a column).
    """
    merged = pa.concat_tables(
        [
            part.rows.append_column(_TIME, pa.array(part.times)).append_column(
                _SEQUENCE, pa.array(part.sequences)
            )
            for part in parts
        ]
    )
    keys = [(_TIME, "ascending"), (_SEQUENCE, "ascending")] + ([(tie, "ascending")] if tie else [])
    merged = merged.sort_by(keys)
    times = merged[_TIME].to_numpy()
    sequences = merged[_SEQUENCE].to_numpy()
    return Part(merged.drop_columns([_TIME, _SEQUENCE]), times, sequences)


def _empty(scan: Scan, names: Sequence[str]) -> pa.Table:
    assert scan.projection is not None
    return pa.schema([(n, scan.projection.type_of(n)) for n in names]).empty_table()
