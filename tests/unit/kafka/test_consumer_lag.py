"""The sink's consumer lag, read from librdkafka's statistics document."""

from __future__ import annotations

import orjson

from k2.kafka.lag import consumer_lags


def test_lag_of_each_assigned_partition_leaving_out_unknown_and_internal_ones() -> None:
    statistics = {
        "name": "k2-sink#consumer-1",
        "topics": {
            "market.crypto.trades.binance": {
                "partitions": {
                    "0": {"consumer_lag": 120},
                    "1": {"consumer_lag": 0},
                    "2": {"consumer_lag": -1},  # not fetched yet
                    "-1": {"consumer_lag": -1},  # librdkafka's unassigned partition
                }
            },
            "market.equities.quotes.asx": {"partitions": {"3": {"consumer_lag": 7}}},
        },
    }
    assert consumer_lags(orjson.dumps(statistics).decode()) == {
        ("market.crypto.trades.binance", 0): 120,
        ("market.crypto.trades.binance", 1): 0,
        ("market.equities.quotes.asx", 3): 7,
    }


def test_a_document_without_topics_has_no_lag() -> None:
    assert consumer_lags('{"name": "k2-sink#consumer-1", "topics": {}}') == {}
    assert consumer_lags('{"name": "k2-sink#consumer-1"}') == {}
