"""Reading the sink's and the feed's health out of Prometheus's answer to the one instant query."""

from __future__ import annotations

from typing import Any

from k2.obs.pipeline import FACTS, FEED_JOB, SINK_JOB, query_text, stream_health

AT = 1_765_000_000.0
URL = "http://127.0.0.1:9090"


def _sample(fact: str, value: str, **labels: str) -> dict[str, Any]:
    return {"metric": {"k2_fact": fact, **labels}, "value": [AT, value]}


def _body(*samples: dict[str, Any]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(samples)}}


def test_every_fact_is_asked_in_one_query_tagged_with_its_name() -> None:
    """The query joins each fact with ``or``, tagged by ``label_replace`` so the answers stay apart."""
    text = query_text()
    assert text.count(" or ") == len(FACTS) - 1
    for name in FACTS:
        assert f'"k2_fact", "{name}"' in text


def test_a_running_sink_reports_its_lag_per_topic_commits_and_worst_breaker() -> None:
    """Two sink instances, one down: the sink is up; lag per topic; the newest commit and its age
    from Prometheus's evaluation time; a breaker open in one instance is open.
    """
    stream = stream_health(
        URL,
        _body(
            _sample("up", "1", job=SINK_JOB, instance="127.0.0.1:1"),
            _sample("up", "0", job=SINK_JOB, instance="127.0.0.1:2"),
            _sample("consumer_lag", "7", topic="market.equities.trades.asx"),
            _sample("consumer_lag", "0", topic="market.equities.quotes.asx"),
            _sample("last_commit", str(AT - 4), table="trades"),
            _sample("last_commit", str(AT - 9.5), table="quotes"),
            _sample("breaker", "0", job=SINK_JOB, dependency="catalog", instance="127.0.0.1:1"),
            _sample("breaker", "1", job=SINK_JOB, dependency="catalog", instance="127.0.0.1:2"),
            _sample("breaker", "2", job=SINK_JOB, dependency="kafka", instance="127.0.0.1:1"),
            _sample("paused", "1", reason="breaker_open"),
            _sample("dead_letters", "3", job=SINK_JOB, topic="market.dlq.asx"),
            _sample("dead_letters", "5", job=FEED_JOB, topic="market.dlq.binance"),
        ),
    )
    sink = stream.sink
    assert (sink.up, sink.instances, sink.instances_up) == (True, 2, 1)
    assert [(lag.topic, lag.messages) for lag in sink.consumer_lag] == [
        ("market.equities.quotes.asx", 0),
        ("market.equities.trades.asx", 7),
    ]
    assert sink.consumer_lag_total == 7
    assert sink.last_commit_age_s == 4.0
    assert sink.commit_age_s == {"quotes": 9.5, "trades": 4.0}
    assert sink.breakers == {"catalog": "open", "kafka": "half_open"}
    assert sink.paused == ["breaker_open"]
    assert [(d.topic, d.messages) for d in sink.dead_letters] == [("market.dlq.asx", 3)]
    assert stream.evaluated_at.timestamp() == AT


def test_a_feed_reports_each_exchange_and_no_lag_without_trades() -> None:
    """Connected, last message age and reconnects per exchange; a quantile over no trades (NaN) is null."""
    feed = stream_health(
        URL,
        _body(
            _sample("up", "1", job=FEED_JOB, instance="127.0.0.1:3"),
            _sample("connected", "1", exchange="BINANCE"),
            _sample("last_message", str(AT - 0.25), exchange="BINANCE"),
            _sample("reconnects", "2", exchange="BINANCE"),
            _sample("lag_p99", "NaN", exchange="BINANCE"),
        ),
    ).feed
    assert (feed.up, feed.instances_up) == (True, 1)
    (binance,) = feed.exchanges
    assert (binance.connected, binance.last_message_age_s, binance.reconnects, binance.lag_p99_s) == (
        True,
        0.25,
        2,
        None,
    )


def test_nothing_scraped_means_nothing_up() -> None:
    """No sink or feed registered: both down, no lag, no commit (not an error)."""
    stream = stream_health(URL, _body())
    assert (stream.sink.up, stream.sink.instances, stream.sink.consumer_lag_total) == (False, 0, None)
    assert stream.sink.last_commit_age_s is None
    assert (stream.feed.up, stream.feed.exchanges) == (False, [])
