"""The real services K2 runs on when it outgrows the embedded lake, started without Docker.

``k2 platform up`` installs what is missing and starts, on loopback: PostgreSQL (the Iceberg
catalog), MinIO (the S3 warehouse), Apache Kafka in KRaft mode, the schema registry, and
Prometheus with Alertmanager, which scrape and watch all of them and every K2 process. Each
service is one module here; :mod:`k2.platform.process` runs their processes and
:mod:`k2.platform.service` is what they have in common.
"""
