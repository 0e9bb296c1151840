"""Kafka → lake: the sink that consumes market data topics and commits them to Iceberg.

It is exactly-once into Iceberg: the Kafka offsets a commit covers are written in the same
Iceberg snapshot as the rows (:mod:`k2.stream.checkpoint`), and a restarted sink resumes from
the offsets in the tables, whatever the consumer group says.
"""
