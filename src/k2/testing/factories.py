"""Build v2 trade and quote rows with sensible defaults, for tests and examples."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from k2.domain.identity import message_id
from k2.schemas.market import QUOTE, TRADE

_EPOCH = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)


def trade_row(
    symbol: str = "BHP",
    timestamp: datetime = _EPOCH,
    price: Decimal | str = "10",
    quantity: Decimal | str = "100",
    *,
    sequence: int = 1,
    exchange: str = "ASX",
    **overrides: Any,
) -> dict[str, Any]:
    """One trade as a dict in the v2 Arrow schema; ``overrides`` replace any field."""
    trade_id = f"{exchange}-{symbol}-{timestamp:%Y%m%d}-{sequence}"
    row: dict[str, Any] = {
        "message_id": message_id(exchange, "trade", trade_id),
        "trade_id": trade_id,
        "symbol": symbol,
        "exchange": exchange,
        "asset_class": "equities",
        "timestamp": timestamp,
        "price": Decimal(price),
        "quantity": Decimal(quantity),
        "currency": "AUD",
        "side": "UNKNOWN",
        "trade_conditions": [],
        "source_sequence": sequence,
        "ingestion_timestamp": _EPOCH,
        "platform_sequence": None,
        "vendor_data": None,
    }
    row.update(overrides)
    return row


def make_trade_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table in the trades schema from :func:`trade_row` dicts."""
    return pa.Table.from_pylist(rows, schema=TRADE.arrow_schema())


def quote_row(
    symbol: str = "BHP",
    timestamp: datetime = _EPOCH,
    bid: Decimal | str = "9.99",
    ask: Decimal | str = "10.01",
    *,
    sequence: int = 1,
    exchange: str = "ASX",
    **overrides: Any,
) -> dict[str, Any]:
    """One quote as a dict in the v2 Arrow schema (100 on each side); ``overrides`` replace any field."""
    quote_id = f"{exchange}-{symbol}-{timestamp:%Y%m%d}-{sequence}"
    row: dict[str, Any] = {
        "message_id": message_id(exchange, "quote", quote_id),
        "quote_id": quote_id,
        "symbol": symbol,
        "exchange": exchange,
        "asset_class": "equities",
        "timestamp": timestamp,
        "bid_price": Decimal(bid),
        "bid_quantity": Decimal(100),
        "ask_price": Decimal(ask),
        "ask_quantity": Decimal(100),
        "currency": "AUD",
        "source_sequence": sequence,
        "ingestion_timestamp": _EPOCH,
        "platform_sequence": None,
        "vendor_data": None,
    }
    row.update(overrides)
    return row


def make_quote_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table in the quotes schema from :func:`quote_row` dicts."""
    return pa.Table.from_pylist(rows, schema=QUOTE.arrow_schema())
