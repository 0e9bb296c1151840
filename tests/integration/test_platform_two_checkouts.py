"""Two checkouts on one machine: two data directories with their own ports bring their platforms
up at the same time, from an empty software cache they share, and both come up healthy.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from k2.platform import stack
from k2.platform.service import Health
from k2.testing.platforms import on_free_ports
from tests.fixtures.private_platform import scratch_root

pytestmark = [pytest.mark.platform]


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder for the shared software cache and both data directories, removed after."""
    with scratch_root("two-checkouts-") as root:
        yield root


def test_two_checkouts_come_up_together_from_an_empty_cache(shared_root: Path) -> None:
    """Both platforms install into one empty cache at once (each install waits for the other's
    lock) and start on their own ports; neither adopts the other's services.
    """
    home = shared_root / "software"
    checkouts = [on_free_ports(shared_root / name, home) for name in ("first", "second")]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results: list[list[Health]] = list(pool.map(stack.up, checkouts))
        for settings, health in zip(checkouts, results, strict=True):
            assert all(h.healthy for h in health), health
            endpoints = {h.name: h.endpoint for h in health}
            assert endpoints["postgres"].endswith(f":{settings.platform.postgres_port}")
            assert endpoints["kafka"].endswith(f":{settings.platform.kafka_port}")
    finally:
        for settings in checkouts:
            stack.down(settings)
