"""Platforms of a caller's own (a test module, a benchmark): their own data directory and free
ports, never the shared platform on the default ports.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from k2.platform.process import port_open
from k2.settings import K2Settings, PlatformSettings, Profile
from k2.testing.processes import free_ports


@contextmanager
def scratch_root(prefix: str, parent: Path) -> Iterator[Path]:
    """A folder of the caller's own under ``parent`` (a git-ignored ``.k2``), removed after.

    PostgreSQL runs as ``postgres`` when the caller runs as root and must pass every parent
    directory, which pytest's 0700 temporary directories forbid; hence 0755.
    """
    parent.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def on_free_ports(data_dir: Path, home: Path | None = None, brokers: int = 1) -> K2Settings:
    """Platform settings with the data in ``data_dir`` (the software in ``home``, if given), and
    every service, and each of ``brokers`` Kafka nodes, on a port free right now.
    """
    while True:
        kafka, controller, registry, postgres, minio, console, prometheus, alertmanager, trino = free_ports(9)
        platform = PlatformSettings(
            data=data_dir / "platform",
            kafka_port=kafka,
            kafka_controller_port=controller,
            kafka_brokers=brokers,
            registry_port=registry,
            postgres_port=postgres,
            minio_port=minio,
            minio_console_port=console,
            prometheus_port=prometheus,
            alertmanager_port=alertmanager,
            trino_port=trino,
        )
        # nodes past the first listen a port step above the first: those ports must be free too
        if not any(port_open(port) for ports in platform.kafka_ports[1:] for port in ports):
            break
    if home is not None:
        platform = platform.model_copy(update={"home": home})
    return K2Settings(profile=Profile.PLATFORM, data_dir=data_dir / "lake", platform=platform)
