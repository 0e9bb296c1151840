"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens the lake."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from k2 import __version__
from k2.api import exception_handlers
from k2.api.answers import AnswerCache
from k2.api.middleware import RequestMiddleware
from k2.api.probes import keep_probing
from k2.api.routes import (
    aggregations,
    console,
    coverage,
    health,
    live,
    metadata,
    pipeline,
    queries,
    summary,
    ticks,
)
from k2.api.security import ApiKeys, RateLimiter
from k2.lake.catalog import close_catalog, open_catalog
from k2.obs.exposition import exported, process_metrics
from k2.obs.metrics import K2Metrics
from k2.query.engine import QueryEngine
from k2.query.gauges import LakeGauges
from k2.query.preload import preload
from k2.query.reader import open_reader
from k2.resilience.breakers import Breakers
from k2.resilience.degradation import DegradationController
from k2.settings import K2Settings

DESCRIPTION = """
Market data from K2's Iceberg lake: trades, quotes, daily summaries, symbols, statistics and
snapshots, with time travel on every read (`as_of_snapshot`, `as_of_time`, `as_of_tag`).

Every `/v1` call needs an `X-API-Key` header and counts against that key's rate limit (headers
`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`). Decimals are exact strings;
times are ISO-8601 UTC. Errors always have the body
`{"error": {"code", "message", "correlation_id", "details"}}`.
"""


ROW_GROUPS = "row_groups"
#: Why a request is refused before any work (``k2_http_requests_shed_total``'s reasons).
SHED_REASONS = ("degraded", "breaker_open")
#: The component label of the API's metrics (job ``k2-api`` in Prometheus).
COMPONENT = "api"
PRELOAD_STOP_S = 30.0
#: Shortest pause between two background decisions of the degradation level, so that a zero
#: interval (tests) does not spin the event loop.
DECIDE_FLOOR_S = 0.05


async def _keep_deciding(degradation: DegradationController) -> None:
    """Decide the level on a clock as well as per request: after a burst, with no traffic left to
    ask, the level still falls (and the gauge a scrape reads is current).
    """
    while True:
        degradation.level()
        await asyncio.sleep(max(degradation.settings.evaluate_interval_s, DECIDE_FLOOR_S))


def _counting(metrics: K2Metrics, cache: str) -> Callable[[bool], None]:
    """A look-up callback counting the hits and misses of one cache."""
    hits, misses = (
        metrics.query_cache_hits.labels(cache=cache),
        metrics.query_cache_misses.labels(cache=cache),
    )

    def count(hit: bool) -> None:
        (hits if hit else misses).inc()

    return count


def server_app() -> FastAPI:
    """The API as ``k2 serve`` runs it (uvicorn's factory in each worker process): settings from
    the environment, and the objects alive once the lake is open frozen out of Python's cyclic
    garbage collector. Those are mostly the imported modules (~200k objects): a full collection
    walking them all paused a request here for ~90-110 ms; frozen, a collection only walks what
    the server made since.
    """
    return create_app(freeze_startup_objects=True)


def _count_from_zero(metrics: K2Metrics) -> None:
    """The shed and degraded counters of every reason and level at zero until the first, so a
    rate over them reads 0, not "no data".
    """
    for reason in SHED_REASONS:
        metrics.http_shed.labels(reason=reason)
    for level in range(1, 5):
        metrics.http_degraded.labels(level=str(level))


def create_app(
    settings: K2Settings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    freeze_startup_objects: bool = False,
) -> FastAPI:
    """Build the API over the lake ``settings`` name.

    Args:
        settings: K2's settings; read from the environment when omitted.
        registry: where metrics are registered; a fresh registry when omitted.
        freeze_startup_objects: when the lake is open, collect garbage once and freeze every
            object left (``gc.freeze``): for a server process, which lives on; not for a process
            that builds many apps (tests), whose frozen objects would never be collected.
    """
    settings = settings or K2Settings()
    metrics = K2Metrics(registry) if registry is not None else process_metrics(settings, COMPONENT)
    _count_from_zero(metrics)
    # One controller per app, so per uvicorn worker process: each decides from its own load.
    breakers = Breakers(settings.resilience, metrics)
    degradation = DegradationController(settings.degradation, metrics, breakers=breakers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = open_catalog(settings)
        # The caches' memory is the whole API's: each worker process holds its share.
        query = settings.query.model_copy(
            update={"cache_bytes": settings.query.cache_bytes // settings.api.workers}
        )
        app.state.engine = QueryEngine(
            catalog,
            settings.lake.namespace,
            query,
            on_lookup=_counting(metrics, ROW_GROUPS),
            breakers=app.state.breakers,
        )
        app.state.reader = open_reader(settings, app.state.engine)
        lake_gauges = LakeGauges(app.state.engine)
        metrics.registry.register(lake_gauges)
        stop = threading.Event()
        warming = threading.Thread(
            target=preload, args=(app.state.engine, query.preload_days, stop), name="k2-preload", daemon=True
        )
        if query.preload_days:
            warming.start()
        if freeze_startup_objects:
            gc.collect()
            gc.freeze()
        background = [
            asyncio.create_task(_keep_deciding(degradation), name="k2-degradation"),
            asyncio.create_task(keep_probing(app, settings), name="k2-breaker-probes"),
        ]
        try:
            # Each worker process serves its own metrics too, registered for the platform's
            # Prometheus (the API port's /metrics answers from whichever worker takes the request).
            with exported(settings, metrics, COMPONENT, None):
                yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            metrics.registry.unregister(lake_gauges)
            stop.set()
            if warming.is_alive():
                warming.join(PRELOAD_STOP_S)
            if getattr(app.state, "tail", None) is not None:
                app.state.tail.close()
                app.state.tail = None
            app.state.engine.close()
            close_catalog(catalog)

    app = FastAPI(title="K2 market data API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.breakers = breakers
    app.state.api_keys = ApiKeys(settings.api)
    app.state.rate_limiter = RateLimiter(settings.api)
    app.state.answers = AnswerCache(settings.api.answer_cache_bytes // settings.api.workers, metrics)
    app.state.degradation = degradation
    exception_handlers.install(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.api.max_body_bytes,
        degradation=degradation,
    )
    for router in (
        health.router,
        ticks.router,
        queries.router,
        summary.router,
        aggregations.router,
        metadata.router,
        pipeline.router,
        coverage.router,
        live.router,
        console.router,
    ):
        app.include_router(router)
    app.mount(console.PATH, console.assets(), name="console")
    return app
