"""The Iceberg lake: catalog, table declarations, writes and maintenance."""

from k2.lake.catalog import open_catalog
from k2.lake.tables import MARKET_TABLES, QUOTES, TABLES, TRADES, TableSpec, load_table, table_spec
from k2.lake.writer import AppendResult, LakeWriter

__all__ = [
    "MARKET_TABLES",
    "QUOTES",
    "TABLES",
    "TRADES",
    "AppendResult",
    "LakeWriter",
    "TableSpec",
    "load_table",
    "open_catalog",
    "table_spec",
]
