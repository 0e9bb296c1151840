"""The degradation controller: levels from measured signals, with hysteresis on the way down."""

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from k2.obs.metrics import K2Metrics
from k2.resilience.degradation import DegradationController, Level
from k2.settings import DegradationSettings

HOLD = 10.0
SETTINGS = DegradationSettings(
    p99_seconds=(1.0, 2.0, 4.0, 8.0),
    in_flight=(10, 20, 30, 40),
    memory_bytes=(1000, 2000, 3000, 4000),
    open_breakers=(1, 2, 3, 4),
    recover_ratio=0.5,
    hold_s=HOLD,
    evaluate_interval_s=0.5,
    window_s=5.0,
    window_requests=100,
    min_requests=5,
)


@dataclass
class Clock:
    """Monotonic seconds the test moves by hand."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Box:
    """A value the test sets: memory bytes or open breakers."""

    value: int = 0

    def __call__(self) -> int:
        return self.value

    def open_count(self) -> int:
        return self.value


@dataclass
class Rig:
    controller: DegradationController
    clock: Clock
    memory: Box
    breakers: Box
    registry: CollectorRegistry

    def finish(self, duration_s: float, count: int = 10) -> None:
        """``count`` requests that each took ``duration_s``."""
        for _ in range(count):
            self.controller.request_started()
            self.controller.request_finished(duration_s)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        assert value is not None
        return value


@pytest.fixture
def rig() -> Rig:
    clock, memory, breakers, registry = Clock(), Box(), Box(), CollectorRegistry()
    controller = DegradationController(
        SETTINGS, K2Metrics(registry), breakers=breakers, clock=clock, memory=memory
    )
    return Rig(controller, clock, memory, breakers, registry)


def test_starts_normal(rig: Rig) -> None:
    """With nothing measured the level is 0, and so is the gauge."""
    assert rig.controller.evaluate() is Level.NORMAL
    assert rig.sample("k2_degradation_level") == 0


def test_latency_raises_the_level(rig: Rig) -> None:
    """A p99 of 2.5 s crosses level 2's threshold (2 s) and not level 3's."""
    rig.finish(2.5)
    assert rig.controller.evaluate() is Level.SMALLER_CAPS
    assert rig.sample("k2_degradation_signal", signal="p99_seconds") == 2.5


def test_too_few_durations_are_no_p99(rig: Rig) -> None:
    """Fewer durations than min_requests do not judge the latency."""
    rig.finish(9.0, count=4)
    assert rig.controller.evaluate() is Level.NORMAL


def test_in_flight_raises_the_level(rig: Rig) -> None:
    """Thirty requests in flight reach level 3."""
    for _ in range(30):
        rig.controller.request_started()
    assert rig.controller.evaluate() is Level.CACHED_ONLY
    assert rig.sample("k2_degradation_signal", signal="in_flight") == 30


def test_memory_raises_the_level(rig: Rig) -> None:
    """Resident memory past level 1's threshold gives level 1."""
    rig.memory.value = 1500
    assert rig.controller.evaluate() is Level.NO_ENRICHMENTS


def test_open_breakers_raise_the_level(rig: Rig) -> None:
    """Every breaker open (four) is level 4."""
    rig.breakers.value = 4
    assert rig.controller.evaluate() is Level.SHEDDING


def test_never_above_four(rig: Rig) -> None:
    """Signals far past every threshold still mean level 4."""
    rig.breakers.value = 40
    rig.memory.value = 10**9
    rig.finish(100.0)
    assert rig.controller.evaluate() is Level.SHEDDING


def test_the_highest_signal_decides(rig: Rig) -> None:
    """Memory at level 1 and breakers at level 3: level 3."""
    rig.memory.value = 1500
    rig.breakers.value = 3
    assert rig.controller.evaluate() is Level.CACHED_ONLY


def test_falls_one_level_per_hold(rig: Rig) -> None:
    """From 4, with every signal recovered, the level falls by one after each hold, to 0 and no lower."""
    rig.breakers.value = 4
    assert rig.controller.evaluate() is Level.SHEDDING
    rig.breakers.value = 0
    seen = []
    for _ in range(60):
        rig.clock.now += 1.0
        seen.append(rig.controller.evaluate())
    assert seen[:9] == [Level.SHEDDING] * 9  # the first decision below starts the hold
    assert seen[9:11] == [Level.SHEDDING, Level.CACHED_ONLY]
    assert seen.count(Level.CACHED_ONLY) == seen.count(Level.SMALLER_CAPS) == 10
    assert seen[-1] is Level.NORMAL
    assert rig.sample("k2_degradation_transitions_total", direction="up") == 1
    assert rig.sample("k2_degradation_transitions_total", direction="down") == 4


def test_no_fall_while_above_the_recover_threshold(rig: Rig) -> None:
    """Below the rise threshold but above the recover one (ratio 0.5) holds the level."""
    for _ in range(20):
        rig.controller.request_started()
    assert rig.controller.evaluate() is Level.SMALLER_CAPS
    for _ in range(8):  # 12 in flight: under level 2's 20, over its recover threshold of 10
        rig.controller.request_finished(0.01)
    rig.clock.now += 3 * HOLD
    assert rig.controller.evaluate() is Level.SMALLER_CAPS


def test_a_relapse_restarts_the_hold(rig: Rig) -> None:
    """Signals that return above the recover threshold during the hold start it again."""
    rig.memory.value = 1500
    assert rig.controller.evaluate() is Level.NO_ENRICHMENTS
    rig.memory.value = 0
    rig.controller.evaluate()
    rig.clock.now += HOLD - 1
    rig.memory.value = 600  # over level 1's recover threshold (500)
    rig.controller.evaluate()
    rig.memory.value = 0
    rig.clock.now += 2
    assert rig.controller.evaluate() is Level.NO_ENRICHMENTS
    rig.clock.now += HOLD
    assert rig.controller.evaluate() is Level.NORMAL


def test_rises_at_once_during_a_fall(rig: Rig) -> None:
    """A signal crossing a higher threshold raises the level without waiting."""
    rig.memory.value = 1500
    rig.controller.evaluate()
    rig.memory.value = 3500
    rig.clock.now += 0.5
    assert rig.controller.evaluate() is Level.CACHED_ONLY


def test_old_durations_leave_the_window(rig: Rig) -> None:
    """Durations older than window_s no longer count in the p99."""
    rig.finish(9.0)
    rig.clock.now += SETTINGS.window_s + 1
    assert rig.controller.signals().p99_seconds == 0.0


def test_level_decides_at_most_once_per_interval(rig: Rig) -> None:
    """level() reuses the last decision within evaluate_interval_s."""
    assert rig.controller.level() is Level.NORMAL
    rig.breakers.value = 4
    assert rig.controller.level() is Level.NORMAL
    rig.clock.now += 0.5
    assert rig.controller.level() is Level.SHEDDING


def test_disabled_is_always_normal() -> None:
    """With enabled=false the level is 0 whatever the signals."""
    off = SETTINGS.model_copy(update={"enabled": False})
    controller = DegradationController(off, K2Metrics(CollectorRegistry()), breakers=Box(9))
    assert controller.evaluate() is Level.NORMAL
    assert controller.level() is Level.NORMAL


def test_every_change_is_logged_with_its_signals(rig: Rig) -> None:
    """A change logs the level, the direction, the causes and every signal."""
    rig.memory.value = 2500
    with capture_logs() as logs:
        rig.controller.evaluate()
    (line,) = [entry for entry in logs if entry["event"] == "degradation_level_changed"]
    changed = (line["previous"], line["level"], line["direction"], line["causes"])
    assert changed == (0, 2, "up", ["memory_bytes"])
    assert line["memory_bytes"] == 2500
    assert {"p99_seconds", "in_flight", "open_breakers"} <= set(line)


def test_thresholds_must_rise() -> None:
    """Thresholds that fall from one level to the next are refused."""
    with pytest.raises(ValueError, match="non-decreasing"):
        DegradationSettings(in_flight=(10, 5, 30, 40))


def test_saturated_at_level_4s_in_flight_threshold(rig: Rig) -> None:
    """As many requests in flight as level 4's threshold saturate the process before any decision."""
    for _ in range(39):
        rig.controller.request_started()
    assert not rig.controller.saturated()
    rig.controller.request_started()
    assert rig.controller.saturated()


def test_every_level_says_what_it_means() -> None:
    """Each level has a one-line meaning for the pipeline's health answer, none shared."""
    meanings = [level.meaning for level in Level]
    assert all(meanings)
    assert len(set(meanings)) == len(Level)
    assert Level.NORMAL.meaning.startswith("normal")
