"""K2's Prometheus metrics, declared once against a registry the caller passes in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_FEED_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class K2Metrics:
    """All collectors; labels are low-cardinality (route templates, never raw paths)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = Counter(
            "k2_http_requests_total",
            "HTTP requests answered.",
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
        self.rate_limited = Counter(
            "k2_http_rate_limited_total", "Requests refused by the rate limit.", ["route"], registry=registry
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
        self.produced_messages = Counter(
            "k2_producer_messages_total",
            "Messages the producer handed to Kafka, by topic and outcome (delivered or failed).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.produced_bytes = Counter(
            "k2_producer_bytes_total", "Bytes of delivered messages, by topic.", ["topic"], registry=registry
        )
        self.sink_messages = Counter(
            "k2_sink_messages_total",
            "Kafka messages the sink consumed, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_rows_written = Counter(
            "k2_sink_rows_written_total",
            "Rows the sink committed to the lake, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_duplicates = Counter(
            "k2_sink_duplicates_total",
            "Consumed rows already in the lake (redelivery after a restart), by table.",
            ["table"],
            registry=registry,
        )
        self.sink_dead_letters = Counter(
            "k2_sink_dead_letters_total",
            "Messages sent to a dead-letter topic, by table.",
            ["table"],
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
        self.sink_pending_rows = Gauge(
            "k2_sink_pending_rows",
            "Rows consumed and not yet committed, by table.",
            ["table"],
            registry=registry,
        )
        self.sequence_events = Counter(
            "k2_sequence_events_total",
            "Per-symbol sequence anomalies seen by the sink: gap, duplicate, out_of_order, reset.",
            ["exchange", "kind"],
            registry=registry,
        )
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
