"""Half-open probes the API makes itself. A breaker closes again when a call through it succeeds
after its reset timeout; real traffic makes that call, except where the API stopped making it:
a degradation level answers ``include_live`` from the lake alone (no Kafka call), level 3 answers
from caches. So once a breaker's reset timeout has passed, the API probes its dependency in the
background, and recovers without a restart whatever the traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pyarrow.fs as pafs
import structlog
from fastapi import FastAPI

from k2.errors import DependencyUnavailableError
from k2.lake.catalog import catalog_properties
from k2.lake.outages import catalog_call, store_call
from k2.lake.storage import file_system
from k2.resilience.breakers import Breakers, Dependency
from k2.settings import K2Settings

log = structlog.get_logger(__name__)

#: How often the open breakers are looked at.
PROBE_INTERVAL_S = 1.0


def _probes(app: FastAPI, settings: K2Settings) -> dict[Dependency, Callable[[], None]]:
    """One cheap call per dependency the API uses: list the catalog's tables, look at the
    warehouse's top folder, ask Kafka for its metadata (when the API has read the tail).
    """
    breakers: Breakers = app.state.breakers

    def catalog() -> None:
        engine = app.state.engine
        with catalog_call(breakers, "probe the catalog"):
            engine.catalog.list_tables(engine.namespace)

    def object_store() -> None:
        with store_call(breakers, "probe the object store"):
            files, path = file_system(settings.warehouse, catalog_properties(settings))
            files.get_file_info(pafs.FileSelector(path))  # list the warehouse's top folder

    def kafka() -> None:
        tail = getattr(app.state, "tail", None)
        if tail is not None:
            tail.probe()

    return {Dependency.CATALOG: catalog, Dependency.OBJECT_STORE: object_store, Dependency.KAFKA: kafka}


async def keep_probing(app: FastAPI, settings: K2Settings) -> None:
    """Probe every dependency whose breaker is open and due for its half-open call; forever."""
    probes = _probes(app, settings)
    breakers: Breakers = app.state.breakers
    while True:
        await asyncio.sleep(PROBE_INTERVAL_S)
        for dependency, probe in probes.items():
            if breakers.state(dependency) == "open" and breakers.retry_after_s(dependency) == 0:
                log.info("breaker_probe", dependency=dependency.value)
                with contextlib.suppress(DependencyUnavailableError):
                    await asyncio.to_thread(probe)
