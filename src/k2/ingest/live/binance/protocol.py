"""Binance spot market streams as v2 trades and quotes; pure functions, no I/O.

Binance sends ``<symbol>@trade`` and ``<symbol>@bookTicker`` payloads, raw (``/ws/<stream>``) or
wrapped as ``{"stream": ..., "data": ...}`` (``/stream?streams=...``). A trade carries its
per-symbol trade id ``t``, trade time ``T`` and event time ``E`` (ms), price ``p`` and quantity
``q`` as decimal strings, and ``m`` (the buyer is the maker, so the taker sold). A book ticker
carries the order book update id ``u`` and the best bid and ask (``b``/``B``, ``a``/``A``) but no
event time, so its ``timestamp`` is the time K2 received it (``vendor_data`` says so).

Rows carry exchange ``BINANCE``, asset class ``crypto`` and the pair's quote asset as currency;
``trade_id``/``quote_id`` is ``BINANCE-<symbol>-<id>`` and ``source_sequence`` the venue id, so
``message_id`` is the same whichever way a trade arrives (stream or REST backfill) and the sink
drops the second copy. Prices and sizes are read from the strings exactly; a value that does not
fit decimal(18,8) is refused, never rounded. Anything unreadable raises
:class:`MalformedMessageError`, whose ``reason`` is one of a few fixed codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from k2.domain.events import PRICE_PRECISION, PRICE_SCALE, AssetClass, TradeSide
from k2.domain.identity import message_ids, natural_key
from k2.errors import InvalidInputError
from k2.schemas.market import QUOTE, TRADE

EXCHANGE = "BINANCE"

#: Quote assets of Binance spot pairs; the longest matching suffix of a symbol wins.
QUOTE_ASSETS = tuple(
    sorted(
        (
            "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "XRP",
            "TRX", "DOGE", "EUR", "GBP", "TRY", "BRL", "AUD", "JPY", "ZAR", "UAH", "PLN", "RON",
            "ARS", "MXN", "COP", "CZK", "IDR", "NGN", "RUB",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip

#: Times beyond this (ms since the epoch; 2100-01-01) are not Binance's millisecond clock.
_MAX_MS = 4_102_444_800_000
#: A decimal string that fits decimal(18,8) exactly (as Binance writes them: "0.00120000").
_DECIMAL = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,8}0{0,10})?")
_DECIMAL_TYPE = pa.decimal128(PRICE_PRECISION, PRICE_SCALE)
_ZERO_PRICE = pa.scalar(0, _DECIMAL_TYPE)
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_VENDOR_DATA = pa.map_(pa.string(), pa.field("value", pa.string(), nullable=False))
_BUY, _SELL = TradeSide.BUY.value, TradeSide.SELL.value


class Reason(StrEnum):
    """Why a message could not be read; the label of the malformed-message metric."""

    INVALID_JSON = "invalid_json"
    UNKNOWN_STREAM = "unknown_stream"
    UNKNOWN_EVENT = "unknown_event"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_PAIR = "unknown_pair"


class MalformedMessageError(InvalidInputError):
    """A Binance message K2 cannot read; ``reason`` says what kind of fault it is.

    Attributes:
        reason: the fault's code.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class StreamKind(StrEnum):
    """What a market message is about, which decides its table."""

    TRADE = "trade"
    QUOTE = "quote"


class MarketMessage(NamedTuple):
    """One trade or book-ticker update, checked, with its values as Binance sent them;
    :func:`to_table` turns many at once into v2 rows.

    Attributes:
        kind: trade or quote.
        symbol: the pair, upper case.
        sequence: the trade id (trades) or order book update id (quotes).
        event_time_ms: Binance's event time, when the payload has one.
        time_ms: the row's time: the trade time, or a quote's event time; None for a quote
            without one, which is stamped with ``received_us``.
        received_us: when K2 received it, µs since the epoch (the row's ``ingestion_timestamp``).
        decimals: decimal strings that fit decimal(18,8): price and quantity (trades); bid, bid
            size, ask and ask size (quotes).
        buyer_is_maker: whether the buyer was the maker (trades).
        source: ``stream``, or ``rest_backfill`` for a trade recovered through REST.
    """

    kind: StreamKind
    symbol: str
    sequence: int
    event_time_ms: int | None
    time_ms: int | None
    received_us: int
    decimals: tuple[str, ...]
    buyer_is_maker: bool = False
    source: str = "stream"


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A message that is not market data: ``serverShutdown``, or the answer to a request."""

    event: str


@cache
def quote_currency(symbol: str) -> str:
    """The quote asset of a pair, e.g. ``USDT`` for ``BTCUSDT``.

    Raises:
        MalformedMessageError: the pair ends in no known quote asset.
    """
    for asset in QUOTE_ASSETS:
        if symbol.endswith(asset) and len(symbol) > len(asset):
            return asset
    raise MalformedMessageError(Reason.UNKNOWN_PAIR, f"no known quote asset in {symbol!r}")


def stream_names(symbols: list[str]) -> list[str]:
    """The trade and book-ticker streams of ``symbols``, as Binance names them (lower case)."""
    return [f"{s.lower()}@{suffix}" for s in symbols for suffix in ("trade", "bookTicker")]


def combined_stream_url(ws_url: str, symbols: list[str]) -> str:
    """The combined-stream URL of ``symbols``' trades and book tickers under ``ws_url``."""
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(stream_names(symbols))}"


def parse_frame(frame: str | bytes, received_us: int) -> MarketMessage | ControlMessage:
    """Read one WebSocket text frame, combined (``{"stream", "data"}``) or raw.

    Args:
        frame: the frame as received.
        received_us: when it was received, µs since the epoch; a spot quote's timestamp and
            every row's ``ingestion_timestamp``.

    Returns:
        The trade or quote, or a control message.

    Raises:
        MalformedMessageError: the frame is not JSON, not a stream K2 reads, or a payload with
            fields missing or invalid.
    """
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessageError(Reason.INVALID_JSON, str(exc)) from None
    if not isinstance(message, dict):
        raise MalformedMessageError(Reason.UNKNOWN_EVENT, f"a JSON {type(message).__name__}, not an object")
    if "stream" in message and "data" in message:
        return _combined(message["stream"], message["data"], received_us)
    return _raw(message, received_us)


def _combined(stream: object, data: object, received_us: int) -> MarketMessage:
    if not isinstance(stream, str) or "@" not in stream:
        raise MalformedMessageError(Reason.UNKNOWN_STREAM, f"stream name {stream!r}")
    if not isinstance(data, dict):
        raise MalformedMessageError(Reason.MISSING_FIELD, f"{stream}: data is not an object")
    stream_symbol, _, suffix = stream.partition("@")
    if suffix == "trade":
        message = trade_message(data, received_us)
    elif suffix == "bookTicker":
        message = quote_message(data, received_us)
    else:
        raise MalformedMessageError(Reason.UNKNOWN_STREAM, f"stream {stream!r} is not a trade or bookTicker")
    if message.symbol.lower() != stream_symbol:
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{stream} carries symbol {message.symbol!r}")
    return message


def _raw(payload: dict[str, Any], received_us: int) -> MarketMessage | ControlMessage:
    event = payload.get("e")
    if event == "trade":
        return trade_message(payload, received_us)
    if event is None and "u" in payload and "b" in payload:
        return quote_message(payload, received_us)
    if event == "serverShutdown":
        return ControlMessage("serverShutdown")
    if event is None and "id" in payload and ("result" in payload or "error" in payload):
        return ControlMessage("response")
    raise MalformedMessageError(Reason.UNKNOWN_EVENT, f"event {event!r} with keys {sorted(payload)[:8]}")


def trade_message(payload: Mapping[str, Any], received_us: int) -> MarketMessage:
    """A ``trade`` payload as a :class:`MarketMessage`.

    Raises:
        MalformedMessageError: a field is missing or invalid.
    """
    if payload.get("e") != "trade":
        raise MalformedMessageError(Reason.UNKNOWN_EVENT, f"event {payload.get('e')!r} is not 'trade'")
    symbol = _symbol(payload, "s")
    return MarketMessage(
        StreamKind.TRADE,
        symbol,
        _int(payload, "t"),
        _time(payload, "E"),
        _time(payload, "T"),
        received_us,
        (_decimal(payload, "p"), _decimal(payload, "q")),
        _bool(payload, "m"),
    )


def quote_message(payload: Mapping[str, Any], received_us: int) -> MarketMessage:
    """A ``bookTicker`` payload as a :class:`MarketMessage`; stamped with ``received_us`` unless it
    carries an event time ``E`` (the futures form does).

    Raises:
        MalformedMessageError: a field is missing or invalid.
    """
    symbol = _symbol(payload, "s")
    event_ms = _time(payload, "E") if "E" in payload else None
    decimals = (
        _decimal(payload, "b"),
        _decimal(payload, "B"),
        _decimal(payload, "a"),
        _decimal(payload, "A"),
    )
    return MarketMessage(
        StreamKind.QUOTE, symbol, _int(payload, "u"), event_ms, event_ms, received_us, decimals
    )


def rest_trade_message(symbol: str, item: Mapping[str, Any], received_us: int) -> MarketMessage:
    """One entry of ``GET /api/v3/trades`` (``id, price, qty, time, isBuyerMaker``) for ``symbol``.

    Raises:
        MalformedMessageError: a field is missing or invalid.
    """
    symbol = symbol.upper()
    quote_currency(symbol)
    return MarketMessage(
        StreamKind.TRADE,
        symbol,
        _int(item, "id"),
        None,
        _time(item, "time"),
        received_us,
        (_decimal(item, "price"), _decimal(item, "qty")),
        _bool(item, "isBuyerMaker"),
        "rest_backfill",
    )


def to_table(kind: StreamKind, messages: Sequence[MarketMessage]) -> pa.Table:
    """Messages of one kind as an Arrow table of v2 trades or quotes, built a column at a time.

    Rows carry exchange ``BINANCE``, asset class ``crypto`` and the pair's quote asset as
    currency; ``trade_id``/``quote_id`` is ``BINANCE-<symbol>-<id>`` and ``source_sequence`` the
    venue id. A trade's side is the taker's (``SELL`` when the buyer was the maker); a quote
    side priced zero is empty (null price, size kept).
    """
    n = len(messages)
    symbols = [m.symbol for m in messages]
    sequences = [m.sequence for m in messages]
    venue_ids = [f"{EXCHANGE}-{m.symbol}-{m.sequence}" for m in messages]
    key_prefix = natural_key(EXCHANGE, kind.value, "")  # natural_key(EXCHANGE, kind, venue id), joined once
    columns: dict[str, pa.Array] = {
        "message_id": message_ids([key_prefix + v for v in venue_ids]),
        f"{kind.value}_id": pa.array(venue_ids, pa.string()),
        "symbol": pa.array(symbols, pa.string()),
        "exchange": pa.array([EXCHANGE] * n, pa.string()),
        "asset_class": pa.array([AssetClass.CRYPTO.value] * n, pa.string()),
        "timestamp": _timestamps(
            [m.received_us if m.time_ms is None else m.time_ms * 1000 for m in messages]
        ),
        "currency": pa.array([quote_currency(s) for s in symbols], pa.string()),
        "source_sequence": pa.array(sequences, pa.int64()),
        "ingestion_timestamp": _timestamps([m.received_us for m in messages]),
        "platform_sequence": pa.nulls(n, pa.int64()),
    }
    if kind is StreamKind.TRADE:
        columns["price"] = _decimals(messages, 0)
        columns["quantity"] = _decimals(messages, 1)
        columns["side"] = pa.array([_SELL if m.buyer_is_maker else _BUY for m in messages], pa.string())
        no_conditions = pa.array(np.zeros(n + 1, dtype=np.int32))
        columns["trade_conditions"] = pa.ListArray.from_arrays(no_conditions, pa.array([], pa.string()))
        columns["vendor_data"] = _trade_vendor_data(messages)
    else:
        columns["bid_price"] = _priced(_decimals(messages, 0))
        columns["bid_quantity"] = _decimals(messages, 1)
        columns["ask_price"] = _priced(_decimals(messages, 2))
        columns["ask_quantity"] = _decimals(messages, 3)
        sources = ["receive" if m.time_ms is None else "event" for m in messages]
        columns["vendor_data"] = _string_map(
            np.arange(n + 1, dtype=np.int32), ["timestamp_source"] * n, sources
        )
    schema = _schema(kind)
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


@cache
def _schema(kind: StreamKind) -> pa.Schema:
    return (TRADE if kind is StreamKind.TRADE else QUOTE).arrow_schema()


def _timestamps(micros: list[int]) -> pa.Array:
    return pa.array(micros, pa.int64()).cast(_TIMESTAMP)


def _decimals(messages: Sequence[MarketMessage], position: int) -> pa.Array:
    """The ``position``-th decimal string of each message, as decimal(18,8) (checked on parsing)."""
    return pa.array([m.decimals[position] for m in messages], pa.string()).cast(_DECIMAL_TYPE)


def _priced(prices: pa.Array) -> pa.Array:
    """Prices with zero (no order on that side of the book) as null."""
    return pc.if_else(pc.equal(prices, _ZERO_PRICE), pa.scalar(None, _DECIMAL_TYPE), prices)


def _trade_vendor_data(messages: Sequence[MarketMessage]) -> pa.Array:
    """``{"source": ..., "event_time_ms": ...}`` of each trade (no event time: the source alone)."""
    counts = np.empty(len(messages), dtype=np.int32)
    keys: list[str] = []
    items: list[str] = []
    for i, m in enumerate(messages):
        keys.append("source")
        items.append(m.source)
        if m.event_time_ms is None:
            counts[i] = 1
        else:
            keys.append("event_time_ms")
            items.append(str(m.event_time_ms))
            counts[i] = 2
    offsets = np.zeros(len(messages) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return _string_map(offsets, keys, items)


def _string_map(offsets: np.ndarray, keys: list[str], items: list[str]) -> pa.Array:
    """A string-to-string map column: row ``i`` holds the pairs ``offsets[i]:offsets[i + 1]``."""
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(keys, pa.string()), pa.array(items, pa.string()), type=_VENDOR_DATA
    )


def _field(payload: Mapping[str, Any], key: str) -> Any:
    try:
        return payload[key]
    except KeyError:
        raise MalformedMessageError(Reason.MISSING_FIELD, f"no {key!r}") from None


def _symbol(payload: Mapping[str, Any], key: str) -> str:
    value = _field(payload, key)
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value!r} is not a symbol")
    symbol = value.upper()
    quote_currency(symbol)
    return symbol


def _int(payload: Mapping[str, Any], key: str) -> int:
    value = _field(payload, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value!r} is not a non-negative integer")
    return value


def _bool(payload: Mapping[str, Any], key: str) -> bool:
    value = _field(payload, key)
    if not isinstance(value, bool):
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value!r} is not a boolean")
    return value


def _time(payload: Mapping[str, Any], key: str) -> int:
    """A millisecond time, checked to be one."""
    value = _int(payload, key)
    if value >= _MAX_MS:
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value} is not a millisecond time")
    return value


def _decimal(payload: Mapping[str, Any], key: str) -> str:
    """A decimal string that fits decimal(18,8) exactly: at most 10 integer digits, and nothing
    but zeros past the 8th decimal place; no sign, exponent or spaces (Binance sends none).
    """
    value = _field(payload, key)
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        raise MalformedMessageError(
            Reason.INVALID_FIELD, f"{key}={value!r} is not a non-negative decimal that fits decimal(18,8)"
        )
    return value
