"""Where a load sends a source's trades and quotes: the lake directly, or Kafka (the sink then
lands them in the lake). Reference data always goes to the lake (:class:`~k2.ingest.loader.Loader`).
"""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from k2.ingest.producer import MarketProducer
from k2.ingest.report import IngestReport
from k2.ingest.sources.base import SourceBatch
from k2.lake.rollup import refresh_after
from k2.lake.tables import TRADES
from k2.lake.writer import LakeWriter


class Destination(Protocol):
    """Takes a load's batches of trades and quotes, counting into its report."""

    name: str

    def take(self, batch: SourceBatch, report: IngestReport) -> None:
        """Send (or queue) ``batch``."""
        ...

    def finish(self, report: IngestReport) -> None:
        """Send what is still queued and wait until it is stored."""
        ...


class LakeDestination:
    """Appends rows to their tables, ``commit_rows`` at a time, so memory stays bounded and each
    commit writes few, large files; appends skip rows already there, so a failed load can run
    again. At the end the 1-minute rollup is refreshed when trades were written.
    """

    name = "lake"

    def __init__(self, writer: LakeWriter, properties: dict[str, str], *, commit_rows: int) -> None:
        self._writer = writer
        self._properties = properties
        self._commit_rows = commit_rows
        self._pending: dict[str, list[SourceBatch]] = {}
        self._pending_rows: dict[str, int] = {}

    def take(self, batch: SourceBatch, report: IngestReport) -> None:
        """Gather ``batch``; commit its table once ``commit_rows`` rows are pending."""
        name = batch.table.name
        self._pending.setdefault(name, []).append(batch)
        self._pending_rows[name] = self._pending_rows.get(name, 0) + batch.rows.num_rows
        if self._pending_rows[name] >= self._commit_rows:
            self._commit(report, self._pending.pop(name))
            self._pending_rows[name] = 0

    def finish(self, report: IngestReport) -> None:
        """Commit what is pending, then refresh the rollup after new trades."""
        for batches in self._pending.values():
            self._commit(report, batches)
        self._pending.clear()
        if TRADES.name in report.snapshot_ids:
            refresh_after(self._writer)

    def _commit(self, report: IngestReport, batches: list[SourceBatch]) -> None:
        spec = batches[0].table
        rows = pa.concat_tables([b.rows for b in batches])
        if rows.num_rows == 0:
            return
        unique = all(b.unique_ids for b in batches)
        result = self._writer.append(spec, rows, self._properties, assume_unique=unique)
        counts = report.counts(spec.name)
        counts.rows_written += result.rows_written
        counts.duplicates_skipped += result.duplicates_skipped
        counts.commits += 1 if result.snapshot_id is not None else 0
        report.note_snapshot(spec.name, result.snapshot_id)


class KafkaDestination:
    """Produces rows to their venue's topics through ``producer`` (keyed by symbol, Avro under
    the registry); at the end waits until the broker acknowledged every message.

    Raises (from :meth:`finish`):
        DeliveryFailedError: some message was not delivered.
    """

    name = "kafka"

    def __init__(self, producer: MarketProducer) -> None:
        self._producer = producer

    def take(self, batch: SourceBatch, report: IngestReport) -> None:
        """Queue ``batch``'s rows, one message each."""
        self._producer.produce_batch(batch)

    def finish(self, report: IngestReport) -> None:
        """Flush the producer and count what each topic acknowledged."""
        stats = self._producer.flush()
        report.topics = {name: topic.messages for name, topic in stats.topics.items()}
        report.messages_failed = stats.failed
        report.message_bytes = stats.bytes
