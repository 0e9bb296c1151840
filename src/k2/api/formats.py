"""Encode result rows as JSON, CSV, Parquet or an Arrow IPC stream.

JSON keeps decimals exact (as strings) and times as ISO-8601 UTC with microseconds and ``Z``. Answers of up to
``WHOLE_ROWS`` rows go out as one body; larger ones are streamed batch by batch rather than built
whole in memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi.responses import Response, StreamingResponse

from k2.api.json_text import csv_columns, json_rows
from k2.api.models import OutputFormat
from k2.domain.time import utc_text

BATCH_ROWS = 10_000
JSON_CHUNK_ROWS = 50_000
WHOLE_ROWS = 100_000
MEDIA_TYPES = {
    OutputFormat.JSON: "application/json",
    OutputFormat.CSV: "text/csv; charset=utf-8",
    OutputFormat.PARQUET: "application/vnd.apache.parquet",
    OutputFormat.ARROW: "application/vnd.apache.arrow.stream",
}


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date | time):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """K2's JSON encoding: exact decimals as strings, times as :func:`~k2.domain.time.utc_text`."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _envelope_around(envelope: dict[str, Any]) -> tuple[bytes, bytes]:
    """The JSON before and after the rows: '{..., "data": [' and '], ...}'."""
    prefix, suffix = dumps({**envelope, "data": []}).split(b'"data":[]', 1)
    return prefix + b'"data":[', b"]" + suffix


def _json_chunks(table: pa.Table) -> Iterator[bytes | memoryview]:
    """The rows as comma-separated JSON objects, ``JSON_CHUNK_ROWS`` at a time."""
    for start in range(0, table.num_rows, JSON_CHUNK_ROWS):
        if start:
            yield b","
        yield json_rows(table.slice(start, JSON_CHUNK_ROWS))


def _json_stream(table: pa.Table, envelope: dict[str, Any]) -> Iterator[bytes | memoryview]:
    prefix, suffix = _envelope_around(envelope)
    yield prefix
    yield from _json_chunks(table)
    yield suffix


def _csv_stream(table: pa.Table) -> Iterator[bytes]:
    # pyarrow quotes every header name; column names here never need quoting.
    yield (",".join(table.column_names) + "\n").encode()
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        buffer = io.BytesIO()
        pacsv.write_csv(
            csv_columns(pa.Table.from_batches([batch])),
            buffer,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        yield buffer.getvalue()


def _arrow_stream(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=BATCH_ROWS * 10):
            writer.write_batch(batch)
            yield sink.getvalue()
            sink.seek(0)
            sink.truncate()
    yield sink.getvalue()


class _Chunks(io.RawIOBase):
    """A write-only sink that hands out what was written so far, keeping its logical position
    (Parquet's footer records offsets from the start of the stream).
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        """The bytes written since the last take."""
        chunk, self._parts = b"".join(self._parts), []
        return chunk


def _parquet_stream(table: pa.Table) -> Iterator[bytes]:
    """Parquet (zstd) one row group at a time, so the first bytes leave before the last are made."""
    sink = _Chunks()
    with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
        for batch in table.to_batches(max_chunksize=BATCH_ROWS * 10):
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def rows_body(table: pa.Table, fmt: OutputFormat) -> bytes | memoryview:
    """``table`` encoded in ``fmt``: for JSON the rows only (the envelope goes around them, see
    :func:`respond_with`), for the other formats the whole body.
    """
    chunks: Iterator[bytes | memoryview]
    if fmt is OutputFormat.ARROW:  # written once into Arrow's own buffer: no copy in Python
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=BATCH_ROWS * 10)
        return memoryview(sink.getvalue())
    if fmt is OutputFormat.JSON:
        chunks = _json_chunks(table)
    elif fmt is OutputFormat.CSV:
        chunks = _csv_stream(table)
    else:
        chunks = _parquet_stream(table)
    return b"".join(chunks)


def respond_with(
    body: bytes | memoryview,
    count: int,
    fmt: OutputFormat,
    *,
    envelope: dict[str, Any],
    filename: str,
    headers: dict[str, str],
) -> Response:
    """The response carrying ``count`` rows encoded as ``body`` (see :func:`rows_body`)."""
    headers = {**headers, "X-Record-Count": str(count)}
    if fmt is OutputFormat.JSON:
        prefix, suffix = _envelope_around(envelope)
        return Response(b"".join((prefix, body, suffix)), media_type=MEDIA_TYPES[fmt], headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt.value}"'
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def encode(
    table: pa.Table,
    fmt: OutputFormat,
    envelope: dict[str, Any],
    filename: str,
    headers: dict[str, str],
) -> Response:
    """The response carrying ``table`` in ``fmt``; ``envelope`` wraps JSON rows (meta, pagination).

    Up to ``WHOLE_ROWS`` rows are encoded here, on the caller's thread, and sent as one body;
    more are streamed, chunk by chunk (each chunk a hop to a worker thread and a write).
    """
    if table.num_rows <= WHOLE_ROWS:
        return respond_with(
            rows_body(table, fmt), table.num_rows, fmt, envelope=envelope, filename=filename, headers=headers
        )
    headers = {**headers, "X-Record-Count": str(table.num_rows)}
    if fmt is OutputFormat.JSON:
        return StreamingResponse(_json_stream(table, envelope), media_type=MEDIA_TYPES[fmt], headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt.value}"'
    if fmt is OutputFormat.CSV:
        return StreamingResponse(_csv_stream(table), media_type=MEDIA_TYPES[fmt], headers=headers)
    if fmt is OutputFormat.ARROW:
        return StreamingResponse(_arrow_stream(table), media_type=MEDIA_TYPES[fmt], headers=headers)
    return StreamingResponse(_parquet_stream(table), media_type=MEDIA_TYPES[fmt], headers=headers)


def one(value: Any) -> Response:
    """A single JSON document."""
    return Response(dumps(value), media_type=MEDIA_TYPES[OutputFormat.JSON])
