"""The API's probes and scrape path in deploy/kubernetes/api.yaml are answered by K2's app: 200
from liveness and (with a reachable lake) readiness, and Prometheus text from the scrape path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from k2.api import create_app
from k2.testing import EmbeddedLake
from tests.unit.deploy._manifests import find, pod_annotations, pod_spec

pytestmark = pytest.mark.integration


def test_the_manifests_probes_and_scrape_path_are_answered(tmp_path: Path) -> None:
    """Liveness and readiness answer 200 on a healthy lake; the scrape path serves K2's metrics."""
    deployment = find("Deployment", "k2-api")
    (container,) = pod_spec(deployment)["containers"]  # type: ignore[index]
    lake = EmbeddedLake.create(tmp_path / "lake")
    try:
        with TestClient(create_app(lake.settings, registry=CollectorRegistry())) as client:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert client.get(container[probe]["httpGet"]["path"]).status_code == 200, probe
            scraped = client.get(pod_annotations(deployment)["prometheus.io/path"])
    finally:
        lake.close()
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "# TYPE k2_" in scraped.text
