"""REST API benchmarks: `k2 serve` in a process of its own, asked by one client and by eight,
beside DuckDB; exports and where a request's time goes.
"""
