"""``GET /health`` and ``GET /metrics`` (no API key needed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from k2 import __version__
from k2.api import formats
from k2.api.deps import EngineDep, MetricsDep
from k2.api.models import DependencyHealth, HealthResponse

router = APIRouter(tags=["system"])
log = structlog.get_logger(__name__)


def _check(name: str, probe: Callable[[], object]) -> DependencyHealth:
    began = time.perf_counter()
    try:
        probe()
    except Exception as error:  # a probe's whole job is to report any failure; logged, not raised
        log.warning("health_probe_failed", dependency=name, error_type=type(error).__name__)
        return DependencyHealth(
            name=name, status="failing", latency_ms=_ms(began), message=type(error).__name__
        )
    return DependencyHealth(name=name, status="ok", latency_ms=_ms(began))


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 2)


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def health(engine: EngineDep) -> Response:
    """Whether K2 can serve: the catalog answers and DuckDB runs a query. 503 when not."""
    checks = [
        _check("catalog", lambda: engine.catalog.list_tables(engine.namespace)),
        _check("duckdb", lambda: engine.run("SELECT 1", {})),
    ]
    ok = all(c.status == "ok" for c in checks)
    body = HealthResponse(
        status="ok" if ok else "unavailable",
        version=__version__,
        checked_at=datetime.now(UTC),
        dependencies=checks,
    )
    response = formats.one(body.model_dump())
    response.status_code = 200 if ok else 503
    return response


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, collectors: MetricsDep) -> Response:
    """Prometheus exposition of K2's collectors."""
    del request
    return Response(generate_latest(collectors.registry), media_type=CONTENT_TYPE_LATEST)
