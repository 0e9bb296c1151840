"""Two checkouts on one machine: two data directories with their own ports bring their platforms
up at the same time, from an empty software cache they share, and both come up healthy.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from k2.platform import stack
from k2.platform.service import Health
from k2.settings import K2Settings, PlatformSettings, Profile
from tests.fixtures.private_platform import REPO, free_ports

pytestmark = [pytest.mark.platform]


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder for the shared software cache and both data directories (0755: PostgreSQL's user
    must pass it), removed after.
    """
    parent = REPO / ".k2"
    parent.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="two-checkouts-", dir=parent))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _checkout(root: Path, name: str) -> K2Settings:
    kafka, controller, registry, postgres, minio, console = free_ports(6)
    return K2Settings(
        profile=Profile.PLATFORM,
        data_dir=root / name,
        platform=PlatformSettings(
            home=root / "software",
            data=root / name / "platform",
            kafka_port=kafka,
            kafka_controller_port=controller,
            registry_port=registry,
            postgres_port=postgres,
            minio_port=minio,
            minio_console_port=console,
        ),
    )


def test_two_checkouts_come_up_together_from_an_empty_cache(shared_root: Path) -> None:
    """Both platforms install into one empty cache at once (each install waits for the other's
    lock) and start on their own ports; neither adopts the other's services.
    """
    checkouts = [_checkout(shared_root, "first"), _checkout(shared_root, "second")]
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
