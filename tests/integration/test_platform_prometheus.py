"""The platform's Prometheus scrapes what registers through file-based discovery, and sends its
alerts to the platform's Alertmanager: real servers from Debian's packages on free ports, beside a
private MinIO, all stopped and removed after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from k2.obs.discovery import registered
from k2.platform.minio import Minio
from k2.platform.process import run
from k2.platform.prometheus import ALERTMANAGER, Alertmanager, Prometheus, promtool
from k2.platform.service import Service
from k2.settings import K2Settings
from k2.testing.platforms import on_free_ports
from tests.fixtures.private_platform import scratch_root

pytestmark = [pytest.mark.platform]

#: Discovery refreshes every 5 s and scrapes run every 5 s: a target shows within ~10 s.
WAIT_S = 60.0


@pytest.fixture(scope="module")
def monitored() -> Iterator[K2Settings]:
    """MinIO, Alertmanager and Prometheus of the module's own on free ports, stopped and removed after."""
    with scratch_root("prometheus-") as root:
        settings = on_free_ports(root)
        services: list[Service] = [Minio(settings), Alertmanager(settings), Prometheus(settings)]
        try:
            for service in services:
                service.start()
            yield settings
        finally:
            for service in reversed(services):
                service.stop()


def _api(settings: K2Settings, path: str, **params: str) -> Any:
    response = httpx.get(f"{Prometheus(settings).url}/api/v1/{path}", params=params, timeout=5)
    response.raise_for_status()
    return response.json()["data"]


def _eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {WAIT_S:.0f} s")


@pytest.fixture
def probe() -> Iterator[int]:
    """A metrics endpoint in this test process, serving ``k2_test_probe`` = 42; its port."""
    registry = CollectorRegistry()
    Gauge("k2_test_probe", "A value for Prometheus to scrape.", registry=registry).set(42)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_registered_process_is_scraped_then_forgotten(monitored: K2Settings, probe: int) -> None:
    """Within seconds of registering, the process's metric is queryable with its job
    and instance labels; once the registration ends, Prometheus drops the target.
    """
    with registered(monitored, "probe", probe):
        series = _eventually(
            lambda: _api(monitored, "query", query='k2_test_probe{job="probe"}')["result"], "probe scraped"
        )
        assert series[0]["value"][1] == "42"
        assert series[0]["metric"] == {
            "__name__": "k2_test_probe",
            "job": "probe",
            "instance": f"127.0.0.1:{probe}",
        }

    def probe_targets() -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = _api(monitored, "targets", state="active")["activeTargets"]
        return [t for t in active if t["labels"]["job"] == "probe"]

    _eventually(lambda: not probe_targets(), "probe target dropped")


def test_prometheus_scrapes_the_platform(monitored: K2Settings) -> None:
    """Prometheus, Alertmanager and MinIO are scraped and up."""

    def platform_up() -> bool:
        series = _api(monitored, "query", query="up == 1")["result"]
        return {s["metric"]["job"] for s in series} >= {"prometheus", "alertmanager", "minio"}

    _eventually(platform_up, "prometheus, alertmanager and minio up")


def test_prometheus_sends_alerts_to_the_platforms_alertmanager(monitored: K2Settings) -> None:
    """Prometheus lists the platform's Alertmanager as its active alertmanager, which is ready."""
    alertmanager = Alertmanager(monitored)
    expected = f"{alertmanager.url}/api/v2/alerts"
    active = _eventually(
        lambda: _api(monitored, "alertmanagers")["activeAlertmanagers"], "alertmanager discovered"
    )
    assert [a["url"] for a in active] == [expected]
    assert httpx.get(f"{alertmanager.url}/-/ready", timeout=5).status_code == httpx.codes.OK


def test_health_and_restart_reload(monitored: K2Settings) -> None:
    """Both report healthy with their Debian versions; starting them again while they run reloads
    their configurations instead of starting a second server.
    """
    for service in (Alertmanager(monitored), Prometheus(monitored)):
        before = service.health()
        service.start()
        after = service.health()
        assert before.healthy, before
        assert after.healthy, after
        assert "(Debian)" in after.version
        assert after.endpoint.endswith(f":{getattr(monitored.platform, f'{service.name}_port')}")


def test_the_written_configurations_pass_the_projects_own_checks(monitored: K2Settings) -> None:
    """promtool and amtool accept the configurations K2 wrote (JSON, read as YAML)."""
    data, home = monitored.platform_data, monitored.platform.home
    prometheus_yml = data / "prometheus" / "prometheus.yml"
    run([str(promtool(monitored)), "check", "config", str(prometheus_yml)], "promtool check config")
    amtool = ALERTMANAGER.root(home) / "usr" / "bin" / "amtool"
    run([str(amtool), "check-config", str(data / "alertmanager" / "alertmanager.yml")], "amtool check-config")
