"""Market-data types shared by every stage; pure, no I/O."""

from k2.domain.bars import Interval
from k2.domain.events import AssetClass, TradeSide
from k2.domain.identity import message_id
from k2.domain.venues import Venue, venue

__all__ = ["AssetClass", "Interval", "TradeSide", "Venue", "message_id", "venue"]
