"""``GET /v1/pipeline``: is the pipeline healthy? The lake's tables from their metadata, this API
process's degradation level and breakers, and on the platform the sink and feed processes as
Prometheus scraped them; a part that cannot be read says why, and the answer is still 200.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response

from k2.api import formats
from k2.api.degraded import mode_of
from k2.api.deps import BreakersDep, CallerDep, MetricsDep, PipelineReadingsDep
from k2.api.envelope import request_meta
from k2.api.timing import measured
from k2.query.pipeline import api_health, pipeline_health

router = APIRouter(prefix="/v1", tags=["metadata"])


@router.get("/pipeline")
def get_pipeline(
    request: Request,
    _caller: CallerDep,
    breakers: BreakersDep,
    metrics: MetricsDep,
    readings: PipelineReadingsDep,
) -> Response:
    """The pipeline's health: ``lake`` (each table's last commit and its age, snapshots, data
    files, partitions and its fullest partition's files), ``api`` (this process's degradation
    level and circuit breakers) and ``stream`` (sinks and feeds, from Prometheus; null with
    ``stream_reason`` on the embedded profile or when Prometheus does not answer in time).
    """
    with measured(metrics, "pipeline"):
        health = pipeline_health(
            request.app.state.settings, readings, api_health(mode_of(request.scope).level, breakers.states())
        )
    return formats.one({"data": asdict(health), "meta": request_meta(request.scope)})
