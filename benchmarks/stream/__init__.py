"""Streaming benchmarks on the platform: producing to Kafka, the Kafka → Iceberg sink, and
freshness (produce → visible), beside librdkafka.
"""
