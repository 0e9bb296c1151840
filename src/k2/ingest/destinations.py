"""Where a load sends a source's trades and quotes: the lake directly, or Kafka (the sink then
lands them in the lake). Reference data always goes to the lake (:class:`~k2.ingest.loader.Loader`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pyarrow as pa

from k2.ingest.producer import MarketProducer
from k2.ingest.report import IngestReport
from k2.ingest.sources.base import SourceBatch
from k2.lake.rollup import refresh_after
from k2.lake.summary import rows_rejected_in
from k2.lake.tables import TRADES, TableSpec
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

    Each commit's summary is ``properties()`` when it is made (the load's rejects so far). The
    last commit of the load to each table carries the final summary: when the table's rows ended
    on a commit boundary, or were all rejected or already there, and rows were rejected since
    its last commit, a commit without rows records it (:meth:`finish`).
    """

    name = "lake"

    def __init__(
        self, writer: LakeWriter, properties: Callable[[], dict[str, str]], *, commit_rows: int
    ) -> None:
        self._writer = writer
        self._properties = properties
        self._commit_rows = commit_rows
        self._pending: dict[str, list[SourceBatch]] = {}
        self._pending_rows: dict[str, int] = {}
        self._tables: dict[str, TableSpec] = {}
        self._recorded: dict[str, dict[str, str]] = {}

    def take(self, batch: SourceBatch, report: IngestReport) -> None:
        """Gather ``batch``; commit its table once ``commit_rows`` rows are pending."""
        name = batch.table.name
        self._tables.setdefault(name, batch.table)
        self._pending.setdefault(name, []).append(batch)
        self._pending_rows[name] = self._pending_rows.get(name, 0) + batch.rows.num_rows
        if self._pending_rows[name] >= self._commit_rows:
            self._commit(report, self._pending.pop(name))
            self._pending_rows[name] = 0

    def finish(self, report: IngestReport) -> None:
        """Commit what is pending, record the final summary where the last commit lacks it, then
        refresh the rollup after new trades.
        """
        for batches in self._pending.values():
            self._commit(report, batches)
        self._pending.clear()
        final = self._properties()
        for name, spec in self._tables.items():
            recorded = self._recorded.get(name)
            if recorded == final or (recorded is None and not rows_rejected_in(final)):
                continue  # the last commit says it all, or the load left nothing to say here
            self._append(report, spec, spec.record.arrow_schema().empty_table(), final, unique=True)
        if TRADES.name in report.snapshot_ids:
            refresh_after(self._writer)

    def _commit(self, report: IngestReport, batches: list[SourceBatch]) -> None:
        spec = batches[0].table
        rows = pa.concat_tables([b.rows for b in batches])
        if rows.num_rows == 0:
            return
        unique = all(b.unique_ids for b in batches)
        self._append(report, spec, rows, self._properties(), unique=unique)

    def _append(
        self,
        report: IngestReport,
        spec: TableSpec,
        rows: pa.Table,
        properties: dict[str, str],
        *,
        unique: bool,
    ) -> None:
        result = self._writer.append(
            spec, rows, properties, assume_unique=unique, commit_when_empty=rows.num_rows == 0
        )
        if result.snapshot_id is not None:
            self._recorded[spec.name] = properties
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
