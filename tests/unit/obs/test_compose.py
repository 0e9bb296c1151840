"""docker-compose.yml's monitoring services: pinned, on loopback, with every file they mount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.obs._catalogue import ROOT, RULES

MONITORING = ("prometheus", "alertmanager", "grafana")


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return compose


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each ``./…`` volume."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            mounts[container] = ROOT / host
    return mounts


@pytest.mark.parametrize("name", MONITORING)
def test_monitoring_services_are_pinned_and_published_on_loopback(name: str) -> None:
    """Each monitoring image has a version tag, and each port is published on 127.0.0.1 only."""
    service = _compose()["services"][name]
    image, _, tag = service["image"].partition(":")
    assert tag, image
    assert tag != "latest", image
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])


@pytest.mark.parametrize("name", MONITORING)
def test_every_file_a_monitoring_service_mounts_exists(name: str) -> None:
    """Each bind-mounted file or folder is in the repository."""
    for host in _bind_mounts(_compose()["services"][name]).values():
        assert host.exists(), host


def test_prometheus_loads_k2s_rule_files_and_scrapes_k2s_services() -> None:
    """Prometheus mounts src/k2/obs/rules where its rule_files glob looks, and scrapes k2-api and
    k2-sink on the ports those services serve metrics on.
    """
    compose = _compose()
    mounts = _bind_mounts(compose["services"]["prometheus"])
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text(encoding="utf-8"))
    rule_mount = next(container for container, host in mounts.items() if host.resolve() == RULES.resolve())
    assert config["rule_files"] == [f"{rule_mount}/*.yml"]
    targets = {
        job["job_name"]: [target for static in job["static_configs"] for target in static["targets"]]
        for job in config["scrape_configs"]
    }
    sink_port = compose["services"]["k2-sink"]["environment"]["K2_OBS_METRICS_PORT"]
    assert targets["k2-api"] == ["k2-api:8000"]
    assert targets["k2-sink"] == [f"k2-sink:{sink_port}"]


def test_grafana_provisions_the_dashboards_folder_it_mounts() -> None:
    """The dashboard provider's path is where the generated dashboards are mounted."""
    mounts = _bind_mounts(_compose()["services"]["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    provider = yaml.safe_load((provisioning / "dashboards" / "k2.yml").read_text(encoding="utf-8"))
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == ROOT / "deploy" / "grafana" / "dashboards"
