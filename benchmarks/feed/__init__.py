"""Live-feed benchmarks on the platform: a local Binance-protocol server's frames through K2's feed
into Kafka, throughput and latency, beside a plain websocket + librdkafka loop.
"""
