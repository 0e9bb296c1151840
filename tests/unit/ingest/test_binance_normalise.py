"""Binance trade and bookTicker payloads become v2 rows: fields, side, currency, exact decimals,
and a specific error for anything unreadable."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k2.domain.identity import message_id
from k2.ingest.live.binance.protocol import (
    ControlMessage,
    MalformedMessageError,
    MarketMessage,
    Reason,
    StreamKind,
    combined_stream_url,
    parse_frame,
    quote_currency,
    rest_trade_message,
    to_table,
)
from k2.schemas.market import QUOTE, TRADE

RECEIVED_AT = datetime(2024, 6, 1, 0, 0, 0, 123456, tzinfo=UTC)
RECEIVED = 1_717_200_000_123_456  # RECEIVED_AT in µs since the epoch


def _trade(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "e": "trade",
        "E": 1717200000123,
        "s": "BTCUSDT",
        "t": 3601234567,
        "p": "67321.12345678",
        "q": "0.00012000",
        "T": 1717200000120,
        "m": True,
        "M": True,
    }
    payload.update(overrides)
    return payload


def _book(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "u": 400900217,
        "s": "BNBUSDT",
        "b": "25.35190000",
        "B": "31.21000000",
        "a": "25.36520000",
        "A": "40.66000000",
    }
    payload.update(overrides)
    return payload


def _combined(stream: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def _message(frame: bytes) -> MarketMessage:
    message = parse_frame(frame, RECEIVED)
    assert isinstance(message, MarketMessage)
    return message


def _row(message: MarketMessage) -> dict[str, Any]:
    """The v2 row :func:`to_table` makes of one message, maps as dicts."""
    table = to_table(message.kind, [message])
    assert table.schema == (TRADE if message.kind is StreamKind.TRADE else QUOTE).arrow_schema()
    row: dict[str, Any] = table.to_pylist()[0]
    row["vendor_data"] = dict(row["vendor_data"])
    return row


def test_trade_fields_map_to_the_v2_trade() -> None:
    """A combined-stream trade becomes a v2 trade with venue ids, trade time and receive time."""
    message = _message(_combined("btcusdt@trade", _trade()))
    row = _row(message)
    assert message.kind is StreamKind.TRADE
    assert (message.symbol, message.sequence, message.event_time_ms) == ("BTCUSDT", 3601234567, 1717200000123)
    assert row["trade_id"] == "BINANCE-BTCUSDT-3601234567"
    assert row["message_id"] == message_id("BINANCE", "trade", "BINANCE-BTCUSDT-3601234567")
    assert (row["exchange"], row["asset_class"], row["currency"]) == ("BINANCE", "crypto", "USDT")
    assert row["timestamp"] == datetime(2024, 6, 1, 0, 0, 0, 120000, tzinfo=UTC)
    assert row["ingestion_timestamp"] == RECEIVED_AT
    assert row["source_sequence"] == 3601234567
    assert row["trade_conditions"] == []
    assert row["vendor_data"] == {"source": "stream", "event_time_ms": "1717200000123"}
    assert set(row) == set(TRADE.names)


@pytest.mark.parametrize(("buyer_is_maker", "side"), [(True, "SELL"), (False, "BUY")])
def test_taker_side_follows_the_buyer_is_maker_flag(buyer_is_maker: bool, side: str) -> None:
    """The buyer being the maker means the taker sold."""
    assert _row(_message(_combined("btcusdt@trade", _trade(m=buyer_is_maker))))["side"] == side


def test_prices_and_sizes_are_exact_decimals() -> None:
    """Decimal strings are read exactly, with all eight places (and trailing zeros past them)."""
    row = _row(_message(_combined("btcusdt@trade", _trade(p="0.10000001", q="12345678.876543210000"))))
    assert row["price"] == Decimal("0.10000001")
    assert row["quantity"] == Decimal("12345678.87654321")
    row = _row(_message(_combined("btcusdt@trade", _trade(p="9999999999.99999999", q="0"))))
    assert (row["price"], row["quantity"]) == (Decimal("9999999999.99999999"), 0)


@pytest.mark.parametrize(
    ("symbol", "currency"),
    [
        ("BTCUSDT", "USDT"),
        ("ETHBTC", "BTC"),
        ("BNBETH", "ETH"),
        ("SOLFDUSD", "FDUSD"),
        ("BTCUSDC", "USDC"),
        ("ETHEUR", "EUR"),
        ("DOGETRY", "TRY"),
    ],
)
def test_quote_currency_is_the_pair_suffix(symbol: str, currency: str) -> None:
    """The longest known quote asset the pair ends in is its currency."""
    assert quote_currency(symbol) == currency


def test_unknown_quote_asset_is_refused() -> None:
    """A pair with no known quote asset (or nothing before it) cannot be priced."""
    for symbol in ("BTCXYZ", "USDT"):
        with pytest.raises(MalformedMessageError) as caught:
            quote_currency(symbol)
        assert caught.value.reason is Reason.UNKNOWN_PAIR


def test_book_ticker_maps_to_the_v2_quote_stamped_on_receipt() -> None:
    """A spot bookTicker has no event time: the quote's timestamp is the receive time."""
    message = _message(_combined("bnbusdt@bookTicker", _book()))
    row = _row(message)
    assert message.kind is StreamKind.QUOTE
    assert (message.sequence, message.event_time_ms) == (400900217, None)
    assert row["quote_id"] == "BINANCE-BNBUSDT-400900217"
    assert row["message_id"] == message_id("BINANCE", "quote", "BINANCE-BNBUSDT-400900217")
    assert row["bid_price"] == Decimal("25.35190000")
    assert row["bid_quantity"] == Decimal("31.21")
    assert row["ask_price"] == Decimal("25.3652")
    assert row["ask_quantity"] == Decimal("40.66")
    assert row["timestamp"] == row["ingestion_timestamp"] == RECEIVED_AT
    assert row["source_sequence"] == 400900217
    assert row["vendor_data"] == {"timestamp_source": "receive"}
    assert set(row) == set(QUOTE.names)


def test_book_ticker_with_an_event_time_uses_it() -> None:
    """Where a bookTicker carries ``E`` (the futures form), that is its timestamp."""
    row = _row(_message(_combined("bnbusdt@bookTicker", _book(E=1717200000500))))
    assert row["timestamp"] == datetime(2024, 6, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert row["vendor_data"] == {"timestamp_source": "event"}


def test_an_empty_book_side_has_no_price() -> None:
    """A zero price means no order on that side: the price is null, the size kept."""
    row = _row(_message(_combined("bnbusdt@bookTicker", _book(b="0.00000000", B="0.00000000"))))
    assert row["bid_price"] is None
    assert row["bid_quantity"] == Decimal(0)


def test_raw_stream_payloads_are_read_too() -> None:
    """Raw ``/ws/<stream>`` payloads come unwrapped; the event type tells them apart."""
    assert _message(orjson.dumps(_trade())).kind is StreamKind.TRADE
    assert _message(orjson.dumps(_book())).kind is StreamKind.QUOTE


def test_control_messages_are_not_market_data() -> None:
    """``serverShutdown`` and request answers are recognised, not dead-lettered."""
    shutdown = parse_frame(orjson.dumps({"e": "serverShutdown", "E": 1717200000000}), RECEIVED)
    assert shutdown == ControlMessage("serverShutdown")
    assert parse_frame(b'{"result":null,"id":1}', RECEIVED) == ControlMessage("response")


def test_rest_trade_has_the_same_identity_as_the_streamed_one() -> None:
    """A trade backfilled through ``/api/v3/trades`` gets the stream's message id and fields."""
    streamed = _row(_message(_combined("btcusdt@trade", _trade())))
    item = {
        "id": 3601234567,
        "price": "67321.12345678",
        "qty": "0.00012000",
        "quoteQty": "8.07853481",
        "time": 1717200000120,
        "isBuyerMaker": True,
        "isBestMatch": True,
    }
    rest = _row(rest_trade_message("BTCUSDT", item, RECEIVED))
    for name in ("message_id", "trade_id", "timestamp", "price", "quantity", "side", "currency"):
        assert rest[name] == streamed[name], name
    assert rest["vendor_data"] == {"source": "rest_backfill"}


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**62),
            st.decimals(min_value=0, max_value=Decimal("9999999999.99999999"), places=8),
            st.booleans(),
            st.sampled_from(["BTCUSDT", "ETHBTC", "BNBFDUSD"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_batch_gives_each_message_its_own_row(trades: list[tuple[int, Decimal, bool, str]]) -> None:
    """Built a column at a time, every row still has its own message's id, values and side."""
    payloads = [
        (symbol, _trade(s=symbol, t=trade_id, p=f"{price:f}", q=f"{price:f}", m=maker))
        for trade_id, price, maker, symbol in trades
    ]
    messages = [_message(_combined(f"{symbol.lower()}@trade", payload)) for symbol, payload in payloads]
    rows = to_table(StreamKind.TRADE, messages).to_pylist()
    for (trade_id, price, maker, symbol), row in zip(trades, rows, strict=True):
        venue_id = f"BINANCE-{symbol}-{trade_id}"
        assert row["message_id"] == message_id("BINANCE", "trade", venue_id)
        assert (row["trade_id"], row["symbol"], row["source_sequence"]) == (venue_id, symbol, trade_id)
        assert row["price"] == row["quantity"] == price
        assert row["side"] == ("SELL" if maker else "BUY")
        assert row["currency"] == quote_currency(symbol)


def test_combined_stream_url_names_every_stream() -> None:
    """The URL subscribes each symbol's trade and bookTicker streams, lower case."""
    assert combined_stream_url("wss://stream.binance.com:9443/", ["BTCUSDT", "ETHUSDT"]) == (
        "wss://stream.binance.com:9443/stream?streams="
        "btcusdt@trade/btcusdt@bookTicker/ethusdt@trade/ethusdt@bookTicker"
    )


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"{not json", Reason.INVALID_JSON),
        (b"[1, 2]", Reason.UNKNOWN_EVENT),
        (orjson.dumps({"e": "kline", "E": 1, "s": "BTCUSDT"}), Reason.UNKNOWN_EVENT),
        (_combined("btcusdt@kline_1m", {"e": "kline"}), Reason.UNKNOWN_STREAM),
        (orjson.dumps({"stream": 7, "data": {}}), Reason.UNKNOWN_STREAM),
        (orjson.dumps({"stream": "btcusdt@trade", "data": "x"}), Reason.MISSING_FIELD),
        (_combined("btcusdt@trade", {k: v for k, v in _trade().items() if k != "p"}), Reason.MISSING_FIELD),
        (_combined("btcusdt@trade", _trade(p="abc")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p=67321.5)), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p="-1")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p="NaN")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(q="0.000000001")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p="12345678901.5")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p="1e5")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p="+1")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p=" 1")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(p="1.")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(q="")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(q="1.000000001")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(t="12")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(t=True)), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(m="true")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(T=1717200000120000)), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(s="ETHUSDT")), Reason.INVALID_FIELD),
        (_combined("btcusdt@trade", _trade(s="BTC/USDT")), Reason.INVALID_FIELD),
        (_combined("btcxyz@trade", _trade(s="BTCXYZ")), Reason.UNKNOWN_PAIR),
        (
            _combined("bnbusdt@bookTicker", {k: v for k, v in _book().items() if k != "A"}),
            Reason.MISSING_FIELD,
        ),
        (_combined("bnbusdt@bookTicker", _book(u=-5)), Reason.INVALID_FIELD),
    ],
)
def test_malformed_payloads_raise_with_a_reason(frame: bytes, reason: Reason) -> None:
    """Every kind of unreadable frame raises :class:`MalformedMessageError` with its reason."""
    with pytest.raises(MalformedMessageError) as caught:
        parse_frame(frame, RECEIVED)
    assert caught.value.reason is reason
    assert str(caught.value).startswith(reason.value)
