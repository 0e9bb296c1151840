"""Encode result rows as JSON, CSV, Parquet or an Arrow IPC stream.

JSON keeps decimals exact (as strings) and times as ISO-8601 UTC with ``Z``; JSON, CSV and
Arrow are streamed batch by batch rather than built whole in memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi.responses import Response, StreamingResponse

from k2.api.models import OutputFormat

BATCH_ROWS = 10_000
JSON_CHUNK_ROWS = 50_000
MEDIA_TYPES = {
    OutputFormat.JSON: "application/json",
    OutputFormat.CSV: "text/csv; charset=utf-8",
    OutputFormat.PARQUET: "application/vnd.apache.parquet",
    OutputFormat.ARROW: "application/vnd.apache.arrow.stream",
}


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """K2's JSON encoding: exact decimals as strings, UTC times with ``Z``."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def _json_expression(field: pa.Field) -> str:
    """SQL rendering one column as K2's JSON value: exact decimal strings, ISO UTC times."""
    name: str = '"' + field.name.replace('"', '""') + '"'
    if pa.types.is_decimal(field.type):
        # 36.66700000 -> 36.667, 20000.00000000 -> 20000
        return (
            f"rtrim(rtrim(CAST({name} AS VARCHAR), '0'), '.')"
            if field.type.scale > 0
            else f"CAST({name} AS VARCHAR)"
        )
    if pa.types.is_timestamp(field.type):
        return f"replace(strftime({name}, '%Y-%m-%dT%H:%M:%S.%fZ'), '.000000Z', 'Z')"
    if pa.types.is_date(field.type):
        return f"strftime({name}, '%Y-%m-%d')"
    return name


CursorFactory = Callable[[], duckdb.DuckDBPyConnection]


def _json_rows(duck: CursorFactory, table: pa.Table) -> bytes:
    """The rows of ``table`` as comma-separated JSON objects, encoded column-wise by DuckDB."""
    members = ", ".join(f'"{f.name}" := {_json_expression(f)}' for f in table.schema)
    objects = _duck_select(duck, table, f"to_json(struct_pack({members})) AS j")["j"]
    whole = pa.ListArray.from_arrays(pa.array([0, len(objects)], pa.int32()), objects.combine_chunks())
    text: bytes = pc.binary_join(whole, ",")[0].as_buffer().to_pybytes()
    return text


def _json_stream(duck: CursorFactory, table: pa.Table, envelope: dict[str, Any]) -> Iterator[bytes]:
    head = dumps({**envelope, "data": []})
    # The envelope is written around the streamed rows: '{..., "data": [' rows '], ...}'.
    prefix, suffix = head.split(b'"data":[]', 1)
    yield prefix + b'"data":['
    for start in range(0, table.num_rows, JSON_CHUNK_ROWS):
        chunk = _json_rows(duck, table.slice(start, JSON_CHUNK_ROWS))
        yield chunk if start == 0 else b"," + chunk
    yield b"]" + suffix


def _flat(duck: CursorFactory, table: pa.Table) -> pa.Table:
    """Columns as CSV can carry them: lists and maps as JSON text, K2's decimal and time text."""
    columns = []
    for field in table.schema:
        name = '"' + field.name.replace('"', '""') + '"'
        if pa.types.is_map(field.type) or pa.types.is_list(field.type):
            columns.append(f"CAST(to_json({name}) AS VARCHAR) AS {name}")
        else:
            columns.append(f"{_json_expression(field)} AS {name}")
    return _duck_select(duck, table, ", ".join(columns))


def _duck_select(duck: CursorFactory, table: pa.Table, select: str) -> pa.Table:
    """``SELECT <select> FROM table`` on a fresh cursor of the engine's DuckDB database (a new
    database would cost more than the encoding itself).
    """
    cursor = duck()
    try:
        cursor.register("page", table)
        return cursor.sql(f"SELECT {select} FROM page").to_arrow_table()
    finally:
        cursor.close()


def _csv_stream(duck: CursorFactory, table: pa.Table) -> Iterator[bytes]:
    # pyarrow quotes every header name; column names here never need quoting.
    yield (",".join(table.column_names) + "\n").encode()
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        buffer = io.BytesIO()
        pacsv.write_csv(
            _flat(duck, pa.Table.from_batches([batch])),
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


def encode(
    table: pa.Table,
    fmt: OutputFormat,
    envelope: dict[str, Any],
    filename: str,
    headers: dict[str, str],
    *,
    duck: CursorFactory,
) -> Response:
    """The response carrying ``table`` in ``fmt``; ``envelope`` wraps JSON rows (meta, pagination).

    ``duck`` gives DuckDB cursors for the column-wise text encoding of JSON and CSV.
    """
    headers = {**headers, "X-Record-Count": str(table.num_rows)}
    if fmt is OutputFormat.JSON:
        return StreamingResponse(
            _json_stream(duck, table, envelope), media_type=MEDIA_TYPES[fmt], headers=headers
        )
    headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt.value}"'
    if fmt is OutputFormat.CSV:
        return StreamingResponse(_csv_stream(duck, table), media_type=MEDIA_TYPES[fmt], headers=headers)
    if fmt is OutputFormat.ARROW:
        return StreamingResponse(_arrow_stream(table), media_type=MEDIA_TYPES[fmt], headers=headers)
    return StreamingResponse(_parquet_stream(table), media_type=MEDIA_TYPES[fmt], headers=headers)


def one(value: Any) -> Response:
    """A single JSON document."""
    return Response(dumps(value), media_type=MEDIA_TYPES[OutputFormat.JSON])
