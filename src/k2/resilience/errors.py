"""Errors of the circuit breakers."""

from __future__ import annotations

from k2.errors import DependencyUnavailableError


class BreakerOpenError(DependencyUnavailableError):
    """A dependency's breaker is open: the call was refused without trying the dependency.

    ``retry_after_s`` is how long until the breaker lets a probe through (half-open).
    """

    def __init__(self, dependency: str, retry_after_s: float) -> None:
        super().__init__(
            f"{dependency} is unavailable (circuit breaker open); retry in {retry_after_s:.0f} s", dependency
        )
        self.retry_after_s = retry_after_s
