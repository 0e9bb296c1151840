"""The circuit breakers: real pybreaker state machines, short reset times, a fresh registry each."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from k2.errors import DependencyUnavailableError
from k2.lake.errors import TableNotFoundError
from k2.obs.metrics import K2Metrics
from k2.resilience.breakers import Breakers, Dependency
from k2.resilience.errors import BreakerOpenError
from k2.settings import ResilienceSettings

CATALOG = Dependency.CATALOG
FAIL_MAX = 3
RESET_S = 0.3


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def breakers(registry: CollectorRegistry) -> Breakers:
    settings = ResilienceSettings(breaker_fail_max=FAIL_MAX, breaker_reset_s=RESET_S)
    return Breakers(settings, K2Metrics(registry))


def _fail(breakers: Breakers, error: Exception) -> None:
    with pytest.raises(type(error)), breakers.guard(CATALOG):
        raise error


def _down(dependency: Dependency = CATALOG) -> DependencyUnavailableError:
    return DependencyUnavailableError("connection refused", dependency.value)


def _state_metric(registry: CollectorRegistry, dependency: Dependency = CATALOG) -> float | None:
    return registry.get_sample_value("k2_circuit_breaker_state", {"dependency": dependency.value})


def _calls(registry: CollectorRegistry, outcome: str) -> float:
    value = registry.get_sample_value(
        "k2_circuit_breaker_calls_total", {"dependency": CATALOG.value, "outcome": outcome}
    )
    return value or 0.0


def test_breaker_opens_after_fail_max_failures(breakers: Breakers, registry: CollectorRegistry) -> None:
    """fail_max outages in a row open the breaker; each failing call raises its own error."""
    for _ in range(FAIL_MAX - 1):
        _fail(breakers, _down())
    assert breakers.state(CATALOG) == "closed"
    assert _state_metric(registry) == 0
    _fail(breakers, _down())
    assert breakers.state(CATALOG) == "open"
    assert breakers.open_count() == 1
    assert _state_metric(registry) == 1
    assert _calls(registry, "failure") == FAIL_MAX


def test_open_breaker_rejects_without_calling_and_says_when_to_retry(
    breakers: Breakers, registry: CollectorRegistry
) -> None:
    """While open, the block never runs and the error carries the seconds until the probe."""
    for _ in range(FAIL_MAX):
        _fail(breakers, _down())
    ran = False
    with pytest.raises(BreakerOpenError) as refused, breakers.guard(CATALOG):
        ran = True
    assert not ran
    assert refused.value.dependency == "catalog"
    assert 0 < refused.value.retry_after_s <= RESET_S
    assert 0 < breakers.retry_after_s(CATALOG) <= RESET_S
    assert _calls(registry, "rejected") == 1


def test_half_open_probe_that_succeeds_closes_the_breaker(
    breakers: Breakers, registry: CollectorRegistry
) -> None:
    """After the reset time one call goes through; its success closes the breaker."""
    for _ in range(FAIL_MAX):
        _fail(breakers, _down())
    time.sleep(RESET_S + 0.05)
    assert breakers.retry_after_s(CATALOG) == 0
    with breakers.guard(CATALOG):
        pass
    assert breakers.states()["catalog"] == "closed"
    assert _state_metric(registry) == 0
    transitions = {
        state: registry.get_sample_value(
            "k2_circuit_breaker_transitions_total", {"dependency": "catalog", "state": state}
        )
        for state in ("open", "half_open", "closed")
    }
    assert transitions == {"open": 1, "half_open": 1, "closed": 1}


def test_half_open_probe_that_fails_opens_it_again(breakers: Breakers, registry: CollectorRegistry) -> None:
    """A failed probe opens the breaker for another reset period at once."""
    for _ in range(FAIL_MAX):
        _fail(breakers, _down())
    time.sleep(RESET_S + 0.05)
    _fail(breakers, _down())
    assert breakers.state(CATALOG) == "open"
    assert breakers.retry_after_s(CATALOG) > 0
    assert _state_metric(registry) == 1


@pytest.mark.parametrize(
    "error",
    [
        TableNotFoundError("no such table"),
        ValueError("bad request"),
        DependencyUnavailableError("store down", Dependency.OBJECT_STORE.value),
    ],
    ids=["not-found", "bad-request", "another-dependency"],
)
def test_errors_that_are_not_this_dependency_down_never_trip_it(breakers: Breakers, error: Exception) -> None:
    """A missing table, a bad request or another service's outage leave the breaker closed."""
    for _ in range(FAIL_MAX * 2):
        _fail(breakers, error)
    assert breakers.state(CATALOG) == "closed"


def test_an_answer_in_between_resets_the_count(breakers: Breakers) -> None:
    """Only consecutive failures count: a success (or a 404) between them starts again."""
    for _ in range(FAIL_MAX - 1):
        _fail(breakers, _down())
    _fail(breakers, TableNotFoundError("no such table"))
    for _ in range(FAIL_MAX - 1):
        _fail(breakers, _down())
    assert breakers.state(CATALOG) == "closed"


def test_reported_failures_open_the_breaker(breakers: Breakers) -> None:
    """Failures a client reports by callback count like failed calls, and stop counting once open."""
    for _ in range(FAIL_MAX + 2):
        breakers.report_failure(_down(Dependency.KAFKA))
    assert breakers.states() == {
        "catalog": "closed",
        "object_store": "closed",
        "kafka": "open",
        "schema_registry": "closed",
    }


def test_without_metrics_breakers_still_work() -> None:
    """A one-shot command's breakers export nothing and behave the same."""
    breakers = Breakers(ResilienceSettings(breaker_fail_max=1, breaker_reset_s=RESET_S))
    _fail(breakers, _down())
    assert breakers.open_count() == 1
