"""A whole source into Kafka: trades and quotes through :class:`~k2.ingest.producer.MarketProducer`,
reference data (the small tables a source replaces per exchange) straight to the lake, as a load
would write it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from k2.ingest.loader import Progress
from k2.ingest.pipeline import run_ahead
from k2.ingest.producer import MarketProducer, ProducerStats
from k2.ingest.rejects import RejectFile
from k2.ingest.sources.base import Source
from k2.lake.writer import LakeWriter

log = structlog.get_logger(__name__)


@dataclass
class ProduceReport:
    """The outcome of producing one source: messages per topic, reference rows, rejects."""

    load_id: str
    source: str
    rows_read: int = 0
    reference_rows: dict[str, int] = field(default_factory=dict)
    rows_rejected: int = 0
    reject_file: Path | None = None
    elapsed_seconds: float = 0.0
    producer: ProducerStats = field(default_factory=ProducerStats)

    @property
    def messages_per_second(self) -> float:
        """Messages acknowledged per second of the whole run."""
        return self.producer.messages / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "load_id": self.load_id,
            "source": self.source,
            "rows_read": self.rows_read,
            "messages": self.producer.messages,
            "failed": self.producer.failed,
            "rows_rejected": self.rows_rejected,
            "reject_file": str(self.reject_file) if self.reject_file else None,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "messages_per_second": round(self.messages_per_second, 1),
            "topics": {name: t.messages for name, t in self.producer.topics.items()},
            "reference_rows": self.reference_rows,
            "bytes": self.producer.bytes,
        }


def produce_source(
    source: Source,
    producer: MarketProducer,
    writer: LakeWriter,
    rejects: RejectFile,
    load_id: str,
    *,
    progress: Progress | None = None,
) -> ProduceReport:
    """Produce a source's trades and quotes to Kafka; write its reference data to the lake.

    Reference batches (``replace_exchange`` set) replace their exchange's rows in the lake, with the
    load's identity in the snapshot summary, as :class:`~k2.ingest.loader.Loader` does. The source
    is read on a worker thread while this one encodes and produces.

    Args:
        source: the input.
        producer: where trades and quotes go; flushed before this returns.
        writer: where reference data goes.
        rejects: where the source records rows it cannot take; closed before this returns.
        load_id: the load's identity.
        progress: called with the input bytes consumed by each batch.

    Returns:
        What was produced, written and rejected.

    Raises:
        DeliveryFailedError: some message was not delivered (see :meth:`MarketProducer.flush`).
    """
    started = time.perf_counter()
    report = ProduceReport(load_id=load_id, source=source.description)
    properties = {"k2.load.id": load_id, "k2.load.source": source.description}
    try:
        for batch in run_ahead([source.batches()]):
            report.rows_read += batch.rows_read
            if batch.replace_exchange is not None:
                result = writer.replace(batch.table, batch.rows, batch.replace_exchange, properties)
                name = batch.table.name
                report.reference_rows[name] = report.reference_rows.get(name, 0) + result.rows_written
            else:
                producer.produce_batch(batch)
            if progress is not None:
                progress(batch.bytes_read)
        report.producer = producer.flush()
    finally:
        rejects.close()
    report.rows_rejected = rejects.count
    report.reject_file = rejects.path if rejects.count else None
    report.elapsed_seconds = time.perf_counter() - started
    log.info("produce_done", **{k: v for k, v in report.as_dict().items() if k != "topics"})
    return report
