"""The "K2 query performance" dashboard: latency by query kind and route, rows, caches."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from deploy.grafana._panels import (
    CACHE_HIT_RATIO,
    RATE,
    Chart,
    Query,
    Section,
    build_dashboard,
    histogram_quantile,
)

UID = "k2-query"


def _quantile_chart(quantile: float) -> Chart:
    percentile = f"p{round(quantile * 100)}"
    return Chart(
        f"Query {percentile} by kind",
        f"{percentile} of the time the query engine took to answer, by query kind.",
        "s",
        (Query(histogram_quantile(quantile, "k2_query_duration_seconds", "query"), "{{query}}"),),
    )


_LATENCY = Section("Query latency", tuple(_quantile_chart(q) for q in (0.5, 0.95, 0.99)))

_ROWS = Section(
    "Rows and outcomes",
    (
        Chart(
            "Rows returned",
            "Rows the query engine returned per second, by query kind.",
            "rowsps",
            (Query(f"sum by (query) (rate(k2_query_rows_returned_total[{RATE}]))", "{{query}}"),),
        ),
        Chart(
            "Live rows",
            "Rows answered from the Kafka tail (not yet in the lake) per second, by table.",
            "rowsps",
            (Query(f"sum by (table) (rate(k2_query_live_rows_total[{RATE}]))", "{{table}}"),),
        ),
        Chart(
            "Query outcomes",
            "Queries the engine ran per second, by kind and outcome (ok, no_data, error).",
            "ops",
            (
                Query(
                    f"sum by (query, outcome) (rate(k2_query_executions_total[{RATE}]))",
                    "{{query}} {{outcome}}",
                ),
            ),
        ),
    ),
)

_CACHES = Section(
    "Read-path caches",
    (
        Chart(
            "Cache hits and misses",
            "Look-ups per second each read-path cache answered (hit) or could not (miss).",
            "ops",
            (
                Query(f"sum by (cache) (rate(k2_query_cache_hits_total[{RATE}]))", "{{cache}} hit"),
                Query(f"sum by (cache) (rate(k2_query_cache_misses_total[{RATE}]))", "{{cache}} miss"),
            ),
        ),
        Chart(
            "Cache hit ratio",
            "Share of look-ups answered from each read-path cache.",
            "percentunit",
            (Query(CACHE_HIT_RATIO, "{{cache}}"),),
        ),
        Chart(
            "Cache memory",
            "Memory each read-path cache holds, summed over processes.",
            "bytes",
            (Query("sum by (cache) (k2_query_cache_bytes)", "{{cache}}"),),
        ),
    ),
)

_HTTP = Section(
    "HTTP",
    (
        Chart(
            "HTTP p99 by route",
            "99th percentile time to answer a request, body streaming included, by route template.",
            "s",
            (Query(histogram_quantile(0.99, "k2_http_request_duration_seconds", "route"), "{{route}}"),),
        ),
        Chart(
            "Requests in progress",
            "HTTP requests being answered, summed over processes.",
            "short",
            (Query("sum by (route) (k2_http_requests_in_progress)", "{{route}}"),),
        ),
        Chart(
            "Response bytes",
            "Bytes of response bodies sent per second, by route template.",
            "Bps",
            (Query(f"sum by (route) (rate(k2_http_response_bytes_total[{RATE}]))", "{{route}}"),),
        ),
    ),
)


def query() -> Dashboard:
    """Query performance: latency quantiles per query kind, rows, caches and HTTP by route."""
    return build_dashboard(
        UID,
        "K2 query performance",
        "Latency breakdown by query kind and route, rows returned, live rows and read-path caches.",
        (_LATENCY, _ROWS, _CACHES, _HTTP),
    )
