from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from k2.domain.events import AssetClass, Trade
from k2.errors import InvalidInputError

NOW = datetime(2024, 1, 1, tzinfo=UTC)


BASE = Trade(
    message_id="m",
    trade_id="t",
    symbol="BHP",
    exchange="ASX",
    asset_class=AssetClass.EQUITIES,
    timestamp=NOW,
    price=Decimal("36.667"),
    quantity=Decimal(100),
    currency="AUD",
    ingestion_timestamp=NOW,
)


def test_eight_decimal_places_fit() -> None:
    """Sub-cent crypto prices with eight decimals are accepted (the reference lost them)."""
    assert replace(BASE, price=Decimal("0.00000001")).price == Decimal("0.00000001")


@pytest.mark.parametrize("price", [Decimal("0.000000001"), Decimal(-1), Decimal("1e10"), Decimal("NaN")])
def test_prices_outside_decimal_18_8_are_rejected(price: Decimal) -> None:
    """Prices that decimal(18,8) cannot hold exactly are refused, not rounded."""
    with pytest.raises(InvalidInputError):
        replace(BASE, price=price)


def test_naive_timestamps_are_rejected() -> None:
    """A naive datetime has no defined instant and is refused."""
    with pytest.raises(InvalidInputError, match="UTC-aware"):
        replace(BASE, timestamp=datetime(2024, 1, 1))
