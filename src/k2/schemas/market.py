"""K2's records, version 2: trades, quotes and reference data."""

from __future__ import annotations

from k2.domain.events import AssetClass, TradeSide
from k2.schemas.record import Column, Kind, Record

_ASSET = Column(
    "asset_class",
    Kind.ENUM,
    "Instrument class.",
    symbols=tuple(a.value for a in AssetClass),
    enum_name="AssetClass",
)
_MESSAGE_ID = Column(
    "message_id", Kind.STRING, "Deterministic UUID of the record's natural key; the dedup key."
)
_SYMBOL = Column("symbol", Kind.STRING, "Venue ticker, e.g. BHP or BTCUSDT.")
_EXCHANGE = Column("exchange", Kind.STRING, "Venue code, upper case, e.g. ASX or BINANCE.")
_TIMESTAMP = Column("timestamp", Kind.TIMESTAMP, "Exchange event time, UTC, microseconds.")
_CURRENCY = Column("currency", Kind.STRING, "Price currency: ISO 4217 or the quote asset.")
_SOURCE_SEQ = Column(
    "source_sequence",
    Kind.LONG,
    "Venue sequence; for ASX files the row's 1-based order within its symbol's trading day.",
    required=False,
)
_INGESTED = Column("ingestion_timestamp", Kind.TIMESTAMP, "When K2 received the record, UTC.")
_PLATFORM_SEQ = Column(
    "platform_sequence",
    Kind.LONG,
    "Sequence K2 assigns per symbol in the stream, when it does.",
    required=False,
)
_VENDOR = Column("vendor_data", Kind.STRING_MAP, "Venue-specific fields kept as strings.", required=False)

TRADE = Record(
    name="Trade",
    version=2,
    doc="One trade print.",
    columns=(
        _MESSAGE_ID,
        Column("trade_id", Kind.STRING, "Venue trade id, prefixed with the venue code."),
        _SYMBOL,
        _EXCHANGE,
        _ASSET,
        _TIMESTAMP,
        Column("price", Kind.DECIMAL, "Trade price."),
        Column("quantity", Kind.DECIMAL, "Traded quantity."),
        _CURRENCY,
        Column(
            "side",
            Kind.ENUM,
            "Aggressor side.",
            symbols=tuple(s.value for s in TradeSide),
            enum_name="TradeSide",
        ),
        Column("trade_conditions", Kind.STRING_LIST, "Venue condition codes, raw; empty if none."),
        _SOURCE_SEQ,
        _INGESTED,
        _PLATFORM_SEQ,
        _VENDOR,
    ),
)

QUOTE = Record(
    name="Quote",
    version=2,
    doc="One top-of-book update. A side the venue shows no price for is null.",
    columns=(
        _MESSAGE_ID,
        Column("quote_id", Kind.STRING, "Venue quote id, prefixed with the venue code."),
        _SYMBOL,
        _EXCHANGE,
        _ASSET,
        _TIMESTAMP,
        Column("bid_price", Kind.DECIMAL, "Best bid; null when there is none.", required=False),
        Column("bid_quantity", Kind.DECIMAL, "Quantity at the best bid."),
        Column("ask_price", Kind.DECIMAL, "Best ask; null when there is none.", required=False),
        Column("ask_quantity", Kind.DECIMAL, "Quantity at the best ask."),
        _CURRENCY,
        _SOURCE_SEQ,
        _INGESTED,
        _PLATFORM_SEQ,
        _VENDOR,
    ),
)

INSTRUMENT = Record(
    name="Instrument",
    version=2,
    doc="An instrument listed on a venue over a validity period.",
    columns=(
        _SYMBOL,
        _EXCHANGE,
        _ASSET,
        Column("source_id", Kind.STRING, "The venue's or vendor's own id, e.g. ASX company id."),
        Column("name", Kind.STRING, "Company or instrument name."),
        Column("isin", Kind.STRING, "ISIN, when known.", required=False),
        _CURRENCY,
        Column("valid_from", Kind.DATE, "First day the listing is valid."),
        Column("valid_to", Kind.DATE, "Last day the listing is valid; null if open.", required=False),
        _INGESTED,
    ),
)

DIVIDEND = Record(
    name="Dividend",
    version=2,
    doc="A declared cash dividend.",
    columns=(
        _SYMBOL,
        _EXCHANGE,
        Column("declared_date", Kind.DATE, "Declaration date."),
        Column("ex_date", Kind.DATE, "Ex-dividend date."),
        Column("record_date", Kind.DATE, "Record date.", required=False),
        Column("pay_date", Kind.DATE, "Payment date.", required=False),
        Column("net_amount", Kind.DECIMAL, "Net amount per share."),
        Column("gross_amount", Kind.DECIMAL, "Gross amount per share.", required=False),
        _CURRENCY,
        _INGESTED,
    ),
)

SPLIT = Record(
    name="Split",
    version=2,
    doc="A stock split: each old share becomes ``ratio`` shares from ``effective_date``.",
    columns=(
        _SYMBOL,
        _EXCHANGE,
        Column("effective_date", Kind.DATE, "First day of trading on the new basis."),
        Column("ratio", Kind.DECIMAL, "New shares per old share."),
        _INGESTED,
    ),
)

MINUTE_BAR = Record(
    name="MinuteBar",
    version=1,
    doc="One symbol's trades in one minute, summed so that minutes combine exactly into longer bars.",
    columns=(
        _SYMBOL,
        _EXCHANGE,
        Column("bucket_start", Kind.TIMESTAMP, "Start of the minute, UTC."),
        Column("open", Kind.DECIMAL, "Price of the first trade in K2's order."),
        Column("high", Kind.DECIMAL, "Highest price."),
        Column("low", Kind.DECIMAL, "Lowest price."),
        Column("close", Kind.DECIMAL, "Price of the last trade in K2's order."),
        Column("first_trade", Kind.TIMESTAMP, "Time of the first trade."),
        Column("first_sequence", Kind.LONG, "Venue sequence of the first trade (-1 when it has none)."),
        Column("last_trade", Kind.TIMESTAMP, "Time of the last trade."),
        Column("last_sequence", Kind.LONG, "Venue sequence of the last trade (-1 when it has none)."),
        Column("volume", Kind.DECIMAL, "Sum of quantities, exact.", precision=38, scale=8),
        Column("trade_count", Kind.LONG, "Number of trades."),
        Column("notional", Kind.DECIMAL, "Sum of price x quantity, exact.", precision=38, scale=16),
    ),
)

RECORDS: dict[str, Record] = {r.name.lower(): r for r in (TRADE, QUOTE, INSTRUMENT, DIVIDEND, SPLIT)}
