"""The platform as a whole: its services in start order.

K2 uses the running platform under ``K2_PROFILE=platform`` (``k2 --profile platform …``); see
:class:`k2.settings.K2Settings`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from k2.platform.apicurio import ApicurioRegistry
from k2.platform.kafka import Kafka
from k2.platform.minio import Minio
from k2.platform.postgres import Postgres
from k2.platform.prometheus import Alertmanager, Prometheus
from k2.platform.service import Health, Service
from k2.platform.trino import Trino
from k2.settings import K2Settings


def services(settings: K2Settings) -> list[Service]:
    """The platform's services in the order they start (the registry stores in PostgreSQL;
    Prometheus sends alerts to Alertmanager), with Trino last when it is asked for
    (``K2_PLATFORM_TRINO``) or already runs, so that ``down`` and ``status`` cover it.
    """
    started: list[Service] = [
        Postgres(settings),
        Minio(settings),
        Kafka(settings),
        ApicurioRegistry(settings),
        Alertmanager(settings),
        Prometheus(settings),
    ]
    trino = Trino(settings)
    if settings.platform.trino or trino.running():
        started.append(trino)
    return started


def up(settings: K2Settings, note: Callable[[str], None] | None = None) -> list[Health]:
    """Install what is missing and start every service; return their health. ``note`` hears of
    each step as it begins and ends, with its time.
    """
    say = note or (lambda _: None)
    started = services(settings)
    for service in started:
        if not service.installed():
            say(f"{service.name}: installing (the first install takes minutes) …")
            began = time.monotonic()
            service.install()
            say(f"{service.name}: installed in {time.monotonic() - began:.1f} s")
        began = time.monotonic()
        service.start()
        say(f"{service.name}: running ({time.monotonic() - began:.1f} s)")
    return [service.health() for service in started]


def down(settings: K2Settings) -> None:
    """Stop every service, last started first; data stays."""
    for service in reversed(services(settings)):
        service.stop()


def status(settings: K2Settings) -> list[Health]:
    """Each service's health."""
    return [service.health() for service in services(settings)]
