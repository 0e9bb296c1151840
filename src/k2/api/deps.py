"""Small dependencies the routes declare: settings, engine, reader, metrics and the authenticated
caller. The engine answers from Iceberg's metadata (snapshots, statistics) and runs what only
DuckDB does; the reader (``K2_QUERY_ENGINE``) answers ticks, bars and summaries.

They are coroutines although they never wait: FastAPI runs a plain function dependency on its
thread pool, and a hop there and back per dependency cost more than the work itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from k2.api.answers import AnswerCache
from k2.api.errors import RateLimitedError
from k2.obs.metrics import K2Metrics
from k2.query.engine import QueryEngine
from k2.query.gauges import TableReadings
from k2.query.pipeline import engine_readings
from k2.query.reader import Reader
from k2.resilience.breakers import Breakers
from k2.settings import ApiSettings, K2Settings
from k2.stream.tail import KafkaTail

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your K2 API key.")


async def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings.api
    return settings


async def _engine(request: Request) -> QueryEngine:
    engine: QueryEngine = request.app.state.engine
    return engine


async def _reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


async def _metrics(request: Request) -> K2Metrics:
    metrics: K2Metrics = request.app.state.metrics
    return metrics


async def _breakers(request: Request) -> Breakers:
    breakers: Breakers = request.app.state.breakers
    return breakers


async def _answers(request: Request) -> AnswerCache:
    answers: AnswerCache = request.app.state.answers
    return answers


async def _tail(request: Request) -> KafkaTail | None:
    """The app's Kafka tail reader, made on first use; None when K2 runs without Kafka."""
    state = request.app.state
    settings: K2Settings = state.settings
    if not settings.kafka_configured:
        return None
    if getattr(state, "tail", None) is None:
        state.tail = KafkaTail(settings, state.breakers)
    tail: KafkaTail = state.tail
    return tail


async def _pipeline_readings(request: Request) -> TableReadings:
    """The app's readings of the pipeline's tables, made on first use (they keep each table's
    figures until its snapshot changes).
    """
    state = request.app.state
    if getattr(state, "pipeline_readings", None) is None:
        state.pipeline_readings = engine_readings(state.engine)
    readings: TableReadings = state.pipeline_readings
    return readings


async def authenticate(request: Request, key: Annotated[str | None, Security(_api_key)] = None) -> str:
    """Check the API key and count the call against its rate limit; return the caller's name.

    Raises:
        ApiKeyMissingError, ApiKeyInvalidError: for a missing or wrong key.
        RateLimitedError: when the key is over its limit.
    """
    caller: str = request.app.state.api_keys.caller(key)
    request.state.caller = caller
    route = request.scope.get("route")
    try:
        request.state.allowance = request.app.state.rate_limiter.hit(caller)
    except RateLimitedError:
        request.app.state.metrics.rate_limited.labels(route=getattr(route, "path", "*")).inc()
        raise
    return caller


ApiSettingsDep = Annotated[ApiSettings, Depends(_settings)]
EngineDep = Annotated[QueryEngine, Depends(_engine)]
ReaderDep = Annotated[Reader, Depends(_reader)]
MetricsDep = Annotated[K2Metrics, Depends(_metrics)]
CallerDep = Annotated[str, Depends(authenticate)]
TailDep = Annotated[KafkaTail | None, Depends(_tail)]
AnswersDep = Annotated[AnswerCache, Depends(_answers)]
BreakersDep = Annotated[Breakers, Depends(_breakers)]
PipelineReadingsDep = Annotated[TableReadings, Depends(_pipeline_readings)]
