"""Ingest benchmarks: CSV into the lake (the ASX sample, a synthetic 10M + 10M), each load in a
child process of its own, beside plain pyarrow; and where a load's time goes.
"""
