"""Fresh reads: a page of lake rows joined by the rows still in Kafka's tail.

The tail (read by :mod:`k2.stream.tail`) holds rows the sink has not committed yet; this module
only filters, deduplicates and orders them with the lake's rows, so it needs no Kafka itself.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from k2.query.errors import InvalidQueryError
from k2.query.ticks import TickQuery


def with_tail(lake_rows: pa.Table, tail_rows: pa.Table, query: TickQuery) -> tuple[pa.Table, int]:
    """``lake_rows`` plus the tail rows matching ``query`` and not already among them, in the
    query's order and cut to its limit; also the number of tail rows kept.

    Raises:
        InvalidQueryError: for a query that pages (a cursor) or reads the past (as of a snapshot):
            the Kafka tail exists only now.
    """
    if query.cursor is not None or query.as_of.snapshot_id or query.as_of.tag or query.as_of.time:
        raise InvalidQueryError("live rows can join only a first page read as of now (no cursor, no as_of)")
    fresh = tail_rows.filter(_matching(tail_rows, query)) if tail_rows.num_rows else tail_rows
    if fresh.num_rows and lake_rows.num_rows:
        fresh = fresh.filter(pc.invert(pc.is_in(fresh["message_id"], value_set=lake_rows["message_id"])))
    if not fresh.num_rows:
        return lake_rows, 0
    merged = pa.concat_tables([lake_rows, fresh.select(lake_rows.column_names).cast(lake_rows.schema)])
    direction = "descending" if query.descending else "ascending"
    order = [(c, direction) for c in ("timestamp", "source_sequence", "message_id")]
    merged = merged.take(pc.sort_indices(merged, order)).slice(0, query.limit)
    kept = pc.sum(pc.is_in(merged["message_id"], value_set=fresh["message_id"])).as_py() or 0
    return merged, kept


def _matching(rows: pa.Table, query: TickQuery) -> pa.ChunkedArray:
    mask = pc.is_valid(rows["message_id"])
    if query.symbols:
        mask = pc.and_(mask, pc.is_in(rows["symbol"], value_set=pa.array(query.symbols)))
    if query.exchange:
        mask = pc.and_(mask, pc.equal(rows["exchange"], query.exchange))
    if query.start:
        mask = pc.and_(
            mask, pc.greater_equal(rows["timestamp"], pa.scalar(query.start, rows["timestamp"].type))
        )
    if query.end:
        mask = pc.and_(mask, pc.less(rows["timestamp"], pa.scalar(query.end, rows["timestamp"].type)))
    return mask
