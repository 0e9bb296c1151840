"""The scale benchmark: 1M, 10M and 100M trades through the embedded and the platform paths, the
cost curve, query latency at concurrency 1 and 8, and where one machine stops.
"""
