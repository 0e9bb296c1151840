"""``GET /health`` (liveness), ``GET /health/ready`` (readiness) and ``GET /metrics`` (no API key
needed). Liveness answers 200 while the process serves, whatever its dependencies do; readiness
probes them and reports every circuit breaker, 503 when K2 cannot serve reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from k2 import __version__
from k2.api import formats
from k2.api.deps import BreakersDep, EngineDep, MetricsDep, ReaderDep
from k2.api.models import DependencyHealth, HealthResponse
from k2.lake.outages import catalog_call

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


@router.get("/health", response_model=HealthResponse)
def health(breakers: BreakersDep) -> Response:
    """Liveness: 200 while the process answers, with each circuit breaker's state; no probe."""
    body = HealthResponse(
        status="ok",
        version=__version__,
        checked_at=datetime.now(UTC),
        dependencies=[],
        breakers=breakers.states(),
    )
    return formats.one(body.model_dump())


@router.get("/health/ready", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def ready(engine: EngineDep, reader: ReaderDep, breakers: BreakersDep) -> Response:
    """Readiness: the catalog answers (through its breaker: an open one fails the probe at once)
    and the engine that reads (DuckDB, or Trino under ``K2_QUERY_ENGINE=trino``) runs a query.
    503 when not, or when any breaker is open.
    """

    def catalog() -> None:
        with catalog_call(breakers, "probe the catalog"):
            engine.catalog.list_tables(engine.namespace)

    checks = [_check("catalog", catalog), _check(reader.name, reader.probe)]
    ok = all(c.status == "ok" for c in checks) and breakers.open_count() == 0
    body = HealthResponse(
        status="ok" if ok else "unavailable",
        version=__version__,
        checked_at=datetime.now(UTC),
        dependencies=checks,
        breakers=breakers.states(),
    )
    response = formats.one(body.model_dump())
    response.status_code = 200 if ok else 503
    return response


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, collectors: MetricsDep) -> Response:
    """Prometheus exposition of K2's collectors."""
    del request
    return Response(generate_latest(collectors.registry), media_type=CONTENT_TYPE_LATEST)
