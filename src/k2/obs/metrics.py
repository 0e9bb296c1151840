"""K2's Prometheus metrics, declared once against a registry the caller passes in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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
