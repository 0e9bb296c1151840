"""K2: a market data lakehouse — exchange ticks into Apache Iceberg, queried with DuckDB."""

from importlib.metadata import version

__version__ = version("k2")
__all__ = ["__version__"]
