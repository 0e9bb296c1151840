"""Outside world into the lake and Kafka: sources (ASX files, synthetic market, v2 files), the
loader, the Kafka producer, and live venues (:mod:`k2.ingest.live`).
"""
