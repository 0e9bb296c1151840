"""The degradation level of an API process, decided from what it measures.

Four signals — the p99 of recent request durations, the requests in flight, the process's
resident memory and the number of open circuit breakers — each have a threshold per level
(:class:`~k2.settings.DegradationSettings`). The level rises at once to the highest level any
signal reaches, and falls one level at a time, only after every signal stayed below its
*recover* threshold for that level (the rise threshold times ``recover_ratio``) for ``hold_s``:
the gap between the two thresholds and the hold keep the level from flapping.

One controller serves one process: each uvicorn worker decides its own level from its own
requests and memory. Its methods may be called from the event loop and from worker threads.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Protocol

import structlog

from k2.obs.metrics import K2Metrics
from k2.settings import DegradationSettings

log = structlog.get_logger(__name__)

_STATM = Path("/proc/self/statm")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Level(IntEnum):
    """What the API still does; each level keeps the reductions of the levels below it."""

    NORMAL = 0
    #: Costly enrichments off: no Kafka tail (``include_live``), no as-of quotes (``with_quotes``).
    NO_ENRICHMENTS = 1
    #: Smaller page and export caps.
    SMALLER_CAPS = 2
    #: Only answers already cached, and metadata; everything else 503.
    CACHED_ONLY = 3
    #: Every new request shed with 503, ``/health`` and ``/metrics`` aside.
    SHEDDING = 4

    @property
    def meaning(self) -> str:
        """What the API does at this level, in a sentence an operator reads."""
        return _MEANINGS[self]


_MEANINGS = {
    Level.NORMAL: "normal: every request answered in full",
    Level.NO_ENRICHMENTS: "enrichments off: no Kafka tail (include_live), no as-of quotes (with_quotes)",
    Level.SMALLER_CAPS: "smaller pages and exports",
    Level.CACHED_ONLY: "cached answers and metadata only; other reads refused with 503",
    Level.SHEDDING: "shedding: every new request refused with 503, /health and /metrics aside",
}


class OpenBreakers(Protocol):
    """Whatever counts the circuit breakers that are open now."""

    def open_count(self) -> int:
        """Breakers open now."""
        ...


@dataclass(frozen=True, slots=True)
class Signals:
    """What the level is decided from, measured at one instant."""

    p99_seconds: float
    in_flight: int
    memory_bytes: int
    open_breakers: int

    def as_dict(self) -> dict[str, float]:
        """The signals by the names ``k2_degradation_signal`` labels them with."""
        return {
            "p99_seconds": self.p99_seconds,
            "in_flight": self.in_flight,
            "memory_bytes": self.memory_bytes,
            "open_breakers": self.open_breakers,
        }


def resident_memory_bytes() -> int:
    """This process's resident memory, from ``/proc/self/statm`` (0 where there is none)."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


class DegradationController:
    """Decides this process's degradation level; see the module docstring.

    Args:
        settings: thresholds, hold time and evaluation interval.
        metrics: where the level, its transitions and the signals are exported.
        breakers: the circuit breakers whose open ones count; none when omitted.
        clock: monotonic seconds (a fake one in tests).
        memory: the process's resident bytes (a fake one in tests).
    """

    def __init__(
        self,
        settings: DegradationSettings,
        metrics: K2Metrics,
        *,
        breakers: OpenBreakers | None = None,
        clock: Callable[[], float] = time.monotonic,
        memory: Callable[[], int] = resident_memory_bytes,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._breakers = breakers
        self._clock = clock
        self._memory = memory
        self._thresholds: dict[str, tuple[float, ...]] = {
            "p99_seconds": settings.p99_seconds,
            "in_flight": tuple(map(float, settings.in_flight)),
            "memory_bytes": tuple(map(float, settings.memory_bytes)),
            "open_breakers": tuple(map(float, settings.open_breakers)),
        }
        self._lock = threading.Lock()
        self._durations: deque[tuple[float, float]] = deque(maxlen=settings.window_requests)
        self._in_flight = 0
        self._level = Level.NORMAL
        self._decided_at = -math.inf
        self._recovered_since: float | None = None
        metrics.degradation_level.set(0)

    def request_started(self) -> None:
        """Count a request admitted for an answer (its end must be reported to :meth:`request_finished`)."""
        with self._lock:
            self._in_flight += 1

    def request_finished(self, duration_s: float) -> None:
        """Count the end of an admitted request that took ``duration_s``."""
        with self._lock:
            self._in_flight -= 1
            self._durations.append((self._clock(), duration_s))

    def saturated(self) -> bool:
        """Whether as many requests are in flight as level 4's threshold: a new one is shed at
        once, without waiting for the next decision (the queue of admitted requests stays bounded).
        """
        with self._lock:
            return self.settings.enabled and self._in_flight >= self.settings.in_flight[-1]

    def level(self) -> Level:
        """The level now, decided again first when the last decision is older than the interval."""
        if not self.settings.enabled:
            return Level.NORMAL
        with self._lock:
            if self._clock() - self._decided_at >= self.settings.evaluate_interval_s:
                self._decide()
            return self._level

    def evaluate(self) -> Level:
        """Decide the level now, whenever the last decision was."""
        if not self.settings.enabled:
            return Level.NORMAL
        with self._lock:
            self._decide()
            return self._level

    def signals(self) -> Signals:
        """The signals as measured now."""
        with self._lock:
            return self._measure(self._clock())

    def _measure(self, now: float) -> Signals:
        horizon = now - self.settings.window_s
        while self._durations and self._durations[0][0] < horizon:
            self._durations.popleft()
        p99 = 0.0
        if len(self._durations) >= self.settings.min_requests:
            ordered = sorted(duration for _, duration in self._durations)
            p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]
        breakers = self._breakers.open_count() if self._breakers is not None else 0
        return Signals(p99, self._in_flight, self._memory(), breakers)

    def _decide(self) -> None:
        """Move the level (under the lock) from the signals measured now."""
        now = self._clock()
        self._decided_at = now
        signals = self._measure(now)
        measured = signals.as_dict()
        for name, value in measured.items():
            self._metrics.degradation_signal.labels(signal=name).set(value)
        thresholds = self._thresholds
        reached = {name: sum(value >= t for t in thresholds[name]) for name, value in measured.items()}
        target = Level(max(reached.values()))
        if target > self._level:
            causes = [name for name, level in reached.items() if level == target]
            self._move(target, signals, causes)
            return
        if self._level == Level.NORMAL:
            return
        ratio = self.settings.recover_ratio
        holding = [
            name for name, value in measured.items() if value >= thresholds[name][self._level - 1] * ratio
        ]
        if holding:
            self._recovered_since = None
        elif self._recovered_since is None:
            self._recovered_since = now
        elif now - self._recovered_since >= self.settings.hold_s:
            self._move(Level(self._level - 1), signals, [])

    def _move(self, level: Level, signals: Signals, causes: list[str]) -> None:
        previous = self._level
        self._level = level
        self._recovered_since = self._clock() if level < previous else None
        direction = "up" if level > previous else "down"
        self._metrics.degradation_level.set(level)
        self._metrics.degradation_transitions.labels(direction=direction).inc()
        log.warning(
            "degradation_level_changed",
            previous=int(previous),
            level=int(level),
            direction=direction,
            causes=causes,
            **signals.as_dict(),
        )
