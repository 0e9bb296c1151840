"""The 1-minute bars table: the trades' partials per symbol and minute, kept in step with trades.

``bars_1m`` holds, for every symbol, exchange and minute with trades, the minute's partial
(:mod:`k2.lake.partials`); bars of a minute or longer and daily summaries combine it instead of
reading ticks. Each of its snapshots records the trades snapshot it reflects
(``k2.rollup.trades-snapshot``). A read of trades snapshot S uses the rollup snapshot that
reflects S — or S's nearest ancestor whose rows S has, when the snapshots in between only
compacted files — and reads the ticks otherwise, so the rollup never gives an answer the ticks
would not.

:func:`refresh` brings the rollup up to date with the trades' current snapshot: it finds the
data files each later snapshot added or removed (compactions aside), recomputes every minute
those files span from all the trades of the current snapshot, and rewrites the day partitions
holding those minutes in one commit (each partition stays one sorted file). When the history
does not lead back to the snapshot it reflects (the first refresh, an expired snapshot), it
rebuilds everything.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile, ManifestEntryStatus
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot

from k2.lake.errors import LakeCommitConflictError, LakeUnavailableError, TableNotFoundError
from k2.lake.files import DataFileEntry, ManifestIndex, describe
from k2.lake.layout import arrange
from k2.lake.outages import classified
from k2.lake.partials import PARTIAL_SCHEMA, partials_of_files
from k2.lake.storage import attach_warehouse
from k2.lake.summary import MAINTENANCE, ROLLUP_TRADES_SNAPSHOT
from k2.lake.tables import BARS_1M, TRADES, committing, ensure_table, load_table
from k2.lake.writer import LakeWriter, write_data_files

TRADES_SNAPSHOT = ROLLUP_TRADES_SNAPSHOT
COMPACTION = (MAINTENANCE, "compaction")
MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
_LAST_SYMBOL = "\U0010ffff"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    """Minutes of one day partition to recompute: symbols in [``symbol_low``, ``symbol_high``]
    at ``exchange``, bucket starts in [``start_us``, ``end_us``).
    """

    day: int
    exchange: str
    symbol_low: str
    symbol_high: str
    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh did."""

    trades_snapshot: int | None
    rollup_snapshot: int | None
    minutes_written: int
    partitions_rewritten: int
    rebuilt: bool


def reflected(snapshot: Snapshot | None) -> int | None:
    """The trades snapshot a rollup snapshot reflects (None for none)."""
    if snapshot is None or snapshot.summary is None:
        return None
    value = snapshot.summary.additional_properties.get(TRADES_SNAPSHOT)
    return int(value) if value is not None else None


def rows_unchanged(snapshot: Snapshot) -> bool:
    """Whether ``snapshot`` only rewrote files without changing rows (a compaction)."""
    summary = snapshot.summary
    if summary is None:
        return False
    return (
        summary.operation == Operation.REPLACE
        or summary.additional_properties.get(COMPACTION[0]) == COMPACTION[1]
    )


def covering(rollup: Table, trades: Table, trades_snapshot: int) -> int | None:
    """The rollup snapshot that reflects the rows of ``trades_snapshot``, if it exists."""
    by_trades = {reflected(s): s.snapshot_id for s in rollup.snapshots()}
    snapshot = trades.snapshot_by_id(trades_snapshot)
    while snapshot is not None:
        found = by_trades.get(snapshot.snapshot_id)
        if found is not None:
            return found
        if not rows_unchanged(snapshot) or snapshot.parent_snapshot_id is None:
            return None
        snapshot = trades.snapshot_by_id(snapshot.parent_snapshot_id)
    return None


def refresh_after(writer: LakeWriter) -> RefreshResult | None:
    """:func:`refresh` the rollup of ``writer``'s lake after trades were written; a refresh that
    cannot commit now (another one committed first, the lake is unreachable) is left to the next
    one, which catches up, and reads use the ticks meanwhile.
    """
    try:
        with classified("refresh the rollup"):
            return refresh(writer.catalog, writer.namespace, writer.target_file_size_bytes)
    except (LakeCommitConflictError, LakeUnavailableError) as error:
        log.warning("rollup_refresh_deferred", error=str(error))
        return None


class Refresher:
    """Refreshes the rollup of ``writer``'s lake on a thread of its own, so a writer that commits
    often (the stream sink) does not wait for it: a request made while a refresh runs is served by
    one more refresh after it, which catches up with every commit made meanwhile.
    """

    def __init__(self, writer: LakeWriter) -> None:
        self._writer = writer
        self._wanted = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Ask for a refresh (after a trades commit)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="k2-rollup", daemon=True)
            self._thread.start()
        self._wanted.set()

    def close(self) -> None:
        """Finish the refresh asked for last, then stop."""
        self._closing = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                refresh_after(self._writer)
            except Exception:  # the thread must outlive a bug: the next request tries again
                log.exception("rollup_refresh_failed")
            if self._closing and not self._wanted.is_set():
                return


def refresh(catalog: Catalog, namespace: str, target_file_size_bytes: int) -> RefreshResult:
    """Bring the rollup up to date with the trades' current snapshot (see the module docstring).

    Raises:
        LakeCommitConflictError: when another refresh committed first (the next one catches up).
    """
    try:
        trades = load_table(catalog, namespace, TRADES)
    except TableNotFoundError:
        return RefreshResult(None, None, 0, 0, rebuilt=False)
    current = trades.current_snapshot()
    if current is None:
        return RefreshResult(None, None, 0, 0, rebuilt=False)
    rollup = ensure_table(catalog, namespace, BARS_1M, target_file_size_bytes)
    done = reflected(rollup.current_snapshot())
    if done == current.snapshot_id:
        return RefreshResult(current.snapshot_id, _current_id(rollup), 0, 0, rebuilt=False)
    files = ManifestIndex().files(trades, current.snapshot_id, TRADES.time_column)
    windows = _changes(trades, done, current)
    rebuilt = windows is None
    if windows is None:
        windows = _everything(files.files)
    if not windows:  # only compactions since: the rows are the same, and covering() knows it
        return RefreshResult(current.snapshot_id, _current_id(rollup), 0, 0, rebuilt=False)
    duck = duckdb.connect()
    try:
        attach_warehouse(duck, catalog.properties)
        duck.execute("SET TimeZone = 'UTC'")
        fresh = _partials(duck, files.files, windows)
    finally:
        duck.close()
    by_partition: dict[tuple[int, str], list[Window]] = defaultdict(list)
    for window in windows:
        by_partition[(window.day, window.exchange)].append(window)
    result = _commit(rollup, current.snapshot_id, by_partition, [fresh], fresh.num_rows)
    return RefreshResult(
        result.trades_snapshot, result.rollup_snapshot, fresh.num_rows, result.partitions_rewritten, rebuilt
    )


def _current_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _changes(trades: Table, done: int | None, current: Snapshot) -> list[Window] | None:
    """The windows the snapshots after ``done`` up to ``current`` changed; None when the history
    does not lead back to ``done``.
    """
    if done is None:
        return None
    later: list[Snapshot] = []
    snapshot: Snapshot | None = current
    while snapshot is not None and snapshot.snapshot_id != done:
        later.append(snapshot)
        parent = snapshot.parent_snapshot_id
        snapshot = trades.snapshot_by_id(parent) if parent is not None else None
    if snapshot is None:
        return None
    windows: list[Window] = []
    for changed in later:
        if rows_unchanged(changed):
            continue
        for entry in _changed_files(trades, changed):
            window = _window(entry)
            if window is None:
                return None
            windows.append(window)
    return windows


def _changed_files(trades: Table, snapshot: Snapshot) -> list[DataFileEntry]:
    """The data files ``snapshot`` added or removed."""
    changed = []
    for manifest in snapshot.manifests(trades.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(trades.io, discard_deleted=False):
            if entry.snapshot_id == snapshot.snapshot_id and entry.status in (
                ManifestEntryStatus.ADDED,
                ManifestEntryStatus.DELETED,
            ):
                changed.append(
                    describe(trades, entry.data_file, manifest.partition_spec_id, TRADES.time_column)
                )
    return changed


def _window(file: DataFileEntry) -> Window | None:
    """The minutes ``file`` spans (the whole day when its bounds are unknown); None when its
    partition does not pin a day and an exchange.
    """
    if file.day is None or file.exchange is None:
        return None
    low, high = file.symbol_bounds or ("", _LAST_SYMBOL)
    day_start = file.day * DAY_US
    start, end = day_start, day_start + DAY_US
    if file.time_bounds_us is not None:
        start = file.time_bounds_us[0] // MINUTE_US * MINUTE_US
        end = file.time_bounds_us[1] // MINUTE_US * MINUTE_US + MINUTE_US
    return Window(file.day, file.exchange, low, high, start, end)


def _everything(files: tuple[DataFileEntry, ...]) -> list[Window] | None:
    """Whole days of every partition ``files`` hold; None when a file pins no day or exchange."""
    partitions = set()
    for file in files:
        if file.day is None or file.exchange is None:
            return None
        partitions.add((file.day, file.exchange))
    return [
        Window(day, exchange, "", _LAST_SYMBOL, day * DAY_US, (day + 1) * DAY_US)
        for day, exchange in sorted(partitions)
    ]


def _partials(
    duck: duckdb.DuckDBPyConnection, files: tuple[DataFileEntry, ...], windows: list[Window]
) -> pa.Table:
    """The 1-minute partials of every trade inside ``windows``."""
    days = {w.day for w in windows}
    exchanges = {w.exchange for w in windows}
    paths = [
        f.path
        for f in files
        if (f.day is None or f.day in days) and (f.exchange is None or f.exchange in exchanges)
    ]
    if not paths:
        return PARTIAL_SCHEMA.empty_table()
    params: dict[str, object] = {"paths": paths, "grain": 60}
    clauses = []
    for i, window in enumerate(windows):
        params.update({f"x{i}": window.exchange, f"lo{i}": window.symbol_low, f"hi{i}": window.symbol_high})
        params.update({f"s{i}": window.start_us, f"e{i}": window.end_us})
        clauses.append(
            f"(exchange = $x{i} AND symbol BETWEEN $lo{i} AND $hi{i} "
            f"AND epoch_us(timestamp) >= $s{i} AND epoch_us(timestamp) < $e{i})"
        )
    return partials_of_files(
        duck, "read_parquet($paths, hive_partitioning = false)", " OR ".join(clauses), params
    )


def _commit(
    rollup: Table,
    trades_snapshot: int,
    windows: dict[tuple[int, str], list[Window]],
    fresh: list[pa.Table],
    minutes: int,
) -> RefreshResult:
    """Rewrite each partition of ``windows``: its rows outside the windows and the ``fresh``
    partials inside them, in one commit recording ``trades_snapshot``.
    """
    summary = {TRADES_SNAPSHOT: str(trades_snapshot)}
    fresh_rows = pa.concat_tables(fresh) if fresh else PARTIAL_SCHEMA.empty_table()
    old_files = _partition_files(rollup, set(windows))
    rollup = committing(rollup)  # a refresh that lost its race is redone by the next one
    try:
        with rollup.transaction() as tx:
            commit_uuid = uuid.uuid4()
            with tx.update_snapshot(snapshot_properties=summary).overwrite(commit_uuid) as rewrite:
                kept = [_outside(_read(rollup, data_file), windows) for data_file, _ in old_files]
                rows = pa.concat_tables([*kept, fresh_rows]).cast(PARTIAL_SCHEMA)
                for data_file, _ in old_files:
                    rewrite.delete_data_file(data_file)
                for data_file in write_data_files(tx, rollup, arrange(rows, BARS_1M), commit_uuid):
                    rewrite.append_data_file(data_file)
    except CommitFailedException as exc:
        raise LakeCommitConflictError(f"rollup commit failed: {exc}") from exc
    snapshot = _current_id(rollup)
    log.info(
        "rollup_refresh",
        trades_snapshot=trades_snapshot,
        rollup_snapshot=snapshot,
        minutes=minutes,
        partitions=len(windows),
    )
    return RefreshResult(trades_snapshot, snapshot, minutes, len(windows), rebuilt=False)


def _partition_files(rollup: Table, partitions: set[tuple[int, str]]) -> list[tuple[DataFile, DataFileEntry]]:
    """The rollup's current data files in ``partitions`` (day, exchange)."""
    current = rollup.current_snapshot()
    if current is None or not partitions:
        return []
    found = []
    for manifest in current.manifests(rollup.io):
        for entry in manifest.fetch_manifest_entry(rollup.io, discard_deleted=True):
            described = describe(rollup, entry.data_file, manifest.partition_spec_id, BARS_1M.time_column)
            if (described.day, described.exchange) in partitions:
                found.append((entry.data_file, described))
    return found


def _read(rollup: Table, data_file: DataFile) -> pa.Table:
    with rollup.io.new_input(data_file.file_path).open() as handle:
        return pq.read_table(handle).cast(PARTIAL_SCHEMA)


def _outside(rows: pa.Table, windows: dict[tuple[int, str], list[Window]]) -> pa.Table:
    """``rows`` not inside any of ``windows``."""
    starts = rows["bucket_start"].cast(pa.int64())
    inside = pa.array([False] * rows.num_rows)
    for day_windows in windows.values():
        for w in day_windows:
            hit = pc.and_(
                pc.and_(
                    pc.equal(rows["exchange"], w.exchange), pc.greater_equal(rows["symbol"], w.symbol_low)
                ),
                pc.and_(
                    pc.less_equal(rows["symbol"], w.symbol_high),
                    pc.and_(pc.greater_equal(starts, w.start_us), pc.less(starts, w.end_us)),
                ),
            )
            inside = pc.or_(inside, hit)
    return rows.filter(pc.invert(inside))
