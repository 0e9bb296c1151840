"""ASX tick files: ``trades/<company id>.csv``, ``quotes/<company id>.csv`` and
``reference-data/`` (company_info, dividends, stock_splits, mergers).

Trade and quote files have no header and carry the exchange's Australia/Sydney wall clock;
quote columns are Bid, Ask, BidVolume, AskVolume, and a 0 price means no price on that side.
A row's ``source_sequence`` is its 1-based order within its symbol's trading day in the file,
which makes ``message_id`` and ``trade_id`` deterministic and keeps same-millisecond prints apart;
as company ids map to distinct symbols, ids never repeat within one directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.domain.events import PRICE_PRECISION, PRICE_SCALE
from k2.domain.venues import Venue, venue
from k2.errors import InvalidInputError
from k2.ingest.canonical import (
    WallClock,
    clock_micros,
    plain_decimals,
    repeat_text,
    trim_spaces,
    us_date_days,
)
from k2.ingest.lines import CsvRows
from k2.ingest.normalize import (
    decimal_sql,
    message_id_sql,
    message_key_sql,
    split_rejects,
    utc_hours_sql,
)
from k2.ingest.pipeline import run_ahead
from k2.ingest.rejects import RejectFile
from k2.ingest.sources.asx_reference import AsxReference, Company
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import QUOTES, TRADES, TableSpec

TRADE_COLUMNS = 7
QUOTE_COLUMNS = 6
FILE_WORKERS = 2

_LOCAL = (
    "coalesce(try_strptime(trim(f0) || ' ' || trim(f1), '%m/%d/%Y %H:%M:%S.%f'), "
    "try_strptime(trim(f0) || ' ' || trim(f1), '%m/%d/%Y %H:%M:%S'))"
)


def _batch_sql(
    values: dict[str, str], value_reasons: list[tuple[str, str]], id_column: str, outputs: str
) -> str:
    """Parse, convert and check one batch of raw fields (table ``raw``, with ``seq``); every row
    comes out with ``ordinal``, ``reason`` (NULL when good) and the v2 columns.
    """
    value_cols = ", ".join(f"{sql} AS {name}" for name, sql in values.items())
    reasons = " ".join(
        f"WHEN {name} IS NULL THEN '{why}' WHEN {name} < 0 THEN '{why} (negative)'"
        for name, why in value_reasons
    )
    day = "CAST(year(s.local_ts) * 10000 + month(s.local_ts) * 100 + day(s.local_ts) AS VARCHAR)"
    venue_id = f"$exchange || '-' || $symbol || '-' || {day} || '-' || CAST(s.seq AS VARCHAR)"
    return f"""
        WITH src AS (
            SELECT r.*, {_LOCAL} AS local_ts, {value_cols} FROM raw r
        ), timed AS (
            SELECT s.*, hr.u + (s.local_ts - hr.h) AS ts, hr.wall_ok, {venue_id} AS venue_id
            FROM src s LEFT JOIN ({utc_hours_sql("local_ts", "src", "$zone")}) hr
                ON hr.h = date_trunc('hour', s.local_ts)
        )
        SELECT ordinal,
            CASE WHEN local_ts IS NULL THEN 'invalid date or time (want MM/DD/YYYY and HH:MM:SS.fff)'
                 WHEN NOT wall_ok THEN 'local time does not exist or is ambiguous in the venue time zone'
                 {reasons}
            END AS reason,
            {message_id_sql(message_key_sql("$exchange", "$kind", "venue_id"))} AS message_id,
            venue_id AS {id_column},
            $symbol AS symbol, $exchange AS exchange, $asset_class AS asset_class, ts AS timestamp,
            {outputs},
            seq AS source_sequence, $ingested AS ingestion_timestamp, NULL::BIGINT AS platform_sequence
        FROM timed
    """


_VENDOR_TRADE = """
    CASE WHEN trim(f5) = '' AND trim(f6) = '' THEN MAP {'company_id': $company_id}
         WHEN trim(f6) = '' THEN MAP {'company_id': $company_id, 'venue': trim(f5)}
         WHEN trim(f5) = '' THEN MAP {'company_id': $company_id, 'buyer_id': trim(f6)}
         ELSE MAP {'company_id': $company_id, 'venue': trim(f5), 'buyer_id': trim(f6)} END"""

_TRADES_SQL = _batch_sql(
    {"price": decimal_sql("f2"), "quantity": decimal_sql("f3")},
    [("price", "invalid price"), ("quantity", "invalid volume")],
    "trade_id",
    f"""price, quantity, $currency AS currency, 'UNKNOWN' AS side,
        CASE WHEN trim(f4) = '' THEN []::VARCHAR[] ELSE [trim(f4)] END AS trade_conditions,
        {_VENDOR_TRADE} AS vendor_data""",
)
_QUOTES_SQL = _batch_sql(
    {
        "bid": decimal_sql("f2"),
        "ask": decimal_sql("f3"),
        "bid_quantity": decimal_sql("f4"),
        "ask_quantity": decimal_sql("f5"),
    },
    [
        ("bid", "invalid bid price"),
        ("ask", "invalid ask price"),
        ("bid_quantity", "invalid bid volume"),
        ("ask_quantity", "invalid ask volume"),
    ],
    "quote_id",
    """nullif(bid, 0) AS bid_price, bid_quantity, nullif(ask, 0) AS ask_price, ask_quantity,
       $currency AS currency, MAP {'company_id': $company_id} AS vendor_data""",
)


_DECIMAL = pa.decimal128(PRICE_PRECISION, PRICE_SCALE)
_TIME = pa.timestamp("us", tz="UTC")
_VENDOR_TYPE = TRADES.record.arrow_schema().field("vendor_data").type
_CONDITIONS_TYPE = TRADES.record.arrow_schema().field("trade_conditions").type
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Connections:
    """DuckDB connections for converting tick files, one per file being read, reused from file to
    file (opening one costs about as much as converting 20,000 rows).
    """

    def __init__(self) -> None:
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._opened: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection in UTC with one thread, which keeps a file's rows in order through the
        SQL's joins (so the writer reuses sorted runs); files run side by side instead.
        """
        with self._lock:
            duck = self._idle.pop() if self._idle else None
        if duck is None:
            duck = duckdb.connect(config={"threads": 1})
            duck.execute("SET TimeZone = 'UTC'")
            with self._lock:
                self._opened.append(duck)
        try:
            yield duck
        finally:
            with self._lock:
                self._idle.append(duck)

    def close(self) -> None:
        """Close every connection opened."""
        with self._lock:
            for duck in self._opened:
                duck.close()
            self._opened.clear()
            self._idle.clear()


@dataclass(frozen=True, slots=True)
class _TickFile:
    """What every row of one tick file shares."""

    spec: TableSpec
    clock: WallClock
    exchange: str
    symbol: str
    asset_class: str
    currency: str
    ingested: datetime
    company_id: str

    @property
    def kind(self) -> str:
        """``trade`` or ``quote``: part of each row's natural key."""
        return "trade" if self.spec is TRADES else "quote"

    def params(self) -> dict[str, object]:
        """The values the conversion SQL binds."""
        return {
            "zone": self.clock.zone,
            "exchange": self.exchange,
            "kind": self.kind,
            "symbol": self.symbol,
            "asset_class": self.asset_class,
            "currency": self.currency,
            "ingested": self.ingested,
            "company_id": self.company_id,
        }


def day_sequence(days: pa.ChunkedArray | pa.DictionaryArray, counts: dict[str, int]) -> pa.Int64Array:
    """Number rows 1, 2, … within each day, continuing from ``counts`` (rows of each day seen in
    earlier batches), which is updated. Rows keep their order; days may interleave.
    """
    encoded = days if isinstance(days, pa.DictionaryArray) else pc.dictionary_encode(days.combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    if len(codes) == 0:  # a batch of blank lines only
        return pa.array([], pa.int64())
    names = encoded.dictionary.to_pylist()
    # Codes number days in order of first appearance, so a file in day order needs no sort.
    order = None if np.all(codes[1:] >= codes[:-1]) else np.argsort(codes, kind="stable")
    sorted_codes = codes if order is None else codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(codes)])
    base = np.array([counts.get(name, 0) for name in names], dtype=np.int64)
    ranks = np.arange(len(codes), dtype=np.int64) - np.repeat(starts, sizes) + 1 + base[sorted_codes]
    sequence = ranks
    if order is not None:
        sequence = np.empty(len(codes), dtype=np.int64)
        sequence[order] = ranks
    for code, size in zip(sorted_codes[starts].tolist(), sizes.tolist(), strict=True):
        counts[names[code]] = counts.get(names[code], 0) + size
    return pa.array(sequence, pa.int64())


def _venue_ids(
    days: pa.DictionaryArray, day_numbers: np.ndarray, seq: pa.Int64Array, tick: _TickFile
) -> pa.Array:
    """``<exchange>-<symbol>-<yyyymmdd>-<n>`` per row, as the SQL path spells it."""
    prefixes = []
    for number in day_numbers.tolist():
        local = _EPOCH + timedelta(days=number)
        stamp = local.year * 10000 + local.month * 100 + local.day
        prefixes.append(f"{tick.exchange}-{tick.symbol}-{stamp}-")
    return pc.binary_join_element_wise(
        pc.take(pa.array(prefixes, pa.string()), days.indices), pc.cast(seq, pa.string()), ""
    )


def _message_ids(duck: duckdb.DuckDBPyConnection, venue_ids: pa.Array, tick: _TickFile) -> pa.ChunkedArray:
    """The ``message_id`` of each venue id, by the SQL expression the row-by-row path uses."""
    duck.register("k2_venue_ids", pa.table({"venue_id": venue_ids}))
    try:
        ids = duck.sql(
            f"SELECT {message_id_sql(message_key_sql('$exchange', '$kind', 'venue_id'))} AS message_id "
            "FROM k2_venue_ids",
            params={"exchange": tick.exchange, "kind": tick.kind},
        ).to_arrow_table()
    finally:
        duck.unregister("k2_venue_ids")
    return ids["message_id"]


def _trade_conditions(qualifiers: pa.Array) -> pa.Array:
    """``[q]`` per row, or ``[]`` where the space-trimmed qualifier is empty."""
    trimmed, present = trim_spaces(qualifiers)
    if present.all():
        return pa.ListArray.from_arrays(
            pa.array(np.arange(len(present) + 1, dtype=np.int32)), trimmed, type=_CONDITIONS_TYPE
        )
    offsets = np.concatenate([[0], np.cumsum(present, dtype=np.int32)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(offsets), trimmed.filter(pa.array(present)), type=_CONDITIONS_TYPE
    )


def _vendor_data(company_id: str, extra: list[tuple[str, pa.Array]], n: int) -> pa.Array:
    """``{'company_id': company_id}`` per row, plus each ``(key, values)`` of ``extra`` where the
    space-trimmed value is not empty, keys in that order (as the SQL path's ``MAP``).
    """
    names = ["company_id"]
    has = [np.ones(n, dtype=bool)]
    values = [repeat_text(company_id, n)]
    for name, column in extra:
        trimmed, present = trim_spaces(column)
        if present.any():
            names.append(name)
            has.append(present)
            values.append(trimmed)
    if len(names) == 1:
        offsets = pa.array(np.arange(n + 1, dtype=np.int32))
        return pa.MapArray.from_arrays(offsets, repeat_text("company_id", n), values[0], type=_VENDOR_TYPE)
    # Entry e of row r is value e * n + r of the stacked columns; keep each row's entries in key order.
    entry, row = np.nonzero(np.stack(has))
    order = np.lexsort((entry, row))
    entry, row = entry[order], row[order]
    offsets = np.zeros(n + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(np.bincount(row, minlength=n), dtype=np.int32)
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pc.take(pa.array(names, pa.string()), pa.array(entry)),
        pc.take(pa.concat_arrays(values), pa.array(entry * n + row)),
        type=_VENDOR_TYPE,
    )


def _plain_rows(
    duck: duckdb.DuckDBPyConnection,
    fields: list[pa.Array],
    days: pa.DictionaryArray,
    seq: pa.Int64Array,
    tick: _TickFile,
) -> pa.Table | None:
    """The batch's v2 rows, converted without SQL when every field has its canonical spelling
    (see :mod:`k2.ingest.canonical`); None when one does not, and the SQL must convert it.
    """
    day_numbers = us_date_days(days.dictionary.to_pylist())
    micros = clock_micros(fields[1])
    if day_numbers is None or micros is None:
        return None
    trades = tick.spec is TRADES
    decimals = [plain_decimals(f, _DECIMAL) for f in fields[2 : 4 if trades else 6]]
    if any(d is None for d in decimals):
        return None
    codes = days.indices.to_numpy(zero_copy_only=False)
    utc = tick.clock.to_utc(duck, codes, day_numbers, micros)
    if utc is None:
        return None
    n = len(seq)
    venue_ids = _venue_ids(days, day_numbers, seq, tick)
    ingested = (tick.ingested - _EPOCH) // timedelta(microseconds=1)
    common = {
        "message_id": _message_ids(duck, venue_ids, tick),
        "symbol": repeat_text(tick.symbol, n),
        "exchange": repeat_text(tick.exchange, n),
        "asset_class": repeat_text(tick.asset_class, n),
        "timestamp": pa.array(utc, _TIME),
        "currency": repeat_text(tick.currency, n),
        "source_sequence": seq,
        "ingestion_timestamp": pa.array(np.full(n, ingested, dtype=np.int64), _TIME),
        "platform_sequence": pa.nulls(n, pa.int64()),
    }
    company = tick.company_id
    if trades:
        price, quantity = decimals
        columns = {
            **common,
            "trade_id": venue_ids,
            "price": price,
            "quantity": quantity,
            "side": repeat_text("UNKNOWN", n),
            "trade_conditions": _trade_conditions(fields[4]),
            "vendor_data": _vendor_data(company, [("venue", fields[5]), ("buyer_id", fields[6])], n),
        }
    else:
        bid, ask, bid_quantity, ask_quantity = decimals
        columns = {
            **common,
            "quote_id": venue_ids,
            "bid_price": _without_zero(bid),
            "bid_quantity": bid_quantity,
            "ask_price": _without_zero(ask),
            "ask_quantity": ask_quantity,
            "vendor_data": _vendor_data(company, [], n),
        }
    schema = tick.spec.record.arrow_schema()
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def _without_zero(prices: pa.Array) -> pa.Array:
    """``prices`` with zeros as nulls (the SQL path's ``nullif(price, 0)``)."""
    zero = pc.equal(prices, pa.scalar(Decimal(0), prices.type))
    return pc.if_else(zero, pa.scalar(None, prices.type), prices)


class AsxSource:
    """An ASX sample directory, loaded into trades, quotes and reference tables."""

    kind = "asx"

    def __init__(
        self,
        root: Path,
        rejects: RejectFile,
        *,
        batch_rows: int,
        ingested_at: datetime,
        exchange: str = "ASX",
    ) -> None:
        if not (root / "reference-data" / "company_info.csv").is_file():
            raise InvalidInputError(
                f"{root} is not an ASX directory: reference-data/company_info.csv is missing"
            )
        self.root = root
        self.venue: Venue = venue(exchange)
        self._rejects = rejects
        self._batch_rows = batch_rows
        self._ingested_at = ingested_at
        self._clock = WallClock(self.venue.timezone)
        self._reference = AsxReference(root / "reference-data", self.venue, rejects, ingested_at)
        self.companies = self._reference.companies

    @property
    def description(self) -> str:
        """What is loaded."""
        return f"asx:{self.root.resolve()}"

    @property
    def total_bytes(self) -> int:
        """Size of the tick files."""
        return sum(p.stat().st_size for p in self._tick_files())

    def _tick_files(self) -> list[Path]:
        return sorted((self.root / "trades").glob("*.csv")) + sorted((self.root / "quotes").glob("*.csv"))

    def batches(self) -> Iterator[SourceBatch]:
        """Reference data first, then every trade and quote file, two files at a time."""
        yield from self._reference.batches()
        files: list[Iterator[SourceBatch]] = []
        connections = _Connections()
        for path in self._tick_files():
            spec = TRADES if path.parent.name == "trades" else QUOTES
            company = self.companies.get(path.stem)
            if company is None:
                self._rejects.add(
                    str(path), None, f"no company_info row for company id {path.stem}; file not loaded", ""
                )
                continue
            files.append(self._tick_batches(path, spec, company, connections))
        try:
            yield from run_ahead(files, workers=FILE_WORKERS)
        finally:
            connections.close()

    def _tick_batches(
        self, path: Path, spec: TableSpec, company: Company, connections: _Connections
    ) -> Iterator[SourceBatch]:
        trades = spec is TRADES
        tick = _TickFile(
            spec=spec,
            clock=self._clock,
            exchange=self.venue.code,
            symbol=company.symbol,
            asset_class=self.venue.asset_class.value,
            currency=self.venue.currency,
            ingested=self._ingested_at,
            company_id=company.company_id,
        )
        sql = _TRADES_SQL if trades else _QUOTES_SQL
        names = spec.record.names
        rows = CsvRows(path, TRADE_COLUMNS if trades else QUOTE_COLUMNS, self._batch_rows)
        with connections.connection() as duck:
            yield from self._converted(rows, tick, duck, sql, names)
        rows.write_rejects(self._rejects)

    @staticmethod
    def _converted(
        rows: CsvRows, tick: _TickFile, duck: duckdb.DuckDBPyConnection, sql: str, names: list[str]
    ) -> Iterator[SourceBatch]:
        """Each batch of ``rows`` as v2 rows: in bulk when it is canonical, else by ``sql``."""
        offsets: dict[str, int] = {}
        spec = tick.spec
        for batch in rows.batches():
            fields = [f.combine_chunks() for f in batch.fields]
            days = pc.dictionary_encode(fields[0])
            seq = day_sequence(days, offsets)
            good = _plain_rows(duck, fields, days, seq, tick)
            if good is None:
                raw = pa.table(
                    {"ordinal": batch.ordinals, "seq": seq, **{f"f{i}": f for i, f in enumerate(fields)}}
                )
                duck.register("raw", raw)
                good, rejects = split_rejects(duck.sql(sql, params=tick.params()).to_arrow_table(), names)
                duck.unregister("raw")
                rows.reject(batch, rejects)
                good = good.cast(spec.record.arrow_schema())
            yield SourceBatch(spec, good, batch.rows_read, batch.bytes_read, unique_ids=True)
