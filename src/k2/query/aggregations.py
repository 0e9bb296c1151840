"""Aggregations: the columns of bars a request's metrics ask for, named the same for the API and
the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from k2.domain.bars import Metric
from k2.query.bars import BarQuery
from k2.query.reader import Reader

#: The bar columns each metric adds to the bucket's symbol, exchange and interval.
COLUMNS = {
    Metric.OHLCV: ["open", "high", "low", "close", "volume"],
    Metric.VWAP: ["vwap"],
    Metric.TRADE_COUNT: ["trade_count"],
}
KEYS = ["symbol", "exchange", "interval_start", "interval_end"]


def aggregate(reader: Reader, query: BarQuery, metrics: Sequence[Metric]) -> pa.Table:
    """The bars of ``query`` with the columns ``metrics`` ask for, and the TWAP joined when asked,
    ordered by symbol, exchange and bucket.
    """
    table = reader.bars(query)
    keep = list(KEYS)
    for metric in metrics:
        keep += COLUMNS.get(metric, [])
    result = table.select(list(dict.fromkeys(keep)))
    if Metric.TWAP in metrics:
        weighted = reader.twap(query)
        result = result.join(weighted, ["symbol", "exchange", "interval_start"], join_type="left outer")
        result = result.sort_by(
            [("symbol", "ascending"), ("exchange", "ascending"), ("interval_start", "ascending")]
        )
    return pa.table(result)
