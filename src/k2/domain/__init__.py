"""Market-data types shared by every stage; pure, no I/O."""

from k2.domain.bars import Interval
from k2.domain.events import AssetClass, Quote, Trade, TradeSide
from k2.domain.identity import message_id
from k2.domain.venues import Venue, venue

__all__ = ["AssetClass", "Interval", "Quote", "Trade", "TradeSide", "Venue", "message_id", "venue"]
