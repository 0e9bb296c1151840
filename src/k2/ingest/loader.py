"""Run a load: a source's batches to a destination (the lake, or Kafka), with one report.

Trades and quotes go to the :class:`~k2.ingest.destinations.Destination` the load names;
reference data (the small tables a source replaces per exchange) always replaces its exchange's
rows in the lake. Every lake commit carries the load's identity and its rejects so far in its
snapshot summary (``k2.load.*``, :mod:`k2.lake.summary`); the last commit of the load to each table
carries the final reject count. The source is read on a worker thread while this one writes or
produces.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from k2.ingest.destinations import Destination, KafkaDestination, LakeDestination
from k2.ingest.pipeline import run_ahead
from k2.ingest.producer import MarketProducer
from k2.ingest.rejects import RejectFile
from k2.ingest.report import IngestReport
from k2.ingest.sources.base import Source
from k2.lake.summary import (
    LOAD_ID,
    LOAD_REJECT_FILE,
    LOAD_ROWS_REJECTED,
    LOAD_SOURCE,
    LOAD_SOURCE_KIND,
)
from k2.lake.writer import LakeWriter
from k2.obs.metrics import K2Metrics

log = structlog.get_logger(__name__)

Progress = Callable[[int], None]


def new_load_id() -> str:
    """A fresh load id: a sortable UTC stamp plus a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def reject_file_for(reject_dir: Path, load_id: str) -> RejectFile:
    """The reject file of load ``load_id``."""
    return RejectFile(reject_dir / f"{load_id}.rejects.csv")


def load_properties(source: Source, load_id: str, rejects: RejectFile) -> dict[str, str]:
    """The snapshot summary entries of a lake commit of a load made now: its identity, its source,
    and the rows it rejected so far with the name of their reject file (once it has one).
    """
    properties = {
        LOAD_ID: load_id,
        LOAD_SOURCE: source.description,
        LOAD_SOURCE_KIND: source.kind,
        LOAD_ROWS_REJECTED: str(rejects.count),
    }
    if rejects.count:
        properties[LOAD_REJECT_FILE] = rejects.path.name
    return properties


class Loader:
    """Runs sources into the lake (``commit_rows`` at a time) or, given a producer, into Kafka."""

    def __init__(
        self,
        writer: LakeWriter,
        *,
        commit_rows: int,
        producer: MarketProducer | None = None,
        metrics: K2Metrics | None = None,
    ) -> None:
        self._writer = writer
        self._commit_rows = commit_rows
        self._producer = producer
        self._metrics = metrics

    def _destination(self, properties: Callable[[], dict[str, str]]) -> Destination:
        if self._producer is not None:
            return KafkaDestination(self._producer)
        return LakeDestination(self._writer, properties, commit_rows=self._commit_rows)

    def run(
        self, source: Source, rejects: RejectFile, load_id: str, progress: Progress | None = None
    ) -> IngestReport:
        """Run everything ``source`` yields to the destination.

        Args:
            source: the input.
            rejects: where the source records rows it cannot take; closed before this returns.
            load_id: the load's identity, recorded in every lake commit with the rows rejected
                so far.
            progress: called with the input bytes consumed by each batch.

        Returns:
            The load's report.

        Raises:
            DeliveryFailedError: into Kafka, some message was not delivered.
        """
        started = time.perf_counter()
        properties = functools.partial(load_properties, source, load_id, rejects)
        destination = self._destination(properties)
        report = IngestReport(load_id=load_id, source=source.description, destination=destination.name)
        try:
            for batch in run_ahead([source.batches()]):
                name = batch.table.name
                counts = report.counts(name)
                counts.rows_read += batch.rows_read
                if batch.replace_exchange is not None:
                    result = self._writer.replace(
                        batch.table, batch.rows, batch.replace_exchange, properties()
                    )
                    counts.rows_written += result.rows_written
                    counts.commits += 1
                    report.note_snapshot(name, result.snapshot_id)
                else:
                    destination.take(batch, report)
                if self._metrics is not None:
                    self._metrics.ingest_rows_read.labels(source.kind).inc(batch.rows_read)
                    self._metrics.ingest_batches.labels(source.kind, destination.name).inc()
                if progress is not None:
                    progress(batch.bytes_read)
            destination.finish(report)
        finally:
            rejects.close()
        report.rows_rejected = rejects.count
        if self._metrics is not None:
            self._metrics.ingest_rows_rejected.labels(source.kind).inc(rejects.count)
        report.reject_file = rejects.path if rejects.count else None
        report.elapsed_seconds = time.perf_counter() - started
        log.info("load_done", **{k: v for k, v in report.as_dict().items() if k not in ("tables", "topics")})
        return report
