"""The services' versions are written once: the packaged poms (Kafka, Apicurio Registry) and
MinIO's pinned module version are the source, and the container stack names the same releases.
"""

from __future__ import annotations

import re
from pathlib import Path

from k2.platform.apicurio import apicurio_version
from k2.platform.kafka import kafka_version
from k2.platform.minio import VERSION as MINIO_VERSION

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


def _images() -> dict[str, str]:
    """Each image of the compose file, by repository, with its tag."""
    found = re.findall(r"^\s+image:\s*([^\s:#]+):([^\s#]+)", COMPOSE.read_text(), re.MULTILINE)
    return dict(found)


def test_the_container_stack_runs_the_platforms_kafka_and_registry() -> None:
    """docker-compose.yml's Kafka and Apicurio images are the versions `k2 platform up` installs."""
    images = _images()
    assert images["apache/kafka"] == kafka_version()
    assert images["apicurio/apicurio-registry"] == apicurio_version()


def test_minio_is_pinned() -> None:
    """MinIO is built at a fixed module version, never `latest`; the compose file says which build
    the platform runs (MinIO publishes release images, not one per commit, so the image is the
    nearest release, named beside it).
    """
    assert re.fullmatch(r"v0\.0\.0-\d{14}-[0-9a-f]{12}", MINIO_VERSION)
    assert MINIO_VERSION in COMPOSE.read_text()
