"""Trades and quotes as single typed records (v2 field names).

Bulk paths move Arrow batches, not these objects; these serve single-record producers, tests and
examples, and state the rules every record obeys: UTC-aware times, decimal prices within
decimal(18,8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from k2.errors import InvalidInputError

PRICE_PRECISION = 18
PRICE_SCALE = 8


class AssetClass(StrEnum):
    """What kind of instrument a record is about."""

    EQUITIES = "equities"
    CRYPTO = "crypto"
    FUTURES = "futures"
    OPTIONS = "options"


class TradeSide(StrEnum):
    """The aggressor side of a trade, where the venue tells it."""

    BUY = "BUY"
    SELL = "SELL"
    SELL_SHORT = "SELL_SHORT"
    UNKNOWN = "UNKNOWN"


def check_decimal(name: str, value: Decimal | None) -> None:
    """Raise unless ``value`` is a finite, non-negative decimal that fits decimal(18,8).

    Raises:
        InvalidInputError: when it does not fit.
    """
    if value is None:
        return
    if not value.is_finite() or value < 0:
        raise InvalidInputError(f"{name} must be a finite non-negative decimal, got {value}")
    exponent = value.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and -exponent > PRICE_SCALE
        and value != value.quantize(Decimal(1).scaleb(-PRICE_SCALE))
    ):
        raise InvalidInputError(f"{name} has more than {PRICE_SCALE} decimal places: {value}")
    if value >= Decimal(10) ** (PRICE_PRECISION - PRICE_SCALE):
        raise InvalidInputError(f"{name} does not fit decimal(18,8): {value}")


def check_utc(name: str, value: datetime) -> None:
    """Raise unless ``value`` is timezone-aware with a zero UTC offset.

    Raises:
        InvalidInputError: for naive or non-UTC datetimes.
    """
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise InvalidInputError(f"{name} must be a UTC-aware datetime, got {value!r}")


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade print."""

    message_id: str
    trade_id: str
    symbol: str
    exchange: str
    asset_class: AssetClass
    timestamp: datetime
    price: Decimal
    quantity: Decimal
    currency: str
    ingestion_timestamp: datetime
    side: TradeSide = TradeSide.UNKNOWN
    trade_conditions: tuple[str, ...] = ()
    source_sequence: int | None = None
    platform_sequence: int | None = None
    vendor_data: dict[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        check_utc("timestamp", self.timestamp)
        check_utc("ingestion_timestamp", self.ingestion_timestamp)
        check_decimal("price", self.price)
        check_decimal("quantity", self.quantity)


@dataclass(frozen=True, slots=True)
class Quote:
    """One top-of-book update; a side without a price is ``None``."""

    message_id: str
    quote_id: str
    symbol: str
    exchange: str
    asset_class: AssetClass
    timestamp: datetime
    bid_price: Decimal | None
    bid_quantity: Decimal
    ask_price: Decimal | None
    ask_quantity: Decimal
    currency: str
    ingestion_timestamp: datetime
    source_sequence: int | None = None
    platform_sequence: int | None = None
    vendor_data: dict[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        check_utc("timestamp", self.timestamp)
        check_utc("ingestion_timestamp", self.ingestion_timestamp)
        for name in ("bid_price", "bid_quantity", "ask_price", "ask_quantity"):
            check_decimal(name, getattr(self, name))
