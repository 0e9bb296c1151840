"""The "K2 per-exchange drill-down" dashboard: one venue's feed, gaps and sequence anomalies."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from deploy.grafana._panels import (
    RATE,
    Chart,
    Kind,
    Query,
    Section,
    Variable,
    build_dashboard,
    histogram_quantile,
)

UID = "k2-exchange"

#: Exchanges seen by a live feed or by the sink's sequence checks (bulk loads have no feed).
EXCHANGE = Variable(
    "exchange",
    "Exchange",
    'label_values({__name__=~"k2_feed_messages_total|k2_sequence_events_total"}, exchange)',
)
_SELECTOR = 'exchange=~"$exchange"'

_FEED = Section(
    "Live feed",
    (
        Chart(
            "Feed messages by kind",
            "Market messages the live feed received per second, by stream kind (trade, quote).",
            "mps",
            (
                Query(
                    f"sum by (exchange, kind) (rate(k2_feed_messages_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}} {{kind}}",
                ),
            ),
        ),
        Chart(
            "Feed lag p50 / p99",
            "Receive time minus exchange event time of the newest trade of each produced batch.",
            "s",
            (
                Query(
                    histogram_quantile(0.5, "k2_feed_lag_seconds", "exchange", _SELECTOR), "{{exchange}} p50"
                ),
                Query(
                    histogram_quantile(0.99, "k2_feed_lag_seconds", "exchange", _SELECTOR), "{{exchange}} p99"
                ),
            ),
        ),
        Chart(
            "Last message age",
            "Seconds since the live feed last received a market message.",
            "s",
            (
                Query(
                    f"time() - max by (exchange) (k2_feed_last_message_timestamp_seconds{{{_SELECTOR}}})",
                    "{{exchange}}",
                ),
            ),
            kind=Kind.STAT,
            steps=((0, "green"), (60, "orange"), (300, "red")),
        ),
        Chart(
            "Reconnects by reason",
            "Reconnects of the live feed per second, by reason.",
            "ops",
            (
                Query(
                    f"sum by (exchange, reason) (rate(k2_feed_reconnects_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}} {{reason}}",
                ),
            ),
        ),
        Chart(
            "Malformed messages",
            "Feed messages that could not be read and went to the dead-letter topic, per second, by reason.",
            "mps",
            (
                Query(
                    f"sum by (exchange, reason) (rate(k2_feed_malformed_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}} {{reason}}",
                ),
            ),
        ),
        Chart(
            "Feed connected",
            "1 while the live feed's connection is open.",
            "none",
            (Query(f"max by (exchange) (k2_feed_connected{{{_SELECTOR}}})", "{{exchange}}"),),
            kind=Kind.STAT,
            labels={"0": ("disconnected", "red"), "1": ("connected", "green")},
        ),
    ),
)

_BACKPRESSURE = Section(
    "Buffer and backpressure",
    (
        Chart(
            "Buffer fill",
            "Messages received and not yet handed to Kafka, as a share of the buffer; at 100% the feed "
            "stops reading its socket.",
            "percentunit",
            (
                Query(
                    f"max by (exchange) (k2_feed_buffered_messages{{{_SELECTOR}}}) "
                    f"/ max by (exchange) (k2_feed_buffer_capacity_messages{{{_SELECTOR}}})",
                    "{{exchange}}",
                ),
            ),
            steps=((0, "green"), (0.8, "orange"), (1, "red")),
        ),
        Chart(
            "Backpressure",
            "Share of time the live feed stopped reading its socket because its buffer was full.",
            "percentunit",
            (
                Query(
                    f"sum by (exchange) (rate(k2_feed_backpressure_seconds_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}}",
                ),
            ),
        ),
    ),
)

_GAPS = Section(
    "Gaps and sequence",
    (
        Chart(
            "Feed gaps",
            "Trade-id gaps the live feed detected per second.",
            "ops",
            (
                Query(
                    f"sum by (exchange) (rate(k2_feed_gaps_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}}",
                ),
            ),
        ),
        Chart(
            "Gap trades: backfilled vs lost",
            "Trades missing in detected gaps per second, by outcome: backfilled over REST, or lost.",
            "ops",
            (
                Query(
                    f"sum by (exchange, outcome) (rate(k2_feed_gap_trades_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}} {{outcome}}",
                ),
            ),
        ),
        Chart(
            "Sequence events by kind",
            "Per-symbol sequence anomalies the sink saw per second: gap, duplicate, out_of_order, reset.",
            "ops",
            (
                Query(
                    f"sum by (exchange, kind) (rate(k2_sequence_events_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}} {{kind}}",
                ),
                Query(
                    f"sum by (exchange) (rate(k2_sequence_gaps_detected_total{{{_SELECTOR}}}[{RATE}]))",
                    "{{exchange}} gaps detected",
                ),
            ),
        ),
    ),
)


def exchange() -> Dashboard:
    """The per-exchange drill-down, filtered by the ``$exchange`` variable."""
    return build_dashboard(
        UID,
        "K2 per-exchange drill-down",
        "One venue's live feed (messages, lag, reconnects, buffer), gaps and sequence anomalies.",
        (_FEED, _BACKPRESSURE, _GAPS),
        (EXCHANGE,),
    )
