"""Kafka transport, in one place: librdkafka and schema-registry client settings built from
:class:`~k2.settings.KafkaSettings` (security included), topic names and administration, K2's
records in Confluent's Avro wire format (:mod:`k2.kafka.avro`), the schema-registry client, the
one dead-letter writer and its headers, and reads of partitions up to their high watermarks.

K2's Kafka users build on these: the market producer and the live feed (:mod:`k2.ingest`), the
Iceberg sink and the live tail (:mod:`k2.stream`).
"""
