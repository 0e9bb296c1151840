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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import Any

import orjson
import pyarrow as pa

from k2.domain.events import AssetClass, TradeSide, check_decimal
from k2.domain.identity import message_id
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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Times beyond this (ms since the epoch; 2100-01-01) are not Binance's millisecond clock.
_MAX_MS = 4_102_444_800_000
_ZERO = Decimal(0)


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


@dataclass(frozen=True, slots=True)
class MarketMessage:
    """One trade or book-ticker update as a v2 row.

    Attributes:
        kind: trade or quote.
        symbol: the pair, upper case.
        sequence: the trade id (trades) or order book update id (quotes).
        event_time_ms: Binance's event time, when the payload has one.
        row: the v2 row, as :func:`trade_row` or :func:`quote_row` builds it.
    """

    kind: StreamKind
    symbol: str
    sequence: int
    event_time_ms: int | None
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A message that is not market data: ``serverShutdown``, or the answer to a request."""

    event: str


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


def parse_frame(frame: str | bytes, received: datetime) -> MarketMessage | ControlMessage:
    """Read one WebSocket text frame, combined (``{"stream", "data"}``) or raw.

    Args:
        frame: the frame as received.
        received: when it was received, UTC; the quote's timestamp and every row's
            ``ingestion_timestamp``.

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
        return _combined(message["stream"], message["data"], received)
    return _raw(message, received)


def _combined(stream: object, data: object, received: datetime) -> MarketMessage:
    if not isinstance(stream, str) or "@" not in stream:
        raise MalformedMessageError(Reason.UNKNOWN_STREAM, f"stream name {stream!r}")
    if not isinstance(data, dict):
        raise MalformedMessageError(Reason.MISSING_FIELD, f"{stream}: data is not an object")
    stream_symbol, _, suffix = stream.partition("@")
    if suffix == "trade":
        message = trade_message(data, received)
    elif suffix == "bookTicker":
        message = quote_message(data, received)
    else:
        raise MalformedMessageError(Reason.UNKNOWN_STREAM, f"stream {stream!r} is not a trade or bookTicker")
    if message.symbol.lower() != stream_symbol:
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{stream} carries symbol {message.symbol!r}")
    return message


def _raw(payload: dict[str, Any], received: datetime) -> MarketMessage | ControlMessage:
    event = payload.get("e")
    if event == "trade":
        return trade_message(payload, received)
    if event is None and "u" in payload and "b" in payload:
        return quote_message(payload, received)
    if event == "serverShutdown":
        return ControlMessage("serverShutdown")
    if event is None and "id" in payload and ("result" in payload or "error" in payload):
        return ControlMessage("response")
    raise MalformedMessageError(Reason.UNKNOWN_EVENT, f"event {event!r} with keys {sorted(payload)[:8]}")


def trade_message(payload: Mapping[str, Any], received: datetime) -> MarketMessage:
    """A ``trade`` payload as a :class:`MarketMessage`.

    Raises:
        MalformedMessageError: a field is missing or invalid.
    """
    if payload.get("e") != "trade":
        raise MalformedMessageError(Reason.UNKNOWN_EVENT, f"event {payload.get('e')!r} is not 'trade'")
    symbol = _symbol(payload, "s")
    trade_id = _int(payload, "t")
    _time(payload, "E")
    event_ms: int = payload["E"]
    row = trade_row(
        symbol,
        trade_id,
        price=_decimal(payload, "p"),
        quantity=_decimal(payload, "q"),
        trade_time=_time(payload, "T"),
        buyer_is_maker=_bool(payload, "m"),
        received=received,
        vendor_data={"source": "stream", "event_time_ms": str(event_ms)},
    )
    return MarketMessage(StreamKind.TRADE, symbol, trade_id, event_ms, row)


def quote_message(payload: Mapping[str, Any], received: datetime) -> MarketMessage:
    """A ``bookTicker`` payload as a :class:`MarketMessage`; stamped with ``received`` unless it
    carries an event time ``E`` (the futures form does).

    Raises:
        MalformedMessageError: a field is missing or invalid.
    """
    symbol = _symbol(payload, "s")
    update_id = _int(payload, "u")
    event_ms = _int(payload, "E") if "E" in payload else None
    timestamp = _time(payload, "E") if event_ms is not None else received
    bid, ask = _decimal(payload, "b"), _decimal(payload, "a")
    quote_id = f"{EXCHANGE}-{symbol}-{update_id}"
    row = {
        "message_id": message_id(EXCHANGE, "quote", quote_id),
        "quote_id": quote_id,
        "symbol": symbol,
        "exchange": EXCHANGE,
        "asset_class": AssetClass.CRYPTO.value,
        "timestamp": timestamp,
        "bid_price": bid if bid != _ZERO else None,
        "bid_quantity": _decimal(payload, "B"),
        "ask_price": ask if ask != _ZERO else None,
        "ask_quantity": _decimal(payload, "A"),
        "currency": quote_currency(symbol),
        "source_sequence": update_id,
        "ingestion_timestamp": received,
        "platform_sequence": None,
        "vendor_data": {"timestamp_source": "event" if event_ms is not None else "receive"},
    }
    return MarketMessage(StreamKind.QUOTE, symbol, update_id, event_ms, row)


def rest_trade_message(symbol: str, item: Mapping[str, Any], received: datetime) -> MarketMessage:
    """One entry of ``GET /api/v3/trades`` (``id, price, qty, time, isBuyerMaker``) for ``symbol``.

    Raises:
        MalformedMessageError: a field is missing or invalid.
    """
    trade_id = _int(item, "id")
    row = trade_row(
        symbol.upper(),
        trade_id,
        price=_decimal(item, "price"),
        quantity=_decimal(item, "qty"),
        trade_time=_time(item, "time"),
        buyer_is_maker=_bool(item, "isBuyerMaker"),
        received=received,
        vendor_data={"source": "rest_backfill"},
    )
    return MarketMessage(StreamKind.TRADE, symbol.upper(), trade_id, None, row)


def trade_row(
    symbol: str,
    trade_id: int,
    *,
    price: Decimal,
    quantity: Decimal,
    trade_time: datetime,
    buyer_is_maker: bool,
    received: datetime,
    vendor_data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The v2 trade row of one Binance trade; the taker sold when the buyer was the maker.

    Raises:
        MalformedMessageError: the pair has no known quote asset.
    """
    venue_id = f"{EXCHANGE}-{symbol}-{trade_id}"
    return {
        "message_id": message_id(EXCHANGE, "trade", venue_id),
        "trade_id": venue_id,
        "symbol": symbol,
        "exchange": EXCHANGE,
        "asset_class": AssetClass.CRYPTO.value,
        "timestamp": trade_time,
        "price": price,
        "quantity": quantity,
        "currency": quote_currency(symbol),
        "side": (TradeSide.SELL if buyer_is_maker else TradeSide.BUY).value,
        "trade_conditions": [],
        "source_sequence": trade_id,
        "ingestion_timestamp": received,
        "platform_sequence": None,
        "vendor_data": vendor_data,
    }


def to_table(kind: StreamKind, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of one kind as an Arrow table in the v2 trades or quotes schema."""
    return pa.Table.from_pylist(rows, schema=_schema(kind))


@cache
def _schema(kind: StreamKind) -> pa.Schema:
    return (TRADE if kind is StreamKind.TRADE else QUOTE).arrow_schema()


def ms_to_datetime(ms: int) -> datetime:
    """A Binance millisecond timestamp as a UTC datetime, exactly."""
    return _EPOCH + timedelta(milliseconds=ms)


def _field(payload: Mapping[str, Any], key: str) -> Any:
    try:
        return payload[key]
    except KeyError:
        raise MalformedMessageError(Reason.MISSING_FIELD, f"no {key!r}") from None


def _symbol(payload: Mapping[str, Any], key: str) -> str:
    value = _field(payload, key)
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value!r} is not a symbol")
    return value.upper()


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


def _time(payload: Mapping[str, Any], key: str) -> datetime:
    value = _int(payload, key)
    if value >= _MAX_MS:
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value} is not a millisecond time")
    return ms_to_datetime(value)


def _decimal(payload: Mapping[str, Any], key: str) -> Decimal:
    value = _field(payload, key)
    if not isinstance(value, str):
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value!r} is not a decimal string")
    try:
        number = Decimal(value)
        check_decimal(key, number)
    except InvalidOperation:
        raise MalformedMessageError(Reason.INVALID_FIELD, f"{key}={value!r} is not a decimal") from None
    except InvalidInputError as exc:
        raise MalformedMessageError(Reason.INVALID_FIELD, str(exc)) from None
    return number
