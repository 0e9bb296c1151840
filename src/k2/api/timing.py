"""Timing and counting the query engine's work, per query kind (trades, bars, summary, …)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from k2.errors import NotFoundError
from k2.obs.metrics import K2Metrics


@contextmanager
def measured(metrics: K2Metrics, kind: str) -> Iterator[None]:
    """Time the block as one ``kind`` query and count its outcome: ``ok``, ``no_data`` (nothing
    to answer: a missing table, symbol or day) or ``error``.
    """
    began = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except NotFoundError:
        outcome = "no_data"
        raise
    finally:
        metrics.query_duration.labels(query=kind).observe(time.perf_counter() - began)
        metrics.query_executions.labels(query=kind, outcome=outcome).inc()
