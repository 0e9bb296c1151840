"""Circuit breakers on the real services: PostgreSQL (the catalog), then MinIO (the object store),
then Kafka stopped while the API answers requests and the sink consumes produced trades and quotes.

Each time the dependency's breaker opens (the API's ``k2_circuit_breaker_state`` and its 503s, the
sink's transition log), requests fail fast instead of hanging, and once the service is back the
breaker closes and the sink, never restarted, finishes with every produced row exactly once.

The test stops services, so it runs on ``private_platform`` (its own data directory and free
ports), never on the shared platform.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from k2.api import create_app
from k2.platform import stack
from k2.settings import ApiSettings, DegradationSettings, K2Settings, QuerySettings, ResilienceSettings
from tests.fixtures.supervised_sink import (
    Feed,
    LakeAudit,
    SupervisedSink,
    assert_exactly_once,
    synthetic_rows,
)

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

log = logging.getLogger(__name__)

#: The test client's response (Starlette picks the HTTP library it is built on).
Response = Any

KEY = {"X-API-Key": "test-key"}
FAIL_MAX = 2
RESET_S = 2.0
#: The slowest a failing request may be: the dependency's own timeout (the catalog's 3 s connect
#: timeout, the tail's 5 s Kafka timeout) and a margin; a hang would be minutes.
HANG_BOUND_S = 8.0
CATCH_UP_TIMEOUT_S = 120.0


class _BreakerSink(SupervisedSink):
    """The supervised sink with quick breakers and no give-up: it must ride every outage out."""

    def _env(self) -> dict[str, str]:
        return {
            **super()._env(),
            "K2_RESILIENCE_BREAKER_FAIL_MAX": str(FAIL_MAX),
            "K2_RESILIENCE_BREAKER_RESET_S": str(RESET_S),
        }

    def breaker_states(self, dependency: str) -> list[str]:
        """The states the sink's breaker of ``dependency`` entered, in order."""
        return [
            str(event["state"])
            for event in self.events("circuit_breaker_transition")
            if event.get("dependency") == dependency
        ]


@pytest.fixture
def api(stream_settings: K2Settings) -> Iterator[tuple[TestClient, CollectorRegistry]]:
    """The API in-process on the test's lake, without read caches (each read reaches the store),
    and without degradation: requests that wait out a dead Kafka's timeout are slow enough to raise
    the level to 3, whose OVERLOADED answers would stand in for the breaker's (as they should in
    production; tests/integration/test_degradation.py holds that behaviour).
    """
    settings = stream_settings.model_copy(
        update={
            "api": ApiSettings(
                keys=SecretStr("tester:test-key"), answer_cache_bytes=0, rate_limit="100000/minute"
            ),
            "query": QuerySettings(cache_bytes=0),
            "resilience": ResilienceSettings(breaker_fail_max=FAIL_MAX, breaker_reset_s=RESET_S),
            "degradation": DegradationSettings(enabled=False),
        }
    )
    registry = CollectorRegistry()
    with TestClient(create_app(settings, registry=registry)) as client:
        yield client, registry


def _timed(request: Callable[[], Response]) -> tuple[Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def _breaker(registry: CollectorRegistry, dependency: str) -> float | None:
    return registry.get_sample_value("k2_circuit_breaker_state", {"dependency": dependency})


def _until_open(registry: CollectorRegistry, dependency: str, request: Callable[[], Response]) -> list[float]:
    """Send requests until ``dependency``'s breaker opens; each fails as 503 within the hang bound.
    Returns their times."""
    took: list[float] = []
    deadline = time.monotonic() + 60
    while _breaker(registry, dependency) != 1:
        assert time.monotonic() < deadline, f"the API's {dependency} breaker never opened"
        response, seconds = _timed(request)
        took.append(seconds)
        assert seconds < HANG_BOUND_S, f"a request to a failing {dependency} took {seconds:.1f} s"
        if response.status_code != 200:  # a request may be served by what is in memory
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    return took


def _refused_fast(registry: CollectorRegistry, dependency: str, request: Callable[[], Response]) -> float:
    """One request while ``dependency``'s breaker is open: 503, Retry-After, shed (refused before any
    I/O) counted; its time is returned for the log, not asserted (the machine's load decides it).
    """
    shed = {"reason": "breaker_open"}
    before = registry.get_sample_value("k2_http_requests_shed_total", shed) or 0
    response, seconds = _timed(request)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "DEPENDENCY_UNAVAILABLE"
    assert error["details"] == [{"field": "dependency", "message": dependency}]
    assert 1 <= int(response.headers["retry-after"]) <= RESET_S
    assert registry.get_sample_value("k2_http_requests_shed_total", shed) == before + 1
    return seconds


def _until_closed(registry: CollectorRegistry, dependency: str, request: Callable[[], Response]) -> None:
    """Ask until the half-open probe succeeds and the breaker closes (the service is back)."""
    deadline = time.monotonic() + 90
    while True:
        response = request()
        if response.status_code == 200 and _breaker(registry, dependency) == 0:
            return
        assert time.monotonic() < deadline, f"the {dependency} breaker never closed: {response.text}"
        time.sleep(0.5)


def test_breakers_open_fail_fast_and_close_through_each_outage(
    stream_settings: K2Settings,
    audit: LakeAudit,
    api: tuple[TestClient, CollectorRegistry],
) -> None:
    """PostgreSQL, MinIO, then Kafka down in turn under the API and the sink: breakers open (metric,
    503 + Retry-After), requests fail fast, breakers close after restart, and the one sink run
    lands every row exactly once."""
    client, registry = api
    services = {service.name: service for service in stack.services(stream_settings)}
    sink = _BreakerSink(stream_settings)
    feed = Feed(stream_settings)
    days = iter(date(2024, 1, day) for day in (8, 15, 22, 29))
    try:
        feed.produce(synthetic_rows(next(days), symbols=3, days=1, trades_per_day=2000))
        sink.start()
        sink.run_until(lambda: sink.committed_rows() > 0, 60.0, "the sink's first commit")

        def trades() -> Response:
            return client.get("/v1/trades", params={"limit": 5}, headers=KEY)

        def live() -> Response:
            return client.get("/v1/trades", params={"limit": 5, "include_live": True}, headers=KEY)

        timings: dict[str, tuple[list[float], float]] = {}
        for name, dependency, request in (
            ("postgres", "catalog", trades),
            ("minio", "object_store", trades),
            ("kafka", "kafka", live),
        ):
            _until_closed(registry, dependency, request)
            rows = synthetic_rows(next(days), symbols=3, days=1, trades_per_day=2000)
            if name == "kafka":  # the sink finds Kafka down by itself; the rows wait for it
                feed.produce(rows)
            service = services[name]
            service.stop()
            try:
                if name != "kafka":  # rows the sink must commit while the lake is down
                    feed.produce(rows)
                failing = _until_open(registry, dependency, request)
                refused = _refused_fast(registry, dependency, request)
                timings[dependency] = (failing, refused)
                sink.run_until(
                    lambda: "open" in sink.breaker_states(dependency),  # noqa: B023 - run at once
                    60.0,
                    f"the sink's {dependency} breaker",
                )
                assert client.get("/health").status_code == 200
                assert client.get("/health/ready").json()["breakers"][dependency] != "closed"
            finally:
                service.start()
            _until_closed(registry, dependency, request)
            sink.run_until(audit.caught_up, CATCH_UP_TIMEOUT_S, f"the sink catching up after {name}")
            sink.run_until(
                lambda: sink.breaker_states(dependency)[-1] == "closed",  # noqa: B023 - run at once
                60.0,
                f"the sink's {dependency} breaker closing",
            )
        log.info("fail-fast timings (failing requests, refused request) by dependency: %s", timings)
        assert sink.exits == [], sink.log_tail()
        assert sink.stop() == 0, sink.log_tail()
        assert_exactly_once(stream_settings, audit, feed.produced)
    finally:
        sink.kill()
