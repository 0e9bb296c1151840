"""What a benchmark hands back: measures of K2 beside the limit, extra tables and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from benchmarks.common import MIB


class Unit(Enum):
    """How a figure is shown; ``higher_is_better`` says which way the ratio reads."""

    ROWS_PER_SECOND = "rows/s"
    MESSAGES_PER_SECOND = "msg/s"
    REQUESTS_PER_SECOND = "requests/s"
    BYTES = "bytes"
    SECONDS = "s"
    MILLISECONDS = "ms"
    RATIO = "x"
    COUNT = "count"

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger figure is a better one."""
        return self in (Unit.ROWS_PER_SECOND, Unit.MESSAGES_PER_SECOND, Unit.REQUESTS_PER_SECOND)

    def show(self, value: float) -> str:
        """``value`` formatted for the report."""
        match self:
            case Unit.ROWS_PER_SECOND:
                return f"{value / 1e6:.2f} M rows/s" if value >= 1e6 else f"{value / 1e3:,.0f} k rows/s"
            case Unit.MESSAGES_PER_SECOND:
                return f"{value / 1e3:,.1f} k msg/s" if value >= 1e3 else f"{value:,.0f} msg/s"
            case Unit.REQUESTS_PER_SECOND:
                return f"{value:,.0f} requests/s" if value >= 100 else f"{value:.1f} requests/s"
            case Unit.BYTES:
                return f"{value / MIB:,.0f} MiB"
            case Unit.SECONDS:
                return f"{value:,.1f} s"
            case Unit.MILLISECONDS:
                return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"
            case Unit.RATIO:
                return f"{value:.2f}x"
            case Unit.COUNT:
                return f"{value:,.0f}"


@dataclass(frozen=True, slots=True)
class Target:
    """A bound K2's figure should respect: at least ``bound`` (rates) or at most ``bound``."""

    bound: float
    unit: Unit

    def met(self, value: float) -> bool:
        """Whether ``value`` respects the bound."""
        return value >= self.bound if self.unit.higher_is_better else value <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.unit.higher_is_better else '≤'} {self.unit.show(self.bound)}"


@dataclass(frozen=True, slots=True)
class Measure:
    """One figure of K2 beside the same figure of the limit (None: no limit to compare with)."""

    label: str
    unit: Unit
    k2: float
    limit: float | None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        """K2 / limit."""
        if self.limit is None or self.limit == 0:
            return None
        return self.k2 / self.limit

    @property
    def met(self) -> bool | None:
        """Whether K2 meets the target (None: no target)."""
        return None if self.target is None else self.target.met(self.k2)


@dataclass(frozen=True, slots=True)
class Table:
    """A free-form table of already formatted cells."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]


@dataclass
class Section:
    """The outcome of one benchmark."""

    title: str
    description: str
    limit_name: str
    measures: list[Measure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
