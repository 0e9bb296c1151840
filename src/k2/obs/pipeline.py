"""What the platform's Prometheus knows of the streaming pipeline's processes: is a sink up, how
far behind Kafka it is, when it last committed, its circuit breakers and dead letters; is a feed
up and connected, its lag, its last message, its reconnects.

Every fact is one PromQL expression over the metrics the sink (job ``k2-sink``) and the feed
(job ``k2-feed``) export (:mod:`k2.obs.metrics`). They are asked in one instant query, each
tagged with a ``k2_fact`` label and joined with ``or``, so the answer is one evaluation at one
instant and takes one round trip bounded by one timeout::

    stream = read_stream("http://127.0.0.1:9090", timeout_s=2.0)
    stream.sink.consumer_lag  # [TopicMessages(topic="market.equities.trades.asx", messages=0)]
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from k2.errors import DependencyUnavailableError
from k2.obs.exposition import JOB_PREFIX
from k2.obs.metrics import BREAKER_STATES

SINK_JOB = f"{JOB_PREFIX}sink"
FEED_JOB = f"{JOB_PREFIX}feed"
#: The window the feed's lag quantile is taken over (scrapes come every 5 s).
FEED_LAG_WINDOW = "1m"
#: What each fact is, in PromQL; every sample keeps the labels it is grouped by.
FACTS = {
    "up": f'up{{job=~"{SINK_JOB}|{FEED_JOB}"}}',
    "consumer_lag": f'sum by (topic) (k2_kafka_consumer_lag_messages{{job="{SINK_JOB}"}})',
    "last_commit": f'max by (table) (k2_sink_last_commit_timestamp_seconds{{job="{SINK_JOB}"}})',
    "paused": f'max by (reason) (k2_sink_paused{{job="{SINK_JOB}"}}) == 1',
    "breaker": f'k2_circuit_breaker_state{{job=~"{SINK_JOB}|{FEED_JOB}"}}',
    "dead_letters": f'sum by (job, topic) (k2_kafka_dead_letters_total{{job=~"{SINK_JOB}|{FEED_JOB}"}})',
    "connected": f'max by (exchange) (k2_feed_connected{{job="{FEED_JOB}"}})',
    "last_message": f'max by (exchange) (k2_feed_last_message_timestamp_seconds{{job="{FEED_JOB}"}})',
    "reconnects": f'sum by (exchange) (k2_feed_reconnects_total{{job="{FEED_JOB}"}})',
    "lag_p99": (
        "histogram_quantile(0.99, sum by (exchange, le) "
        f'(rate(k2_feed_lag_seconds_bucket{{job="{FEED_JOB}"}}[{FEED_LAG_WINDOW}])))'
    ),
}
#: Breaker states, worst first: the state a job reports when its processes disagree.
_WORST_FIRST = ("open", "half_open", "closed")
_STATE_NAMES = {code: name for name, code in BREAKER_STATES.items()}


class PrometheusUnavailableError(DependencyUnavailableError):
    """Prometheus did not answer the question in time, or answered with an error."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "prometheus")


@dataclass(frozen=True, slots=True)
class TopicMessages:
    """A count of messages of one topic: those the sinks have not read yet (consumer lag, summed
    over partitions and sinks), or those a job's running processes dead-lettered since they started.
    """

    topic: str
    messages: int


@dataclass(frozen=True, slots=True)
class JobHealth:
    """The processes of one job as Prometheus scraped them: how many, how many up (``up`` when
    any is), each dependency's breaker at its worst state among them, and their dead letters.
    """

    up: bool
    instances: int
    instances_up: int
    breakers: dict[str, str]
    dead_letters: list[TopicMessages]


@dataclass(frozen=True, slots=True)
class SinkHealth(JobHealth):
    """The Kafka → Iceberg sinks (job ``k2-sink``); ``commit_age_s`` is the seconds since their
    last commit to each table, ``last_commit_*`` the newest of them.
    """

    consumer_lag: list[TopicMessages]
    consumer_lag_total: int | None
    last_commit_at: datetime | None
    last_commit_age_s: float | None
    commit_age_s: dict[str, float]
    paused: list[str]


@dataclass(frozen=True, slots=True)
class ExchangeFeed:
    """One exchange's live feed."""

    exchange: str
    connected: bool | None
    lag_p99_s: float | None
    last_message_at: datetime | None
    last_message_age_s: float | None
    reconnects: int | None


@dataclass(frozen=True, slots=True)
class FeedHealth(JobHealth):
    """The live feeds into Kafka (job ``k2-feed``)."""

    exchanges: list[ExchangeFeed]


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """The streaming processes as Prometheus last scraped them."""

    prometheus_url: str
    evaluated_at: datetime
    sink: SinkHealth
    feed: FeedHealth


@dataclass
class _Sample:
    labels: dict[str, str]
    value: float


@dataclass
class _Facts:
    at: float
    found: dict[str, list[_Sample]] = field(default_factory=lambda: defaultdict(list))

    def of(self, fact: str, **labels: str) -> list[_Sample]:
        return [s for s in self.found.get(fact, []) if all(s.labels.get(k) == v for k, v in labels.items())]

    def by(self, fact: str, label: str, **labels: str) -> dict[str, float]:
        return {s.labels.get(label, ""): s.value for s in self.of(fact, **labels)}


def query_text() -> str:
    """The one instant query: every fact tagged with its name in ``k2_fact``."""
    return " or ".join(f'label_replace({expr}, "k2_fact", "{name}", "", "")' for name, expr in FACTS.items())


def read_stream(url: str, timeout_s: float) -> StreamHealth:
    """Ask the Prometheus at ``url`` how the sink and feed processes are doing.

    Args:
        url: Prometheus's base URL, e.g. ``http://127.0.0.1:9090``.
        timeout_s: the longest the question may take, connecting included.

    Raises:
        PrometheusUnavailableError: Prometheus did not answer within ``timeout_s``, refused the
            connection, or answered with an error.
    """
    endpoint = f"{url.rstrip('/')}/api/v1/query"
    try:
        response = httpx.post(endpoint, data={"query": query_text()}, timeout=timeout_s)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
    except httpx.TimeoutException:
        raise PrometheusUnavailableError(
            f"Prometheus at {url} did not answer within {timeout_s:g} s"
        ) from None
    except httpx.HTTPStatusError as error:
        raise PrometheusUnavailableError(
            f"Prometheus at {url} answered {error.response.status_code}"
        ) from None
    except (httpx.HTTPError, ValueError) as error:
        raise PrometheusUnavailableError(
            f"Prometheus at {url} is unreachable ({type(error).__name__})"
        ) from None
    return stream_health(url, body)


def stream_health(url: str, body: dict[str, Any]) -> StreamHealth:
    """The stream's health from the body of Prometheus's answer to :func:`query_text`."""
    facts = _parse(body, time_now=datetime.now(UTC).timestamp())
    return StreamHealth(
        prometheus_url=url,
        evaluated_at=datetime.fromtimestamp(facts.at, UTC),
        sink=_sink(facts),
        feed=_feed(facts),
    )


def _parse(body: dict[str, Any], time_now: float) -> _Facts:
    facts = _Facts(at=time_now)
    for series in body.get("data", {}).get("result", []):
        labels = dict(series["metric"])
        at, text = series["value"]
        facts.at = float(at)
        facts.found[labels.pop("k2_fact", "")].append(_Sample(labels, float(text)))
    return facts


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _breakers(facts: _Facts, job: str) -> dict[str, str]:
    """Each dependency's breaker, the worst state any of the job's processes reports."""
    states: dict[str, set[str]] = defaultdict(set)
    for sample in facts.of("breaker", job=job):
        states[sample.labels.get("dependency", "")].add(_STATE_NAMES.get(int(sample.value), "unknown"))
    return {
        dependency: next((s for s in _WORST_FIRST if s in found), "unknown")
        for dependency, found in sorted(states.items())
    }


def _dead_letters(facts: _Facts, job: str) -> list[TopicMessages]:
    return [
        TopicMessages(topic, int(count))
        for topic, count in sorted(facts.by("dead_letters", "topic", job=job).items())
    ]


def _age(facts: _Facts, timestamp: float) -> float:
    return round(max(0.0, facts.at - timestamp), 3)


def _job(facts: _Facts, job: str) -> dict[str, Any]:
    """The :class:`JobHealth` fields of ``job``."""
    up = facts.of("up", job=job)
    return {
        "up": any(s.value == 1 for s in up),
        "instances": len(up),
        "instances_up": sum(s.value == 1 for s in up),
        "breakers": _breakers(facts, job),
        "dead_letters": _dead_letters(facts, job),
    }


def _sink(facts: _Facts) -> SinkHealth:
    lag = facts.by("consumer_lag", "topic")
    commits = {table: at for table, at in facts.by("last_commit", "table").items() if at > 0}
    newest = max(commits.values(), default=None)
    return SinkHealth(
        **_job(facts, SINK_JOB),
        consumer_lag=[TopicMessages(topic, int(messages)) for topic, messages in sorted(lag.items())],
        consumer_lag_total=int(sum(lag.values())) if lag else None,
        last_commit_at=datetime.fromtimestamp(newest, UTC) if newest else None,
        last_commit_age_s=_age(facts, newest) if newest else None,
        commit_age_s={table: _age(facts, at) for table, at in sorted(commits.items())},
        paused=sorted(facts.by("paused", "reason")),
    )


def _feed(facts: _Facts) -> FeedHealth:
    connected = facts.by("connected", "exchange")
    last = facts.by("last_message", "exchange")
    reconnects = facts.by("reconnects", "exchange")
    lag = facts.by("lag_p99", "exchange")
    exchanges = sorted(set(connected) | set(last) | set(reconnects))
    return FeedHealth(
        **_job(facts, FEED_JOB),
        exchanges=[
            ExchangeFeed(
                exchange=exchange,
                connected=connected[exchange] == 1 if exchange in connected else None,
                lag_p99_s=_finite(lag.get(exchange)),
                last_message_at=datetime.fromtimestamp(last[exchange], UTC) if last.get(exchange) else None,
                last_message_age_s=_age(facts, last[exchange]) if last.get(exchange) else None,
                reconnects=int(reconnects[exchange]) if exchange in reconnects else None,
            )
            for exchange in exchanges
        ],
    )
