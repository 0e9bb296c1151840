"""Query benchmarks in process: pages of ticks and 1-minute bars over the 10M-trade lake, beside
DuckDB over the table's files.
"""
