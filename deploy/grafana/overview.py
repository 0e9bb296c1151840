"""The "K2 system overview" dashboard: the brief's 15 panels and more, one row per stage."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from deploy.grafana._panels import (
    CACHE_HIT_RATIO,
    RATE,
    Chart,
    Kind,
    Query,
    Section,
    build_dashboard,
    histogram_quantile,
)

UID = "k2-overview"

_V1 = 'route=~"/v1/.*"'

_API = Section(
    "API",
    (
        Chart(
            "API request rate",
            "Requests answered per second, by route template.",
            "reqps",
            (Query(f"sum by (route) (rate(k2_http_requests_total[{RATE}]))", "{{route}}"),),
        ),
        Chart(
            "API p99 latency",
            "99th and 50th percentile time to answer a /v1 request, body streaming included.",
            "s",
            (
                Query(histogram_quantile(0.99, "k2_http_request_duration_seconds", "", _V1), "p99"),
                Query(histogram_quantile(0.5, "k2_http_request_duration_seconds", "", _V1), "p50"),
            ),
        ),
        Chart(
            "API error ratio",
            "Share of responses with a 5xx status (the availability SLO counts these: 99.9%) and a 4xx.",
            "percentunit",
            (
                Query(
                    # Without a 5xx yet there is no series to sum: count that as 0.
                    f'(sum(rate(k2_http_requests_total{{status=~"5.."}}[{RATE}])) or vector(0)) '
                    f"/ sum(rate(k2_http_requests_total[{RATE}]))",
                    "5xx",
                ),
                Query(
                    # Without a 4xx yet there is no series to sum: count that as 0.
                    f'(sum(rate(k2_http_requests_total{{status=~"4.."}}[{RATE}])) or vector(0)) '
                    f"/ sum(rate(k2_http_requests_total[{RATE}]))",
                    "4xx",
                ),
            ),
        ),
        Chart(
            "Requests shed and degraded",
            "Requests refused with 503 before any work (by reason) and responses answered degraded "
            "(by level).",
            "reqps",
            (
                Query(f"sum by (reason) (rate(k2_http_requests_shed_total[{RATE}]))", "shed: {{reason}}"),
                Query(
                    f"sum by (level) (rate(k2_http_degraded_responses_total[{RATE}]))",
                    "degraded: level {{level}}",
                ),
            ),
        ),
        Chart(
            "Rate limited",
            "Requests refused with 429 by the per-key rate limit, by route.",
            "reqps",
            (Query(f"sum by (route) (rate(k2_http_rate_limited_total[{RATE}]))", "{{route}}"),),
        ),
    ),
)

_QUERY = Section(
    "Query engine",
    (
        Chart(
            "Query executions",
            "Queries the engine ran per second, by query kind and outcome.",
            "ops",
            (
                Query(
                    f"sum by (query, outcome) (rate(k2_query_executions_total[{RATE}]))",
                    "{{query}} {{outcome}}",
                ),
            ),
        ),
        Chart(
            "Query p99 by kind",
            "99th percentile time the query engine took to answer, by query kind.",
            "s",
            (Query(histogram_quantile(0.99, "k2_query_duration_seconds", "query"), "{{query}}"),),
        ),
        Chart(
            "Query cache hit ratio",
            "Share of read-path cache look-ups answered from the cache, by cache.",
            "percentunit",
            (Query(CACHE_HIT_RATIO, "{{cache}}"),),
        ),
    ),
)

_KAFKA = Section(
    "Kafka",
    (
        Chart(
            "Kafka produce rate",
            "Messages Kafka acknowledged to K2's producers per second, by topic.",
            "mps",
            (Query(f"sum by (topic) (rate(k2_kafka_messages_produced_total[{RATE}]))", "{{topic}}"),),
        ),
        Chart(
            "Produce failures",
            "Messages Kafka refused or that timed out before acknowledgement, per second, by topic.",
            "mps",
            (Query(f"sum by (topic) (rate(k2_kafka_produce_failures_total[{RATE}]))", "{{topic}}"),),
        ),
        Chart(
            "Consumer lag",
            "Messages the sink has not consumed yet, by topic and partition (SLO: under 1,000).",
            "short",
            (
                Query(
                    "sum by (topic, partition) (k2_kafka_consumer_lag_messages)",
                    "{{topic}} [{{partition}}]",
                ),
            ),
            steps=((0, "green"), (1000, "red")),
        ),
    ),
)

_SINK = Section(
    "Sink and Iceberg",
    (
        Chart(
            "Sink commits",
            "Iceberg commits the sink made per second, by table.",
            "ops",
            (Query(f"sum by (table) (rate(k2_sink_commits_total[{RATE}]))", "{{table}}"),),
        ),
        Chart(
            "Sink commit p99",
            "99th percentile time of one sink commit to the lake, files written included, by table.",
            "s",
            (Query(histogram_quantile(0.99, "k2_sink_commit_duration_seconds", "table"), "{{table}}"),),
        ),
        Chart(
            "Last commit age",
            "Seconds since the sink's last successful commit, by table (freshness SLO: under 5 minutes "
            "while messages are pending).",
            "s",
            (Query("time() - max by (table) (k2_sink_last_commit_timestamp_seconds)", "{{table}}"),),
            kind=Kind.STAT,
            steps=((0, "green"), (120, "orange"), (300, "red")),
        ),
        Chart(
            "Iceberg rows written",
            "Rows committed to Iceberg per second, by table and writer (sink, loader).",
            "rowsps",
            (
                Query(
                    f"sum by (table, writer) (rate(k2_iceberg_rows_written_total[{RATE}]))",
                    "{{table}} ({{writer}})",
                ),
            ),
        ),
        Chart(
            "Iceberg write p99",
            "99th percentile time of one Iceberg write (data files and the commit), by table.",
            "s",
            (Query(histogram_quantile(0.99, "k2_iceberg_write_duration_seconds", "table"), "{{table}}"),),
        ),
        Chart(
            "Dead letters",
            "Messages sent to a dead-letter topic per second, by that topic and the component that "
            "sent them.",
            "mps",
            (
                Query(
                    f"sum by (topic, component) (rate(k2_kafka_dead_letters_total[{RATE}]))",
                    "{{topic}} ({{component}})",
                ),
            ),
        ),
    ),
)

_RESILIENCE = Section(
    "Resilience",
    (
        Chart(
            "Degradation level",
            "The API's degradation level: 0 normal, 1 enrichments off, 2 smaller pages, 3 cached or "
            "metadata answers only, 4 shedding new requests.",
            "none",
            (Query("max(k2_degradation_level)", "level"),),
            kind=Kind.GAUGE,
            steps=((0, "green"), (1, "yellow"), (2, "orange"), (3, "red")),
            max_value=4,
        ),
        Chart(
            "Circuit breakers",
            "State of the breaker guarding each dependency, worst over K2's processes.",
            "none",
            (Query("max by (dependency) (k2_circuit_breaker_state)", "{{dependency}}"),),
            kind=Kind.STAT,
            labels={"0": ("closed", "green"), "1": ("open", "red"), "2": ("half-open", "orange")},
        ),
        Chart(
            "K2 targets up",
            "K2 processes Prometheus scraped successfully, by component.",
            "none",
            (Query('sum by (job) (up{job=~"k2-.*"})', "{{job}}"),),
            kind=Kind.STAT,
            steps=((0, "red"), (1, "green")),
        ),
    ),
)

_FEED = Section(
    "Live feeds",
    (
        Chart(
            "Feed connected",
            "1 while a live feed's connection is open, by exchange.",
            "none",
            (Query("max by (exchange) (k2_feed_connected)", "{{exchange}}"),),
            kind=Kind.STAT,
            labels={"0": ("disconnected", "red"), "1": ("connected", "green")},
        ),
        Chart(
            "Feed reconnects",
            "Reconnects of a live feed per second, by exchange and reason.",
            "ops",
            (
                Query(
                    f"sum by (exchange, reason) (rate(k2_feed_reconnects_total[{RATE}]))",
                    "{{exchange}} {{reason}}",
                ),
            ),
        ),
        Chart(
            "Feed lag p99",
            "99th percentile of receive time minus exchange time of a live feed's newest trade, by exchange.",
            "s",
            (Query(histogram_quantile(0.99, "k2_feed_lag_seconds", "exchange"), "{{exchange}}"),),
        ),
    ),
)

_PROCESS = Section(
    "Processes and host",
    (
        Chart(
            "Process memory (RSS)",
            "Resident memory of each K2 process, by component.",
            "bytes",
            (
                Query(
                    'sum by (job, instance) (process_resident_memory_bytes{job=~"k2-.*"})',
                    "{{job}} {{instance}}",
                ),
            ),
        ),
        Chart(
            "Process CPU",
            "CPU seconds per second each K2 process used, by component.",
            "percentunit",
            (
                Query(
                    f'sum by (job, instance) (rate(process_cpu_seconds_total{{job=~"k2-.*"}}[{RATE}]))',
                    "{{job}} {{instance}}",
                ),
            ),
        ),
        Chart(
            "Disk free",
            "Free share of the volume holding K2's data directory, as each process sees it.",
            "percentunit",
            (
                Query(
                    "min by (instance, volume) (k2_disk_free_bytes / k2_disk_capacity_bytes)",
                    "{{instance}} {{volume}}",
                ),
            ),
            steps=((0, "red"), (0.1, "orange"), (0.2, "green")),
        ),
    ),
)


def overview() -> Dashboard:
    """The system overview: API, query engine, Kafka, sink and Iceberg, resilience, feeds, processes."""
    return build_dashboard(
        UID,
        "K2 system overview",
        "Throughput, latency, errors, freshness and health of every K2 stage.",
        (_API, _QUERY, _KAFKA, _SINK, _RESILIENCE, _FEED, _PROCESS),
    )
