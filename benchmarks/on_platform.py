"""Benchmarks that run on the platform's services: start what is not running, give the run an id
of its own to name its topics and subjects after, and remove them and stop what was started after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from benchmarks.common import log
from k2.obs.logging import configure_logging
from k2.platform import stack
from k2.settings import K2Settings, LogLevel, ObsSettings, Profile


@dataclass(frozen=True, slots=True)
class PlatformRun:
    """One benchmark run on the platform.

    Attributes:
        base: the platform profile's settings.
        run_id: names what the run creates: topics and subjects under ``bench-<run_id>.``.
        services: each service's health detail when the run started (versions, for the report).
    """

    base: K2Settings
    run_id: str
    services: dict[str, str]

    @property
    def prefix(self) -> str:
        """The prefix of the run's topics and registry subjects."""
        return f"bench-{self.run_id}."


@contextmanager
def platform_run(title: str) -> Iterator[PlatformRun]:
    """Start the platform's services that are not running, and stop them again at the end."""
    configure_logging(ObsSettings(log_level=LogLevel.WARNING, log_format="console"))
    base = K2Settings(profile=Profile.PLATFORM)
    running = {h.name for h in stack.status(base) if h.running}
    stack.up(base)
    run = PlatformRun(base, uuid.uuid4().hex[:8], {h.name: h.detail for h in stack.status(base)})
    log(f"{title}: run {run.run_id} (topics and subjects under {run.prefix})")
    try:
        yield run
    finally:
        for service in reversed(stack.services(base)):
            if service.name not in running:
                service.stop()


def remove_topics_and_subjects(run: PlatformRun) -> list[str]:
    """Remove the run's Kafka topics and registry subjects; return what could not be removed."""
    failed: list[str] = []
    admin = AdminClient({"bootstrap.servers": run.base.kafka.bootstrap_servers})
    try:
        topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(run.prefix)]
        for future in (admin.delete_topics(topics, operation_timeout=30) if topics else {}).values():
            future.result()
    except Exception as exc:
        failed.append(f"Kafka topics: {exc}")
    try:
        with SchemaRegistryClient({"url": run.base.kafka.schema_registry_url}) as registry:
            for subject in registry.get_subjects():
                if subject.startswith(run.prefix):
                    registry.delete_subject(subject)
                    registry.delete_subject(subject, permanent=True)
    except Exception as exc:
        failed.append(f"registry subjects: {exc}")
    return failed
