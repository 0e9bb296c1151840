"""K2's Prometheus metrics, declared once against a registry the caller passes in.

Every family K2 exports is here, grouped by the stage that feeds it; ``docs/operations/metrics.md``
lists them with their labels, and the names earlier releases used. Labels are low-cardinality:
route templates (never raw paths), table, topic, exchange, partition number, dependency, reason.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    gc_collector,
    platform_collector,
    process_collector,
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_WRITE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_FEED_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SIZE_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)

#: Circuit breaker states as ``k2_circuit_breaker_state`` reports them.
BREAKER_STATES = {"closed": 0, "open": 1, "half_open": 2}


def process_registry() -> CollectorRegistry:
    """A fresh registry with the standard process, Python GC and platform collectors
    (``process_resident_memory_bytes``, ``python_gc_*``, ``python_info``): a K2 process's own.
    """
    registry = CollectorRegistry()
    process_collector.ProcessCollector(registry=registry)
    gc_collector.GCCollector(registry=registry)
    platform_collector.PlatformCollector(registry=registry)
    return registry


class K2Metrics:
    """All of K2's collectors on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        #: Where every collector is registered.
        self.registry = registry
        self._http(registry)
        self._query(registry)
        self._ingest(registry)
        self._feed(registry)
        self._sink(registry)
        self._iceberg(registry)
        self._system(registry)

    def _http(self, registry: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "k2_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "k2_http_request_duration_seconds",
            "Time to answer an HTTP request, body streaming included.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_in_progress = Gauge(
            "k2_http_requests_in_progress",
            "HTTP requests being answered.",
            ["method", "route"],
            registry=registry,
        )
        self.http_response_bytes = Counter(
            "k2_http_response_bytes_total",
            "Bytes of HTTP response bodies sent, by route template.",
            ["route"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "k2_http_rate_limited_total", "Requests refused by the rate limit.", ["route"], registry=registry
        )
        self.http_shed = Counter(
            "k2_http_requests_shed_total",
            "Requests refused with 503 before any work: by reason (degraded: level 4 sheds new "
            "requests; breaker_open: a dependency's circuit breaker is open).",
            ["reason"],
            registry=registry,
        )
        self.http_degraded = Counter(
            "k2_http_degraded_responses_total",
            "Responses answered in a degraded mode (reduced work, flagged in the response), by level.",
            ["level"],
            registry=registry,
        )

    def _query(self, registry: CollectorRegistry) -> None:
        self.query_executions = Counter(
            "k2_query_executions_total",
            "Queries the engine ran, by query kind and outcome (ok, no_data, error).",
            ["query", "outcome"],
            registry=registry,
        )
        self.query_duration = Histogram(
            "k2_query_duration_seconds",
            "Time the query engine took to answer, by query kind.",
            ["query"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.query_rows = Counter(
            "k2_query_rows_returned_total",
            "Rows the query engine returned, by query kind.",
            ["query"],
            registry=registry,
        )
        self.query_live_rows = Counter(
            "k2_query_live_rows_total",
            "Rows answered from the Kafka tail (not yet in the lake), by table.",
            ["table"],
            registry=registry,
        )
        self.query_cache_hits = Counter(
            "k2_query_cache_hits_total",
            "Look-ups answered from a read-path cache: 'answers' (encoded answers per snapshot and "
            "request) or 'row_groups' (decoded row groups).",
            ["cache"],
            registry=registry,
        )
        self.query_cache_misses = Counter(
            "k2_query_cache_misses_total",
            "Look-ups a read-path cache could not answer.",
            ["cache"],
            registry=registry,
        )
        self.query_cache_bytes = Gauge(
            "k2_query_cache_bytes", "Memory a read-path cache holds.", ["cache"], registry=registry
        )

    def _ingest(self, registry: CollectorRegistry) -> None:
        self.ingest_rows_read = Counter(
            "k2_ingest_rows_read_total",
            "Rows a load read from its source (CSV files, synthetic, a file), by source.",
            ["source"],
            registry=registry,
        )
        self.ingest_rows_rejected = Counter(
            "k2_ingest_rows_rejected_total",
            "Rows a load wrote to its reject file instead of loading, by source.",
            ["source"],
            registry=registry,
        )
        self.ingest_batches = Counter(
            "k2_ingest_batches_total",
            "Batches a load handed to its destination, by source and destination (lake, kafka).",
            ["source", "destination"],
            registry=registry,
        )
        self.produced_messages = Counter(
            "k2_kafka_messages_produced_total",
            "Messages Kafka acknowledged to K2's producers, by topic.",
            ["topic"],
            registry=registry,
        )
        self.produce_failures = Counter(
            "k2_kafka_produce_failures_total",
            "Messages Kafka refused or that timed out before acknowledgement, by topic.",
            ["topic"],
            registry=registry,
        )
        self.produced_bytes = Counter(
            "k2_kafka_produced_bytes_total",
            "Bytes of acknowledged messages, by topic.",
            ["topic"],
            registry=registry,
        )
        self.producer_queue = Gauge(
            "k2_kafka_producer_queue_messages",
            "Messages waiting in the producer's queue for delivery to Kafka.",
            registry=registry,
        )
        self.produce_latency = Histogram(
            "k2_kafka_produce_latency_seconds",
            "Time from handing a message to the producer to Kafka acknowledging it (one message "
            "in 64 sampled), by topic.",
            ["topic"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def _feed(self, registry: CollectorRegistry) -> None:
        self.feed_messages = Counter(
            "k2_feed_messages_total",
            "Market messages a live feed received, by exchange and stream kind (trade, quote).",
            ["exchange", "kind"],
            registry=registry,
        )
        self.feed_reconnects = Counter(
            "k2_feed_reconnects_total",
            "Reconnects of a live feed, by exchange and reason (closed, ping_timeout, silence, max_age, "
            "server_shutdown, connect_failed).",
            ["exchange", "reason"],
            registry=registry,
        )
        self.feed_connected = Gauge(
            "k2_feed_connected", "1 while a live feed's connection is open.", ["exchange"], registry=registry
        )
        self.feed_last_message = Gauge(
            "k2_feed_last_message_timestamp_seconds",
            "Unix time a live feed last received a market message, by exchange.",
            ["exchange"],
            registry=registry,
        )
        self.feed_gaps = Counter(
            "k2_feed_gaps_total",
            "Trade-id gaps a live feed detected, by exchange.",
            ["exchange"],
            registry=registry,
        )
        self.feed_gap_trades = Counter(
            "k2_feed_gap_trades_total",
            "Trades missing in detected gaps, by exchange and outcome (backfilled or lost).",
            ["exchange", "outcome"],
            registry=registry,
        )
        self.feed_malformed = Counter(
            "k2_feed_malformed_total",
            "Feed messages that could not be read, dead-lettered, by exchange and reason.",
            ["exchange", "reason"],
            registry=registry,
        )
        self.feed_buffered = Gauge(
            "k2_feed_buffered_messages",
            "Messages received and not yet handed to Kafka, by exchange.",
            ["exchange"],
            registry=registry,
        )
        self.feed_buffer_capacity = Gauge(
            "k2_feed_buffer_capacity_messages",
            "Messages a live feed's buffer holds before it stops reading its socket, by exchange.",
            ["exchange"],
            registry=registry,
        )
        self.feed_backpressure = Counter(
            "k2_feed_backpressure_seconds_total",
            "Time a live feed stopped reading its socket because its buffer was full, by exchange.",
            ["exchange"],
            registry=registry,
        )
        self.feed_lag = Histogram(
            "k2_feed_lag_seconds",
            "Receive time minus exchange event time of the newest trade in each batch a live feed "
            "produces, by exchange.",
            ["exchange"],
            buckets=_FEED_LAG_BUCKETS,
            registry=registry,
        )

    def _sink(self, registry: CollectorRegistry) -> None:
        self.sink_messages = Counter(
            "k2_sink_messages_total",
            "Kafka messages the sink consumed, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_batch_messages = Histogram(
            "k2_sink_poll_batch_messages",
            "Messages one poll of the sink returned.",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "k2_kafka_consumer_lag_messages",
            "Messages in a partition the sink has not consumed yet (high watermark minus position), "
            "by topic and partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.sink_duplicates = Counter(
            "k2_sink_duplicates_total",
            "Consumed rows already in the lake (redelivery after a restart), by table.",
            ["table"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "k2_kafka_dead_letters_total",
            "Messages sent to a dead-letter topic, by that topic and the component that sent them "
            "(sink, feed).",
            ["topic", "component"],
            registry=registry,
        )
        self.sink_commits = Counter(
            "k2_sink_commits_total",
            "Iceberg commits made by the sink, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_commit_duration = Histogram(
            "k2_sink_commit_duration_seconds",
            "Time of one sink commit to the lake, files written included.",
            ["table"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.sink_last_commit = Gauge(
            "k2_sink_last_commit_timestamp_seconds",
            "Unix time of the sink's last successful commit, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_pending_rows = Gauge(
            "k2_sink_pending_rows",
            "Rows consumed and not yet committed, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_paused = Gauge(
            "k2_sink_paused",
            "1 while the sink has paused consumption, by reason (lake_outage, breaker_open).",
            ["reason"],
            registry=registry,
        )
        self.sink_outages = Counter(
            "k2_sink_lake_outages_total",
            "Times the sink found the lake unreachable and paused consumption.",
            registry=registry,
        )
        self.sink_rebalances = Counter(
            "k2_sink_rebalances_total",
            "Partition assignments and revocations the sink's consumer group made, by kind.",
            ["kind"],
            registry=registry,
        )
        self.sequence_events = Counter(
            "k2_sequence_events_total",
            "Per-symbol sequence anomalies seen by the sink: gap, duplicate, out_of_order, reset.",
            ["exchange", "kind"],
            registry=registry,
        )
        self.sequence_gaps = Counter(
            "k2_sequence_gaps_detected_total",
            "Per-symbol sequence gaps the sink detected, by exchange.",
            ["exchange"],
            registry=registry,
        )

    def _iceberg(self, registry: CollectorRegistry) -> None:
        self.iceberg_rows_written = Counter(
            "k2_iceberg_rows_written_total",
            "Rows committed to Iceberg, by table and writer (sink, loader).",
            ["table", "writer"],
            registry=registry,
        )
        self.iceberg_write_duration = Histogram(
            "k2_iceberg_write_duration_seconds",
            "Time of one Iceberg write (data files and the commit), by table and writer.",
            ["table", "writer"],
            buckets=_WRITE_BUCKETS,
            registry=registry,
        )
        self.iceberg_files_written = Counter(
            "k2_iceberg_data_files_written_total",
            "Parquet data files added to Iceberg, by table and writer.",
            ["table", "writer"],
            registry=registry,
        )
        self.iceberg_bytes_written = Counter(
            "k2_iceberg_bytes_written_total",
            "Bytes of Parquet data files added to Iceberg, by table and writer.",
            ["table", "writer"],
            registry=registry,
        )
        self.iceberg_commits = Counter(
            "k2_iceberg_commits_total",
            "Iceberg commits attempted, by table, writer and outcome (committed, failed).",
            ["table", "writer", "outcome"],
            registry=registry,
        )
        self.iceberg_compactions = Counter(
            "k2_iceberg_compactions_total",
            "Compactions K2 committed, by table.",
            ["table"],
            registry=registry,
        )
        self.iceberg_compaction_files = Counter(
            "k2_iceberg_compaction_files_rewritten_total",
            "Data files compactions replaced, by table.",
            ["table"],
            registry=registry,
        )

    def _system(self, registry: CollectorRegistry) -> None:
        self.build = Info("k2_build", "K2's version and the component this process runs.", registry=registry)
        self.breaker_state = Gauge(
            "k2_circuit_breaker_state",
            "State of the circuit breaker guarding a dependency: 0 closed, 1 open, 2 half-open.",
            ["dependency"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "k2_circuit_breaker_transitions_total",
            "State changes of a dependency's circuit breaker, by the state entered.",
            ["dependency", "state"],
            registry=registry,
        )
        self.breaker_calls = Counter(
            "k2_circuit_breaker_calls_total",
            "Calls through a dependency's circuit breaker, by outcome (success, failure, rejected).",
            ["dependency", "outcome"],
            registry=registry,
        )
        self.degradation_level = Gauge(
            "k2_degradation_level",
            "The API's degradation level: 0 normal, 1 enrichments off, 2 smaller pages, 3 cached or "
            "metadata answers only, 4 shedding new requests.",
            registry=registry,
        )
        self.degradation_transitions = Counter(
            "k2_degradation_transitions_total",
            "Changes of the degradation level, by direction (up, down).",
            ["direction"],
            registry=registry,
        )
        self.disk_free = Gauge(
            "k2_disk_free_bytes",
            "Free bytes on the volume holding K2's data directory, by volume (data).",
            ["volume"],
            registry=registry,
        )
        self.disk_capacity = Gauge(
            "k2_disk_capacity_bytes",
            "Size of the volume holding K2's data directory, by volume (data).",
            ["volume"],
            registry=registry,
        )
        self.degradation_signal = Gauge(
            "k2_degradation_signal",
            "The measured signals the degradation level is decided from, by signal (p99_seconds, "
            "in_flight, memory_bytes, open_breakers).",
            ["signal"],
            registry=registry,
        )
