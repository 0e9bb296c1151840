"""Property tests over the API's own OpenAPI schema: whatever a client sends, never a 5xx."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from k2.api import create_app
from k2.ingest.sources.synthetic import SyntheticMarket
from k2.settings import ApiSettings, K2Settings
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration

# The app is built at import (schemathesis reads its schema to make the tests), but it opens its
# lake only in its lifespan, after the fixture below has filled the lake.
LAKE_DIR = Path(tempfile.gettempdir()) / f"k2-schema-{os.getpid()}"
APP = create_app(
    K2Settings(
        data_dir=LAKE_DIR, api=ApiSettings(keys=SecretStr("fuzz:fuzz-key"), rate_limit="1000000/minute")
    ),
    registry=CollectorRegistry(),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _filled_lake() -> Iterator[None]:
    EmbeddedLake.create(LAKE_DIR).load_synthetic(SyntheticMarket(symbols=2, days=2, trades_per_day=200))
    try:
        with TestClient(APP):
            yield
    finally:
        shutil.rmtree(LAKE_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case: schemathesis.Case[Any]) -> None:
    """Generated requests, valid or not, get a 2xx/4xx answer with K2's error body, never a 5xx."""
    case.call_and_validate(headers={"X-API-Key": "fuzz-key"}, checks=[not_a_server_error])
