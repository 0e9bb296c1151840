"""One circuit breaker per service K2 calls: the catalog database, the object store, Kafka and
the schema registry (:class:`Dependency`), built on ``pybreaker``.

A breaker counts only :class:`~k2.errors.DependencyUnavailableError` s that name its dependency
(refused connections, timeouts, 5xx answers), which the calling packages classify before the
error leaves the guarded block; any other error (a missing table, a bad request, a 404) means the
dependency answered, and pybreaker counts it as a success. After ``breaker_fail_max`` failures in
a row the breaker opens: calls fail at once with :class:`~k2.resilience.errors.BreakerOpenError`
for ``breaker_reset_s``; then it is half-open, and the next call is the probe whose outcome
closes or opens it again. Several threads may probe at once while it is half-open (pybreaker
does not single one out).

States are exported as ``k2_circuit_breaker_state{dependency}`` (0 closed, 1 open, 2 half-open),
with the transitions and the calls by outcome (success, failure, rejected).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum

import pybreaker
import structlog

from k2.errors import DependencyUnavailableError
from k2.obs.metrics import BREAKER_STATES, K2Metrics
from k2.resilience.errors import BreakerOpenError
from k2.settings import ResilienceSettings

log = structlog.get_logger(__name__)

#: pybreaker's state names as K2 reports them.
_STATE_NAMES = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half_open",
}


class Dependency(StrEnum):
    """A service K2 calls, each behind a breaker of its own."""

    CATALOG = "catalog"
    OBJECT_STORE = "object_store"
    KAFKA = "kafka"
    SCHEMA_REGISTRY = "schema_registry"


class _Exported(pybreaker.CircuitBreakerListener):
    """Exports one breaker's state, transitions and calls, and logs its transitions."""

    def __init__(self, dependency: Dependency, metrics: K2Metrics | None) -> None:
        self._dependency = dependency
        self._metrics = metrics

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        state = _STATE_NAMES[new_state.name]
        if old_state is not None and old_state.name == new_state.name:
            return  # a call that failed while another had opened the breaker already
        log.warning(
            "circuit_breaker_transition",
            dependency=self._dependency.value,
            old_state=_STATE_NAMES[old_state.name] if old_state is not None else None,
            state=state,
            failures=cb.fail_counter,
        )
        if self._metrics is not None:
            self._metrics.breaker_state.labels(self._dependency.value).set(BREAKER_STATES[state])
            self._metrics.breaker_transitions.labels(self._dependency.value, state).inc()

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        del cb, exc
        self._count("failure")

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        del cb
        self._count("success")

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.breaker_calls.labels(self._dependency.value, outcome).inc()


class Breakers:
    """The breakers of one process, one per :class:`Dependency`; safe to share between threads."""

    def __init__(self, settings: ResilienceSettings, metrics: K2Metrics | None = None) -> None:
        """Closed breakers for every dependency.

        Args:
            settings: failures that open a breaker, and how long it stays open.
            metrics: where states, transitions and calls are exported; None exports nothing
                (a one-shot command).
        """
        self._metrics = metrics
        self._storages: dict[Dependency, pybreaker.CircuitMemoryStorage] = {}
        self._breakers: dict[Dependency, pybreaker.CircuitBreaker] = {}
        for dependency in Dependency:
            storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
            self._storages[dependency] = storage
            self._breakers[dependency] = pybreaker.CircuitBreaker(
                fail_max=settings.breaker_fail_max,
                reset_timeout=settings.breaker_reset_s,
                exclude=[_NotAnOutageOf(dependency)],
                listeners=[_Exported(dependency, metrics)],
                state_storage=storage,
                name=dependency.value,
                # The call that trips the breaker raises its own error, which says what failed.
                throw_new_error_on_trip=False,
            )
            if metrics is not None:
                metrics.breaker_state.labels(dependency.value).set(BREAKER_STATES["closed"])

    @contextlib.contextmanager
    def guard(self, dependency: Dependency) -> Iterator[None]:
        """Run the ``with`` block as one call to ``dependency`` through its breaker.

        Raises:
            BreakerOpenError: the breaker is open; the block did not run.
        """
        breaker = self._breakers[dependency]
        try:
            with breaker.calling():
                yield
        except pybreaker.CircuitBreakerError as error:
            if self._metrics is not None:
                self._metrics.breaker_calls.labels(dependency.value, "rejected").inc()
            raise BreakerOpenError(dependency.value, self.retry_after_s(dependency)) from error

    def report_failure(self, error: DependencyUnavailableError) -> None:
        """Count a failure a client noticed on its own, outside any guarded call (librdkafka's
        error callback); nothing is counted while the breaker is open already.
        """
        dependency = Dependency(error.dependency)
        if self.state(dependency) == "open":
            return
        with contextlib.suppress(DependencyUnavailableError), self.guard(dependency):
            raise error

    def state(self, dependency: Dependency) -> str:
        """``closed``, ``open`` or ``half_open`` (an open breaker past its reset time stays open
        until the next call probes it).
        """
        return _STATE_NAMES[self._breakers[dependency].current_state]

    def states(self) -> dict[str, str]:
        """Every dependency's :meth:`state`, by name."""
        return {dependency.value: self.state(dependency) for dependency in Dependency}

    def open_count(self) -> int:
        """How many breakers are not closed (open or half-open): dependencies not known healthy."""
        return sum(state != "closed" for state in self.states().values())

    def retry_after_s(self, dependency: Dependency) -> float:
        """Seconds until ``dependency``'s open breaker lets a probe through; 0 when it is not open."""
        opened_at = self._storages[dependency].opened_at
        if self.state(dependency) != "open" or opened_at is None:
            return 0.0
        reset = self._breakers[dependency].reset_timeout
        return max(0.0, reset - (datetime.now(UTC) - opened_at).total_seconds())


class _NotAnOutageOf:
    """pybreaker's exclusion test: true for every error that is not ``dependency`` being down."""

    def __init__(self, dependency: Dependency) -> None:
        self._dependency = dependency

    def __call__(self, error: BaseException) -> bool:
        return not (isinstance(error, DependencyUnavailableError) and error.dependency == self._dependency)
