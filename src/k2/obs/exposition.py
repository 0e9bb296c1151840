"""A K2 process's metrics endpoint: its registry, served on loopback, registered with the
platform's Prometheus (file-based service discovery) so it is scraped without editing a config.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from prometheus_client import start_http_server

from k2 import __version__
from k2.obs.discovery import registered
from k2.obs.metrics import K2Metrics, process_registry
from k2.settings import K2Settings, Profile

log = structlog.get_logger(__name__)

#: Prometheus names a K2 process's job ``k2-<component>`` (``k2-api``, ``k2-sink``, …).
JOB_PREFIX = "k2-"
#: The volume label of the disk gauges: the one holding K2's data directory.
DATA_VOLUME = "data"


def process_metrics(settings: K2Settings, component: str) -> K2Metrics:
    """K2's collectors for one process running ``component`` (api, sink, feed, producer, loader):
    the standard process collectors, ``k2_build_info`` and the data volume's free space.
    """
    metrics = K2Metrics(process_registry())
    metrics.build.info({"version": __version__, "component": component})
    data = _existing(settings.data_dir)
    metrics.disk_free.labels(DATA_VOLUME).set_function(lambda: shutil.disk_usage(data).free)
    metrics.disk_capacity.labels(DATA_VOLUME).set_function(lambda: shutil.disk_usage(data).total)
    return metrics


@contextmanager
def exported(
    settings: K2Settings, metrics: K2Metrics, component: str, port: int | None
) -> Iterator[int | None]:
    """Serve ``metrics`` on ``port`` of ``K2_OBS_METRICS_HOST`` (loopback by default) while the
    block runs, and yield the port.

    Under the platform profile the endpoint is always served (on any free port when ``port`` is
    None) and registered for the platform's Prometheus as job ``k2-<component>``; in the embedded
    profile only when a port is given. Yields None when nothing is served.
    """
    if port is None and settings.profile is not Profile.PLATFORM:
        yield None
        return
    server, thread = start_http_server(port or 0, addr=settings.obs.metrics_host, registry=metrics.registry)
    served = int(server.server_port)
    log.info("metrics_served", component=component, port=served)
    try:
        with registered(settings, f"{JOB_PREFIX}{component}", served):
            yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the data directory may not exist yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
