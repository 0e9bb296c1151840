"""Run a load: a source's batches into the lake in bounded chunks, with a report.

Rows are gathered per table until ``commit_rows`` are pending, then appended in one commit, so
memory stays bounded and each commit writes few, large files. Every commit carries the load's
identity in its snapshot summary (``k2.load.id``, ``k2.load.source``). Appends skip rows
already present, so a load that failed part-way can simply be run again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import structlog

from k2.ingest.pipeline import run_ahead
from k2.ingest.rejects import RejectFile
from k2.ingest.report import IngestReport
from k2.ingest.sources.base import Source, SourceBatch
from k2.lake.rollup import refresh_after
from k2.lake.tables import TRADES, TableSpec
from k2.lake.writer import LakeWriter

log = structlog.get_logger(__name__)

Progress = Callable[[int], None]


def new_load_id() -> str:
    """A fresh load id: a sortable UTC stamp plus a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def reject_file_for(reject_dir: Path, load_id: str) -> RejectFile:
    """The reject file of load ``load_id``."""
    return RejectFile(reject_dir / f"{load_id}.rejects.csv")


class Loader:
    """Feeds one source into the lake."""

    def __init__(self, writer: LakeWriter, *, commit_rows: int) -> None:
        self._writer = writer
        self._commit_rows = commit_rows

    def run(
        self, source: Source, rejects: RejectFile, load_id: str, progress: Progress | None = None
    ) -> IngestReport:
        """Load everything ``source`` yields.

        Args:
            source: the input.
            rejects: where the source records rows it cannot take.
            load_id: the load's identity, recorded in every commit.
            progress: called with the input bytes consumed by each batch.

        Returns:
            The load's report.
        """
        started = time.perf_counter()
        report = IngestReport(load_id=load_id, source=source.description)
        pending: dict[str, list[SourceBatch]] = {}
        pending_rows: dict[str, int] = {}
        specs: dict[str, TableSpec] = {}
        properties = {"k2.load.id": load_id, "k2.load.source": source.description}
        try:
            for batch in run_ahead([source.batches()]):
                name = batch.table.name
                counts = report.counts(name)
                counts.rows_read += batch.rows_read
                if batch.replace_exchange is not None:
                    result = self._writer.replace(batch.table, batch.rows, batch.replace_exchange, properties)
                    counts.rows_written += result.rows_written
                    counts.commits += 1
                    self._note_snapshot(report, name, result.snapshot_id)
                else:
                    specs[name] = batch.table
                    pending.setdefault(name, []).append(batch)
                    pending_rows[name] = pending_rows.get(name, 0) + batch.rows.num_rows
                    if pending_rows[name] >= self._commit_rows:
                        self._commit(report, specs[name], pending.pop(name), properties)
                        pending_rows[name] = 0
                if progress is not None:
                    progress(batch.bytes_read)
            for name, tables in pending.items():
                self._commit(report, specs[name], tables, properties)
            if TRADES.name in report.snapshot_ids:
                refresh_after(self._writer)
        finally:
            rejects.close()
        report.rows_rejected = rejects.count
        report.reject_file = rejects.path if rejects.count else None
        report.elapsed_seconds = time.perf_counter() - started
        log.info("load_done", **{k: v for k, v in report.as_dict().items() if k != "tables"})
        return report

    def _commit(
        self, report: IngestReport, spec: TableSpec, batches: list[SourceBatch], properties: dict[str, str]
    ) -> None:
        rows = pa.concat_tables([b.rows for b in batches])
        if rows.num_rows == 0:
            return
        unique = all(b.unique_ids for b in batches)
        result = self._writer.append(spec, rows, properties, assume_unique=unique)
        counts = report.counts(spec.name)
        counts.rows_written += result.rows_written
        counts.duplicates_skipped += result.duplicates_skipped
        counts.commits += 1 if result.snapshot_id is not None else 0
        self._note_snapshot(report, spec.name, result.snapshot_id)

    @staticmethod
    def _note_snapshot(report: IngestReport, table: str, snapshot_id: int | None) -> None:
        if snapshot_id is not None:
            report.snapshot_ids[table] = snapshot_id
