"""A CSV (with a header line) or Parquet file that already has v2 columns.

The table is chosen by the columns (``trade_id`` → trades, ``quote_id`` → quotes) unless named.
Missing optional columns become NULL; ``message_id`` defaults to the id derived from exchange
and trade/quote id, ``ingestion_timestamp`` to the load time, ``asset_class`` and ``currency``
to the venue's. Symbols and exchange codes are upper-cased.
In CSV, times are ISO-8601 (UTC when no offset is given), ``trade_conditions``
a JSON array and ``vendor_data`` a JSON object.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from k2.domain.venues import VENUES
from k2.errors import InvalidInputError
from k2.ingest.lines import CsvRows
from k2.ingest.normalize import decimal_sql, message_id_sql, message_key_sql, split_rejects
from k2.ingest.rejects import RejectFile
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.schemas.record import Column, Kind

_UPPER_CASE = {"symbol", "exchange"}
_DEFAULTED = {"message_id", "ingestion_timestamp", "asset_class", "currency"}


def _convert(column: Column, source: str, text: bool) -> str:
    """SQL converting input column ``source`` to ``column``'s type; NULL when it fails."""
    match column.kind:
        case Kind.STRING if column.name in _UPPER_CASE:
            return f"nullif(upper(trim(CAST({source} AS VARCHAR))), '')"
        case Kind.STRING:
            return f"nullif(trim(CAST({source} AS VARCHAR)), '')"
        case Kind.ENUM:
            value = f"trim(CAST({source} AS VARCHAR))"
            value = f"upper({value})" if column.name == "side" else f"lower({value})"
            allowed = ", ".join(f"'{s}'" for s in column.symbols)
            return f"CASE WHEN {value} IN ({allowed}) THEN {value} END"
        case Kind.LONG:
            return f"TRY_CAST({source} AS BIGINT)"
        case Kind.BOOLEAN:
            return f"TRY_CAST({source} AS BOOLEAN)"
        case Kind.DECIMAL:
            return decimal_sql(f"CAST({source} AS VARCHAR)")
        case Kind.TIMESTAMP:
            return f"TRY_CAST({source} AS TIMESTAMPTZ)"
        case Kind.DATE:
            return f"TRY_CAST({source} AS DATE)"
        case Kind.STRING_LIST:
            return f"TRY_CAST({source} AS VARCHAR[])" if text else source
        case Kind.STRING_MAP:
            return (
                f"TRY_CAST(TRY_CAST(nullif(trim({source}), '') AS JSON) AS MAP(VARCHAR, VARCHAR))"
                if text
                else source
            )


def _problem(present: bool) -> str:
    return "missing or invalid" if present else "missing"


class FileSource:
    """One CSV or Parquet file of v2 rows."""

    kind = "file"

    def __init__(
        self,
        path: Path,
        rejects: RejectFile,
        *,
        batch_rows: int,
        ingested_at: datetime,
        table: TableSpec | None = None,
    ) -> None:
        if not path.is_file():
            raise InvalidInputError(f"no such file: {path}")
        self.path = path
        self._parquet = path.suffix.lower() in {".parquet", ".pq"}
        self._rejects = rejects
        self._batch_rows = batch_rows
        self._ingested_at = ingested_at
        self.columns = self._input_columns()
        self.spec = table or self._guess_table()
        self._check_columns()
        self._duck = duckdb.connect()
        self._duck.execute("SET TimeZone = 'UTC'")

    @property
    def description(self) -> str:
        """What is loaded."""
        return f"file:{self.path.resolve()}"

    @property
    def total_bytes(self) -> int:
        """File size."""
        return self.path.stat().st_size

    def _input_columns(self) -> list[str]:
        if self._parquet:
            return list(pq.read_schema(self.path).names)
        with self.path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if not header:
            raise InvalidInputError(f"{self.path} is empty or has no header line")
        return [name.strip() for name in header]

    def _guess_table(self) -> TableSpec:
        if "trade_id" in self.columns:
            return TRADES
        if "quote_id" in self.columns:
            return QUOTES
        raise InvalidInputError(
            f"{self.path}: cannot tell trades from quotes (no trade_id or quote_id column)"
        )

    def _check_columns(self) -> None:
        missing = [
            c.name
            for c in self.spec.record.columns
            if c.required
            and c.name not in self.columns
            and c.name not in _DEFAULTED
            and c.kind not in (Kind.STRING_LIST,)
            and c.name != "side"
        ]
        if missing:
            raise InvalidInputError(f"{self.path}: missing required columns: {', '.join(missing)}")
        unknown = set(self.columns) - set(self.spec.record.names)
        if unknown:
            raise InvalidInputError(f"{self.path}: unknown columns: {', '.join(sorted(unknown))}")

    def _sql(self, text: bool) -> str:
        record = self.spec.record
        id_column = "trade_id" if self.spec is TRADES else "quote_id"
        kind = "trade" if self.spec is TRADES else "quote"
        converted = []
        for column in record.columns:
            if column.name in self.columns:
                converted.append(f"{_convert(column, f'r.{column.name}', text)} AS {column.name}")
            elif column.name in ("message_id", "ingestion_timestamp"):
                continue
            elif column.name in ("asset_class", "currency"):
                converted.append(f"v.{column.name} AS {column.name}")
            elif column.name == "side":
                converted.append("'UNKNOWN' AS side")
            elif column.kind is Kind.STRING_LIST:
                converted.append(f"[]::VARCHAR[] AS {column.name}")
            else:
                converted.append(f"NULL AS {column.name}")
        missing = [
            f"WHEN {c.name} IS NULL THEN '{_problem(c.name in self.columns)} {c.name}'"
            for c in record.columns
            if c.required and c.name not in ("message_id", "ingestion_timestamp")
        ]
        negative = [
            f"WHEN {c.name} < 0 THEN 'negative {c.name}'" for c in record.columns if c.kind is Kind.DECIMAL
        ]
        checks = " ".join(missing + negative)
        derived_id = message_id_sql(message_key_sql("exchange", f"'{kind}'", id_column))
        message_id = f"coalesce(message_id, {derived_id})" if "message_id" in self.columns else derived_id
        ingested = (
            "coalesce(ingestion_timestamp, $ingested)"
            if "ingestion_timestamp" in self.columns
            else "$ingested"
        )
        outputs = ", ".join(
            message_id + " AS message_id"
            if c.name == "message_id"
            else ingested + " AS ingestion_timestamp"
            if c.name == "ingestion_timestamp"
            else c.name
            for c in record.columns
        )
        return f"""
            WITH v AS (SELECT * FROM venues), c AS (
                SELECT r.ordinal, {", ".join(converted)}
                FROM raw r LEFT JOIN v ON v.exchange = upper(trim(CAST(r.exchange AS VARCHAR)))
            )
            SELECT ordinal, CASE {checks} END AS reason, {outputs} FROM c
        """

    def batches(self) -> Iterator[SourceBatch]:
        """Yield the file's rows converted to the table's schema; bad rows go to the rejects."""
        venues = pa.table(
            {
                "exchange": [v.code for v in VENUES.values()],
                "asset_class": [v.asset_class.value for v in VENUES.values()],
                "currency": [v.currency for v in VENUES.values()],
            }
        )
        self._duck.register("venues", venues)
        if self._parquet:
            yield from self._parquet_batches()
        else:
            yield from self._csv_batches()

    def _run(self, raw: pa.Table, text: bool) -> tuple[pa.Table, pa.Table]:
        self._duck.register("raw", raw)
        result = self._duck.sql(self._sql(text), params={"ingested": self._ingested_at}).to_arrow_table()
        good, rejects = split_rejects(result, self.spec.record.names)
        return good.cast(self.spec.record.arrow_schema()), rejects

    def _parquet_batches(self) -> Iterator[SourceBatch]:
        handle = pq.ParquetFile(self.path)
        ordinal = 0
        for batch in handle.iter_batches(batch_size=self._batch_rows):
            raw = pa.Table.from_batches([batch])
            raw = raw.append_column("ordinal", pa.array(range(ordinal, ordinal + raw.num_rows), pa.int64()))
            good, rejects = self._run(raw, text=False)
            for row_ordinal, reason in zip(
                rejects["ordinal"].to_pylist(), rejects["reason"].to_pylist(), strict=True
            ):
                text = str(raw.slice(row_ordinal - ordinal, 1).drop_columns(["ordinal"]).to_pylist()[0])
                self._rejects.add(str(self.path), row_ordinal + 1, f"row {row_ordinal + 1}: {reason}", text)
            ordinal += raw.num_rows
            yield SourceBatch(
                self.spec,
                good,
                raw.num_rows,
                self.total_bytes * raw.num_rows // max(handle.metadata.num_rows, 1),
            )

    def _csv_batches(self) -> Iterator[SourceBatch]:
        rows = CsvRows(self.path, len(self.columns), self._batch_rows, header=True)
        for batch in rows.batches():
            raw = pa.table(
                {
                    "ordinal": batch.ordinals,
                    **dict(zip(self.columns, batch.fields, strict=True)),
                }
            )
            good, rejects = self._run(raw, text=True)
            rows.reject(batch, rejects)
            yield SourceBatch(self.spec, good, batch.rows_read, batch.bytes_read)
        rows.write_rejects(self._rejects)
