"""The vocabulary of market data records: asset classes, trade sides, and the decimal type of
prices and quantities (``decimal(18, 8)``). The records themselves are declared once, in
:mod:`k2.schemas.market`, and move through K2 as Arrow batches.
"""

from __future__ import annotations

from enum import StrEnum

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
