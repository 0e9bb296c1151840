"""What every platform service offers: install, start, stop and a health check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Health:
    """A service's state as ``k2 platform status`` shows it."""

    name: str
    installed: bool
    running: bool
    healthy: bool
    endpoint: str
    detail: str = ""
    version: str = ""


class Service(Protocol):
    """One real service of the platform; every method is idempotent."""

    name: str

    def installed(self) -> bool:
        """Whether the service's software is present."""
        ...

    def install(self) -> None:
        """Fetch or build the service's software when missing."""
        ...

    def start(self) -> None:
        """Start the service (initialising its data on first start) and wait until it is healthy."""
        ...

    def stop(self) -> None:
        """Stop the service; its data stays."""
        ...

    def health(self) -> Health:
        """Check the service without changing it."""
        ...
