"""A platform port held by another process stops ``k2 platform up`` with a clear error, and K2
never adopts the service it finds there (another checkout's, or another program).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from k2.errors import ConfigurationError
from k2.platform.apicurio import ApicurioRegistry
from k2.platform.kafka import Kafka
from k2.platform.minio import Minio
from k2.platform.postgres import Postgres
from k2.platform.prometheus import Alertmanager, Prometheus
from k2.platform.service import Service
from k2.settings import K2Settings, PlatformSettings, Profile
from tests.fixtures.private_platform import scratch_root

pytestmark = [pytest.mark.platform]

SERVICES: dict[str, tuple[Callable[[K2Settings], Service], str]] = {
    "postgres": (Postgres, "postgres_port"),
    "minio": (Minio, "minio_port"),
    "kafka": (Kafka, "kafka_port"),
    "registry": (ApicurioRegistry, "registry_port"),
    "prometheus": (Prometheus, "prometheus_port"),
    "alertmanager": (Alertmanager, "alertmanager_port"),
}


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory of the test's own, removed after."""
    with scratch_root("ports-") as root:
        yield root


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_a_held_port_is_reported_not_adopted(name: str, held_port: int, data_dir: Path) -> None:
    """Starting a service whose port another process holds fails before starting anything, and
    the error names the port, the holding process and the setting that moves the port.
    """
    kind, port_field = SERVICES[name]
    settings = K2Settings(
        profile=Profile.PLATFORM,
        data_dir=data_dir / "lake",
        platform=PlatformSettings.model_validate({"data": data_dir / "platform", port_field: held_port}),
    )
    service = kind(settings)
    with pytest.raises(ConfigurationError) as refused:
        service.start()
    message = str(refused.value)
    assert f"port {held_port}" in message
    assert f"pid {os.getpid()}" in message
    assert f"K2_PLATFORM_{port_field.upper()}" in message
    assert not service.health().running
