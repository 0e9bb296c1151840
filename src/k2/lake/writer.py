"""Append record batches to K2's tables idempotently, one commit per call.

Rows whose ``message_id`` is already in the table (or earlier in the same batch) are skipped,
so re-loading a file adds nothing. Each commit records the load in its snapshot summary
(``k2.load.*``) and keeps a cumulative list of symbols per exchange (``k2.symbols``), which
lets readers list symbols from metadata alone.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, BooleanExpression
from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table, Transaction

from k2.lake.datafiles import DataFileWriter
from k2.lake.errors import LakeCommitConflictError, LakeUnavailableError, TableNotFoundError
from k2.lake.history import newest_with
from k2.lake.layout import arrange
from k2.lake.outages import classified
from k2.lake.scan import at_least, at_most, data_paths, equal_to, one_of
from k2.lake.storage import attach_warehouse
from k2.lake.tables import TableSpec, committing, ensure_table, load_table
from k2.obs.metrics import K2Metrics

SYMBOLS_PROPERTY = "k2.symbols"
MESSAGE_ID = "message_id"
WRITE_WORKERS = 2

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append did."""

    rows_written: int
    duplicates_skipped: int
    snapshot_id: int | None


def symbols_of(table: Table, snapshot_id: int | None = None) -> dict[str, list[str]]:
    """Symbols per exchange as of a snapshot (default: current): recorded in the summary of the
    newest snapshot up to it that has any (another engine's commit, a Trino ``optimize`` say,
    records none; K2's compactions copy them), in the earlier metadata files when another engine's
    expiry removed it (:mod:`k2.lake.history`).
    """
    found = newest_with(table, SYMBOLS_PROPERTY, snapshot_id)
    if found is None or found.summary is None:
        return {}
    return dict(orjson.loads(found.summary.additional_properties[SYMBOLS_PROPERTY]))


def symbol_pairs(rows: pa.Table) -> set[tuple[str, str]]:
    """The distinct ``(exchange, symbol)`` pairs of ``rows``. A batch holding one pair (one source
    file's rows) is recognised from its bounds, without grouping.
    """
    pairs: set[tuple[str, str]] = set()
    for batch in rows.select(["exchange", "symbol"]).to_batches():
        if not batch.num_rows:
            continue
        bounds = [pc.min_max(column) for column in batch.columns]
        if all(
            b["min"].as_py() == b["max"].as_py() and not c.null_count
            for b, c in zip(bounds, batch.columns, strict=True)
        ):
            pairs.add((bounds[0]["min"].as_py(), bounds[1]["min"].as_py()))
            continue
        grouped = pa.Table.from_batches([batch]).group_by(["exchange", "symbol"]).aggregate([])
        pairs.update(zip(grouped["exchange"].to_pylist(), grouped["symbol"].to_pylist(), strict=True))
    return pairs


def merged_symbols(table: Table, pairs: set[tuple[str, str]]) -> str:
    """The ``k2.symbols`` value after rows of ``pairs`` (:func:`symbol_pairs`) join ``table``."""
    known = {exchange: set(symbols) for exchange, symbols in symbols_of(table).items()}
    for exchange, symbol in pairs:
        known.setdefault(exchange, set()).add(symbol)
    return orjson.dumps({e: sorted(s) for e, s in sorted(known.items())}).decode()


def write_data_files(
    tx: Transaction, table: Table, partitions: list[pa.Table], commit_uuid: uuid.UUID
) -> list[DataFile]:
    """Write each partition's rows as Parquet data files of ``table`` (not yet committed),
    two partitions at a time (Parquet encoding and zstd release the GIL).
    """
    writer = DataFileWriter(tx.table_metadata, table.io, commit_uuid, itertools.count(0))
    with ThreadPoolExecutor(max_workers=WRITE_WORKERS, thread_name_prefix="k2-write") as pool:
        return [data_file for files in pool.map(writer.write, partitions) for data_file in files]


#: Attempts of one append before it gives up to other writers.
COMMIT_ATTEMPTS = 10

#: Snapshot summary properties, or a function making them from the table a commit is built on.
Summary = Mapping[str, str] | Callable[[Table], Mapping[str, str]]


@dataclass
class _Attempt:
    """One append's attempts so far, and the data files written for them but not yet committed.

    Files written for an attempt that lost its race serve the next one when it writes the same
    rows (deduplication only ever removes rows, so the same count means the same rows) on the
    same schema and partition spec; otherwise they are deleted before new ones are written.
    """

    pairs: set[tuple[str, str]]
    number: int = 0
    files: list[DataFile] = field(default_factory=list)
    shape: tuple[int, int, int] = (0, -1, -1)
    io: FileIO | None = None

    def files_for(
        self, shape: tuple[int, int, int], io: FileIO, write: Callable[[], list[DataFile]]
    ) -> list[DataFile]:
        """The data files of rows of ``shape`` (count, schema id, spec id): those already
        written, or new ones from ``write``.
        """
        if not self.files or shape != self.shape:
            self.discard()
            self.files, self.shape, self.io = write(), shape, io
        return self.files

    def take(self) -> list[DataFile]:
        """The files, now committed: the table owns them."""
        files, self.files = self.files, []
        return files

    def discard(self) -> None:
        """Delete the files written for attempts that did not commit."""
        for data_file in self.files:
            if self.io is not None:
                with contextlib.suppress(OSError):
                    self.io.delete(data_file.file_path)
        self.files = []

    def backoff_s(self) -> float:
        """Seconds to wait before the next attempt: doubling, with jitter, at most 2 s."""
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrets
        return jitter * min(0.05 * 2.0**self.number, 2.0)


class LakeWriter:
    """Writes to K2's tables in one catalog."""

    def __init__(
        self,
        catalog: Catalog,
        namespace: str,
        target_file_size_bytes: int,
        *,
        metrics: K2Metrics | None = None,
        writer: str = "loader",
    ) -> None:
        """``metrics`` count each append's rows, files, bytes, time and outcome under the label
        ``writer`` (``sink`` for the stream sink, ``loader`` for bulk loads).
        """
        self._catalog = catalog
        self._metrics = metrics
        self._writer = writer
        self._namespace = namespace
        self._target_file_size_bytes = target_file_size_bytes
        self._duck = duckdb.connect()
        attach_warehouse(self._duck, catalog.properties)

    @property
    def catalog(self) -> Catalog:
        """The catalog written to."""
        return self._catalog

    @property
    def namespace(self) -> str:
        """The namespace of K2's tables in the catalog."""
        return self._namespace

    @property
    def target_file_size_bytes(self) -> int:
        """Size new data files aim for."""
        return self._target_file_size_bytes

    def table(self, spec: TableSpec) -> Table:
        """The table of ``spec``, created on first use.

        Raises:
            LakeUnavailableError: when the catalog or the store cannot be reached.
        """
        with classified(f"load {spec.name}"):
            try:
                # Loading first: creating an existing table writes a metadata file before it fails.
                return load_table(self._catalog, self._namespace, spec)
            except TableNotFoundError:
                pass
            return ensure_table(self._catalog, self._namespace, spec, self._target_file_size_bytes)

    def append(
        self,
        spec: TableSpec,
        rows: pa.Table,
        properties: Summary,
        *,
        assume_unique: bool = False,
        commit_when_empty: bool = False,
    ) -> AppendResult:
        """Append the rows not yet in the table, sorted by the table's sort order, in one commit.

        A commit that loses a race with another writer is built again from the table as that
        writer left it: its rows deduplicated against the new head and its summary (``properties``
        when they are a function of the table, and the cumulative symbols) made from it. Data
        files already written are committed again when the rows to write did not change.

        Args:
            spec: the table.
            rows: rows in the table's Arrow schema.
            properties: snapshot summary properties identifying the load, or a function making
                them from the table the commit is built on (the stream sink merges the Kafka
                offsets recorded there with its own).
            assume_unique: the caller guarantees no ``message_id`` repeats within ``rows``.
            commit_when_empty: commit a snapshot carrying ``properties`` even when no row is new
                (the stream sink records its Kafka offsets this way).

        Returns:
            Rows written, duplicates skipped and the new snapshot id (None if nothing new).

        Raises:
            LakeCommitConflictError: when other writers won ``COMMIT_ATTEMPTS`` races in a row.
            LakeUnavailableError: when the catalog or the store cannot be reached.
        """
        started = time.perf_counter()
        attempt = _Attempt(symbol_pairs(rows))
        while True:
            attempt.number += 1
            try:
                result = self._append_once(
                    spec, rows, properties, attempt, unique=assume_unique, when_empty=commit_when_empty
                )
            except CommitFailedException as exc:
                self._count_failure(spec)
                if attempt.number == COMMIT_ATTEMPTS:
                    attempt.discard()
                    raise LakeCommitConflictError(
                        f"commit to {spec.name} lost {attempt.number} races with other writers: {exc}"
                    ) from exc
                log.info("lake_append_conflict", table=spec.name, attempt=attempt.number)
                time.sleep(attempt.backoff_s())
                continue
            except LakeUnavailableError:
                # The commit's outcome may be unknown: its files stay (orphans at worst).
                self._count_failure(spec)
                raise
            if result.snapshot_id is not None:
                self._count_write(spec, result.rows_written, attempt.take(), time.perf_counter() - started)
            return result

    def _append_once(
        self,
        spec: TableSpec,
        rows: pa.Table,
        properties: Summary,
        attempt: _Attempt,
        *,
        unique: bool,
        when_empty: bool,
    ) -> AppendResult:
        """One attempt of :meth:`append` on the table's current head.

        Raises:
            CommitFailedException: another writer committed first; nothing was committed.
        """
        table = committing(self.table(spec))
        with classified(f"read {spec.name}"):
            fresh = self._new_rows(table, spec, rows, attempt.pairs, unique)
        skipped = rows.num_rows - fresh.num_rows
        if fresh.num_rows == 0:
            attempt.discard()  # written for a lost attempt whose rows another writer stored since
            if not when_empty:
                return AppendResult(0, skipped, None)
        fresh_pairs = attempt.pairs if fresh is rows else symbol_pairs(fresh)
        own = properties(table) if callable(properties) else properties
        summary = {**own, SYMBOLS_PROPERTY: merged_symbols(table, fresh_pairs)}
        with (
            classified(f"commit to {spec.name}"),
            table.transaction() as tx,
            tx.update_snapshot(snapshot_properties=summary).fast_append() as append,
        ):
            if fresh.num_rows:
                shape = (
                    fresh.num_rows,
                    tx.table_metadata.current_schema_id,
                    tx.table_metadata.default_spec_id,
                )
                for data_file in attempt.files_for(
                    shape,
                    table.io,
                    lambda: write_data_files(tx, table, arrange(fresh, spec), append.commit_uuid),
                ):
                    append.append_data_file(data_file)
        snapshot = table.current_snapshot()
        snapshot_id = snapshot.snapshot_id if snapshot else None
        log.info(
            "lake_append",
            table=spec.name,
            rows=fresh.num_rows,
            duplicates=skipped,
            snapshot_id=snapshot_id,
            attempts=attempt.number,
        )
        return AppendResult(fresh.num_rows, skipped, snapshot_id)

    def _count_write(self, spec: TableSpec, rows: int, files: list[DataFile], seconds: float) -> None:
        if self._metrics is None:
            return
        labels = (spec.name, self._writer)
        self._metrics.iceberg_commits.labels(*labels, "committed").inc()
        self._metrics.iceberg_write_duration.labels(*labels).observe(seconds)
        self._metrics.iceberg_rows_written.labels(*labels).inc(rows)
        self._metrics.iceberg_files_written.labels(*labels).inc(len(files))
        self._metrics.iceberg_bytes_written.labels(*labels).inc(sum(f.file_size_in_bytes for f in files))

    def _count_failure(self, spec: TableSpec) -> None:
        if self._metrics is not None:
            self._metrics.iceberg_commits.labels(spec.name, self._writer, "failed").inc()

    def replace(
        self, spec: TableSpec, rows: pa.Table, exchange: str, properties: dict[str, str]
    ) -> AppendResult:
        """Replace every row of ``exchange`` in a small reference table with ``rows``."""
        table = self.table(spec)
        rows = rows.sort_by([(c, "ascending") for c in spec.sort_by])
        with warnings.catch_warnings():
            # pyiceberg warns when the filter matches nothing: every first load of a venue's reference.
            warnings.filterwarnings("ignore", "Delete operation did not match any records", UserWarning)
            table.overwrite(
                rows, overwrite_filter=equal_to("exchange", exchange), snapshot_properties=properties
            )
        snapshot = table.current_snapshot()
        return AppendResult(rows.num_rows, 0, snapshot.snapshot_id if snapshot else None)

    def _new_rows(
        self, table: Table, spec: TableSpec, rows: pa.Table, pairs: set[tuple[str, str]], assume_unique: bool
    ) -> pa.Table:
        """``rows`` (whose ``(exchange, symbol)`` pairs are ``pairs``) less those whose
        ``message_id`` is already in ``table`` or earlier in ``rows``.
        """
        if rows.num_rows == 0:  # a sink commit of offsets only: nothing to look up
            return rows
        if not assume_unique and pc.count_distinct(rows[MESSAGE_ID]).as_py() < rows.num_rows:
            rows = self._first_of_each_id(rows)
            pairs = symbol_pairs(rows)
        paths = data_paths(table, self._overlap_filter(spec, rows, pairs))
        if not paths:
            return rows
        # DuckDB joins the new ids against the ids of the files they could collide with and hands
        # back only those already stored (usually none): far cheaper than a set of every stored id.
        self._duck.register("k2_new_ids", rows.select([MESSAGE_ID]))
        try:
            stored = self._duck.sql(
                f"SELECT {MESSAGE_ID} FROM k2_new_ids WHERE {MESSAGE_ID} IN "
                f"(SELECT {MESSAGE_ID} FROM read_parquet($paths, hive_partitioning = false))",
                params={"paths": paths},
            ).to_arrow_table()
        finally:
            self._duck.unregister("k2_new_ids")
        if stored.num_rows == 0:
            return rows
        return rows.filter(
            pc.invert(pc.is_in(rows[MESSAGE_ID], value_set=stored[MESSAGE_ID].combine_chunks()))
        )

    @staticmethod
    def _first_of_each_id(rows: pa.Table) -> pa.Table:
        """Keep the first row of each ``message_id``, in input order."""
        with_index = rows.select([MESSAGE_ID]).append_column(
            "row", pa.array(range(rows.num_rows), pa.int64())
        )
        first = with_index.group_by(MESSAGE_ID, use_threads=False).aggregate([("row", "min")])
        return rows.take(pc.take(first["row_min"], pc.sort_indices(first["row_min"])))

    @staticmethod
    def _overlap_filter(
        spec: TableSpec, rows: pa.Table, pairs: set[tuple[str, str]]
    ) -> BooleanExpression | None:
        """A filter that prunes the table to partitions and files ``rows`` could collide with."""
        if spec.time_column is None:
            return None
        times = pc.min_max(rows[spec.time_column])
        return And(
            And(
                at_least(spec.time_column, times["min"].as_py()),
                at_most(spec.time_column, times["max"].as_py()),
            ),
            And(
                one_of("exchange", {exchange for exchange, _ in pairs}),
                one_of("symbol", {symbol for _, symbol in pairs}),
            ),
        )
