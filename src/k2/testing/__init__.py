"""Helpers shared by tests, notebooks and demos: row factories and embedded lakes."""

from k2.testing.factories import make_trade_rows, trade_row
from k2.testing.lakes import EmbeddedLake

__all__ = ["EmbeddedLake", "make_trade_rows", "trade_row"]
