"""Helpers for tests, benchmarks and notebooks: row factories and embedded lakes. K2 itself
(``src/``) never imports this package (an import-linter contract holds it).
"""

from k2.testing.factories import make_quote_rows, make_trade_rows, quote_row, trade_row
from k2.testing.lakes import EmbeddedLake

__all__ = ["EmbeddedLake", "make_quote_rows", "make_trade_rows", "quote_row", "trade_row"]
