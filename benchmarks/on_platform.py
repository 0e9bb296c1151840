"""Benchmarks that run on the platform's services: start what is not running, give the run an id
of its own to name its topics and subjects after, and remove them and stop what was started after.
:func:`private_platform_run` instead starts a platform of the run's own on free ports, for a
benchmark that must not load the shared one, and removes it whole after.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from benchmarks.common import REPO_ROOT, log
from k2.lake.catalog import catalog_properties, close_catalog, open_catalog
from k2.lake.storage import file_system
from k2.obs.logging import configure_logging
from k2.platform import stack
from k2.settings import K2Settings, LogLevel, ObsSettings, Profile
from k2.testing.platforms import on_free_ports, scratch_root

#: How long the clean-up waits for the broker to time a closed sink out of its group.
GROUP_WAIT_S = 30.0


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


@contextmanager
def private_platform_run(title: str, services: tuple[str, ...]) -> Iterator[PlatformRun]:
    """Start ``services`` of a platform of this run's own (free ports, data in a scratch folder of
    the repository's ``.k2``), then stop them and remove the folder, whatever happened.
    """
    configure_logging(ObsSettings(log_level=LogLevel.WARNING, log_format="console"))
    with scratch_root("bench-", REPO_ROOT / ".k2") as root:
        base = on_free_ports(root)
        if "trino" in services:
            base = base.model_copy(update={"platform": base.platform.model_copy(update={"trino": True})})
        started = []
        try:
            for service in stack.services(base):
                if service.name in services:
                    service.start()
                    started.append(service)
            run = PlatformRun(base, uuid.uuid4().hex[:8], {s.name: s.health().detail for s in started})
            log(f"{title}: run {run.run_id} on a private platform under {root}")
            yield run
        finally:
            for service in reversed(started):
                try:
                    service.stop()
                except Exception as exc:  # stop every service whatever one of them does
                    log(f"{title}: stopping {service.name} failed: {exc}")


def isolated(base: K2Settings, run: str, phase: str) -> K2Settings:
    """``base`` with a topic prefix, catalog, warehouse folder and consumer group of this phase's own."""
    return base.model_copy(
        update={
            "lake": base.lake.model_copy(
                update={
                    "catalog_name": f"bench_{run}_{phase}",
                    "warehouse": f"s3://{base.platform.s3_bucket}/bench/{run}/{phase}",
                }
            ),
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"bench-{run}.{phase}."}),
            "stream": base.stream.model_copy(
                update={"group_id": f"bench-{run}-{phase}", "instance_id": f"bench-{run}-{phase}"}
            ),
        }
    )


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


def _delete_groups(admin: AdminClient, groups: list[str]) -> None:
    """Delete the sinks' consumer groups. A sink is a static member, which does not leave its group
    on closing: the group empties once the broker times the member out (``session.timeout.ms``).
    """
    deadline = time.monotonic() + GROUP_WAIT_S
    while groups:
        busy = []
        for group, future in admin.delete_consumer_groups(groups, request_timeout=30).items():
            try:
                future.result()
            except KafkaException as exc:
                code = exc.args[0].code()
                if code == KafkaError.NON_EMPTY_GROUP and time.monotonic() < deadline:
                    busy.append(group)
                elif code != KafkaError.GROUP_ID_NOT_FOUND:
                    raise
        groups = busy
        if groups:
            time.sleep(1.0)


def clean_up(run: PlatformRun, lakes: list[K2Settings]) -> list[str]:
    """Remove this run's topics, sink consumer groups, registry subjects, tables and warehouse
    folder; return what could not be removed.
    """
    base = run.base
    failed = remove_topics_and_subjects(run)
    try:
        _delete_groups(
            AdminClient({"bootstrap.servers": base.kafka.bootstrap_servers}),
            [s.stream.group_id for s in lakes],
        )
    except Exception as exc:
        failed.append(f"Kafka consumer groups: {exc}")
    for settings in lakes:
        try:
            catalog = open_catalog(settings)
            try:
                for identifier in catalog.list_tables(settings.lake.namespace):
                    catalog.drop_table(identifier)
                catalog.drop_namespace(settings.lake.namespace)
            finally:
                close_catalog(catalog)
        except Exception as exc:
            failed.append(f"catalog {settings.lake.catalog_name}: {exc}")
    try:
        files, path = file_system(
            f"s3://{base.platform.s3_bucket}/bench/{run.run_id}", catalog_properties(base)
        )
        files.delete_dir(path)
    except Exception as exc:
        failed.append(f"warehouse folder bench/{run.run_id}: {exc}")
    return failed
