"""K2's records in Confluent's wire format: Arrow rows to Kafka message values and back.

A value is the magic byte ``0``, the writer schema's registry id as a 4-byte big-endian integer,
then one record in Avro binary encoding, as every Confluent-compatible client reads and writes it.

fastavro encodes and decodes the records, one call per message; everything around those calls is
columnar. Avro's logical types only say how to read a physical value: a ``decimal`` is its
unscaled integer as big-endian two's-complement ``bytes``, a ``timestamp-micros`` a ``long`` of
microseconds since the epoch, a ``date`` an ``int`` of days. The codec converts whole Arrow
columns to and from those physical values with numpy and lets fastavro work on the schema with the
logical types left out, which gives the same bytes while sparing fastavro a ``Decimal`` or
``datetime`` object per value. The logical types of a writer schema are checked once per schema
id instead, against those of the record's own schema.

A writer schema may be a later, compatible version of the record's: fields it adds are read too,
as optional columns after the record's own (the Avro reader schema is the record's plus those
fields), so a table can grow the columns instead of losing the values. A field of a type no K2
column holds fails that writer's messages; so does anything ``accept_columns`` refuses.

Decoding never raises for one bad message: values that do not frame, name an unknown schema id,
or do not decode are returned as ``(index, reason)`` beside the rows that did.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import fastavro
import numpy as np
import pyarrow as pa
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, to_parsing_canonical_form
from fastavro.types import Schema

from k2.errors import InvalidInputError
from k2.kafka.avro.decoding import decode_bodies
from k2.kafka.avro.encoding import encode_table
from k2.kafka.avro.physical import from_physical
from k2.kafka.avro.resolution import added_column, unreadable
from k2.schemas.avsc import load_avro
from k2.schemas.record import Column, Kind, Record

MAGIC_BYTE = 0
#: Magic byte and schema id in front of every value.
HEADER = struct.Struct(">bI")
#: Rows from which encoding a column at a time beats fastavro row by row: the columnar encoder
#: costs ~1 ms a batch plus ~1 µs a row, fastavro ~25 µs a row (measured on a trade batch).
COLUMNAR_MIN_ROWS = 48

SchemaLookup = Callable[[int], dict[str, Any]]
"""Returns the writer schema registered under an id; raises ``LookupError`` for an unknown id."""

ColumnCheck = Callable[[tuple[Column, ...]], str | None]
"""Judges the optional columns a writer schema adds to the record: None to take them, or the reason
that writer's messages cannot be taken."""

# What fastavro raises for a body that does not decode: EOFError when it is cut short, ValueError
# for bad UTF-8, IndexError for an enum or union index out of range, SchemaResolutionError when
# the writer's record cannot be read as the reader's. TypeError and OverflowError are not known to
# occur; they are caught too because one bad message must never fail a batch.
_BODY_ERRORS = (EOFError, ValueError, LookupError, TypeError, OverflowError, SchemaResolutionError)
_SCHEMA_ERRORS = (SchemaParseException, ValueError, LookupError, TypeError, AttributeError)
_LOGICAL_KEYS = ("logicalType", "precision", "scale")


@dataclass(frozen=True, slots=True)
class Decoded:
    """The outcome of decoding a list of values.

    ``rows`` holds the values that decoded, in their input order, in the record's Arrow schema
    followed by the optional columns that the writer schemas of those values add (null in rows
    whose writer lacks them); ``errors`` lists ``(index, reason)`` for every other value, by index.
    """

    rows: pa.Table
    errors: list[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class _Writer:
    """A writer schema ready for fastavro: its physical form, the reader schema to resolve it to
    (None when the writer is the codec's own schema and needs no resolution), and the columns of
    the fields it adds to the record.
    """

    physical: Schema
    reader: Schema | None
    added: tuple[Column, ...] = ()


def _physical_schema(schema: Any) -> Any:
    """``schema`` without its logical type annotations: the physical types Avro encodes."""
    if isinstance(schema, dict):
        return {
            k: v if k == "default" else _physical_schema(v)
            for k, v in schema.items()
            if k not in _LOGICAL_KEYS
        }
    if isinstance(schema, list):
        return [_physical_schema(s) for s in schema]
    return schema


def _logical_types(schema: dict[str, Any]) -> dict[str, tuple[object, ...]]:
    """Each record field's logical type and scale, of its non-null branch."""
    found: dict[str, tuple[object, ...]] = {}
    for field in schema["fields"]:
        branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for branch in branches:
            if branch != "null":
                annotated = branch if isinstance(branch, dict) else {}
                found[field["name"]] = tuple(annotated.get(k) for k in ("logicalType", "scale"))
    return found


class RecordCodec:
    """Encodes and decodes one record's rows (trades or quotes) in Confluent's wire format.

    Writer schemas are cached by registry id, so one codec serves one registry.

    Args:
        record: the record encoded and decoded.
        accept_columns: called once per writer schema that adds fields to the record, with their
            columns; returns None to take them, or why that writer's messages cannot be taken
            (the sink evolves its table here). Without it every added column is taken.

    Attributes:
        record: the record encoded and decoded.
        schema: its Avro schema as it ships with K2: what producers register and write with.
    """

    def __init__(self, record: Record, accept_columns: ColumnCheck | None = None) -> None:
        self.record = record
        self.schema = load_avro(record.name, record.version)
        self._accept_columns = accept_columns
        self._arrow = record.arrow_schema()
        self._physical = fastavro.parse_schema(_physical_schema(self.schema))
        self._canonical = to_parsing_canonical_form(self._physical)
        self._logical = _logical_types(self.schema)
        self._fields = cast(dict[str, Any], fastavro.parse_schema(self.schema, expand=True))["fields"]
        self._parsed = fastavro.parse_schema(self.schema)
        self._maps = [c.name for c in record.columns if c.kind is Kind.STRING_MAP]
        self._writers: dict[int, _Writer] = {}
        # Columns later writers added, by name, in the order first seen: one type per name.
        self._added: dict[str, Column] = {}

    def encode(self, rows: pa.Table, schema_id: int) -> list[bytes]:
        """Encode every row as one message value written with schema ``schema_id``.

        Args:
            rows: rows with the record's columns (others are ignored), castable to its Arrow schema.
            schema_id: the registry id of :attr:`schema` under the topic's subject.

        Returns:
            One value per row, in row order.

        Raises:
            InvalidInputError: the rows do not fit the record (a missing column, a value of the
                wrong type, an enum symbol the schema does not list, a null in a required field).
        """
        if not 0 <= schema_id < 2**32:
            raise InvalidInputError(f"schema id {schema_id} does not fit the wire format's 4 bytes")
        try:
            table = rows.select(self.record.names).cast(self._arrow)
        except (KeyError, ValueError, pa.ArrowException) as exc:
            raise InvalidInputError(f"rows do not fit the {self.record.name} record: {exc}") from None
        header = HEADER.pack(MAGIC_BYTE, schema_id)
        if table.num_rows >= COLUMNAR_MIN_ROWS:
            return encode_table(self.record.columns, table, header)
        return self._encode_rows(table, header)

    def _encode_rows(self, table: pa.Table, header: bytes) -> list[bytes]:
        """Encode row by row with fastavro, from Python values (a few rows: no fixed cost)."""
        write, schema = fastavro.schemaless_writer, self._parsed
        buffer = io.BytesIO()
        values: list[bytes] = []
        for row in table.to_pylist():
            for name in self._maps:
                if row[name] is not None:
                    row[name] = dict(row[name])
            buffer.seek(0)
            buffer.truncate()
            buffer.write(header)
            try:
                write(buffer, schema, row)
            except (ValueError, TypeError, LookupError, OverflowError) as exc:
                raise InvalidInputError(
                    f"row {len(values)} does not fit the {self.record.name} record: {exc}"
                ) from None
            values.append(buffer.getvalue())
        return values

    def decode(self, values: Sequence[bytes | None], schema_for: SchemaLookup) -> Decoded:
        """Decode message values into rows of the record's Arrow schema, plus added columns.

        Each value is read with the schema it was written with and resolved to this record's
        schema, so values of a later, compatible version decode too; the fields such a version adds
        (say one more optional field) become optional columns after the record's.

        Args:
            values: message values as consumed; None (a tombstone) is an error like any other.
            schema_for: the writer schema registered under an id; called once per id not seen
                before. An unknown id must raise ``LookupError`` (``k2.errors.NotFoundError`` is
                one), which fails only that id's values.

        Returns:
            The rows that decoded and the ``(index, reason)`` of every value that did not.

        Raises:
            Exception: whatever ``schema_for`` raises other than ``LookupError`` (an unreachable
                registry fails the whole call, not the messages).
        """
        unknown: dict[int, str] = {}
        at_once = self._decode_at_once(values, schema_for, unknown)
        if at_once is not None:
            return Decoded(at_once, [])
        return self._decode_each(values, schema_for, unknown)

    def _decode_each(
        self, values: Sequence[bytes | None], schema_for: SchemaLookup, unknown: dict[int, str]
    ) -> Decoded:
        """Decode value by value with fastavro, noting what is wrong with each one that fails."""
        read = fastavro.schemaless_reader
        writers = self._writers
        records: list[dict[str, Any]] = []
        kept: list[int] = []
        errors: list[tuple[int, str]] = []
        for index, value in enumerate(values):
            if value is None or len(value) < HEADER.size:
                errors.append((index, f"value of {0 if value is None else len(value)} bytes has no header"))
                continue
            if value[0] != MAGIC_BYTE:
                errors.append((index, f"unknown magic byte {value[0]}"))
                continue
            schema_id = int.from_bytes(value[1 : HEADER.size], "big")
            writer = writers.get(schema_id)
            if writer is None:
                if schema_id not in unknown:
                    found = self._writer(schema_id, schema_for)
                    if isinstance(found, str):
                        unknown[schema_id] = found
                    else:
                        writer = writers[schema_id] = found
                if writer is None:
                    errors.append((index, unknown[schema_id]))
                    continue
            buffer = io.BytesIO(value)
            buffer.seek(HEADER.size)
            try:
                record = read(buffer, writer.physical, writer.reader)
            except _BODY_ERRORS as exc:
                errors.append((index, f"body does not decode with schema {schema_id}: {_describe(exc)}"))
                continue
            if not isinstance(record, dict):  # a record schema reads dicts; this narrows the type
                errors.append((index, f"schema {schema_id} does not write a record"))
                continue
            if buffer.tell() != len(value):
                errors.append((index, f"{len(value) - buffer.tell()} bytes left after the record"))
                continue
            records.append(record)
            kept.append(index)
        # A writer's added fields are in every record it wrote, null or not.
        added = [column for column in self._added.values() if any(column.name in r for r in records)]
        rows, bad = self._table(records, added)
        if bad:
            errors.extend((kept[position], reason) for position, reason in bad)
            errors.sort()
            drop = np.zeros(rows.num_rows, dtype=bool)
            drop[[position for position, _ in bad]] = True
            rows = rows.filter(pa.array(~drop))
        return Decoded(rows, errors)

    def _decode_at_once(
        self, values: Sequence[bytes | None], schema_for: SchemaLookup, unknown: dict[int, str]
    ) -> pa.Table | None:
        """The rows of ``values`` read a field at a time (:mod:`k2.kafka.avro.decoding`) when all
        of them are framed values written with this record's own schema under one id and read
        cleanly; otherwise None, and fastavro reads them one by one. An id found unusable is
        noted in ``unknown``.
        """
        if not values:
            return None
        binary = pa.array(values, pa.binary())
        if binary.null_count:
            return None
        offsets = np.frombuffer(binary.buffers()[1], dtype=np.int32)[: len(binary) + 1].astype(np.int64)
        body = binary.buffers()[2]
        data = np.frombuffer(body, dtype=np.uint8) if body is not None else np.zeros(0, dtype=np.uint8)
        starts = offsets[:-1]
        if (np.diff(offsets) < HEADER.size).any() or (data[starts] != MAGIC_BYTE).any():
            return None
        ids = np.zeros(len(starts), dtype=np.int64)
        for k in range(1, HEADER.size):
            ids = (ids << 8) | data[starts + k]
        schema_id = int(ids[0])
        if (ids != schema_id).any():
            return None
        writer = self._writers.get(schema_id)
        if writer is None:
            found = self._writer(schema_id, schema_for)
            if isinstance(found, str):
                unknown[schema_id] = found
                return None
            writer = self._writers[schema_id] = found
        if writer.reader is not None:  # another writer schema: fastavro resolves it
            return None
        return decode_bodies(self.record.columns, self._arrow, data, starts + HEADER.size, offsets[1:])

    def _writer(self, schema_id: int, schema_for: SchemaLookup) -> _Writer | str:
        """The parsed writer schema of ``schema_id``, or why its values cannot be read."""
        try:
            schema = schema_for(schema_id)
        except LookupError:
            return f"unknown schema id {schema_id}"
        if schema.get("type") != "record":
            return f"schema {schema_id} is not an Avro record"
        try:
            physical = fastavro.parse_schema(_physical_schema(schema))
            canonical = to_parsing_canonical_form(physical)
            logical = _logical_types(schema)
        except _SCHEMA_ERRORS as exc:
            return f"schema {schema_id} is not a usable Avro schema: {_describe(exc)}"
        for name, wanted in self._logical.items():
            if name in logical and logical[name] != wanted:
                return (
                    f"schema {schema_id} writes {name} as {logical[name]}, "
                    f"the {self.record.name} record reads {wanted}"
                )
        if canonical == self._canonical:
            return _Writer(physical, None)
        return self._resolving_writer(schema_id, schema, physical)

    def _resolving_writer(self, schema_id: int, schema: dict[str, Any], physical: Schema) -> _Writer | str:
        """A writer schema other than the record's, read by resolving it to the record's schema
        plus the fields it adds; or why that cannot be done without dropping or retyping a field,
        or the added fields cannot be taken.
        """
        name = str(schema.get("name", "")).rsplit(".", 1)[-1]
        if name != self.record.name:
            return f"schema {schema_id} writes {name} records, not {self.record.name}"
        own = set(self.record.names)
        added_fields = [f for f in schema["fields"] if f["name"] not in own]
        try:
            expanded = cast(dict[str, Any], fastavro.parse_schema(schema, expand=True))["fields"]
            reader = fastavro.parse_schema(
                _physical_schema({**self.schema, "fields": [*self.schema["fields"], *added_fields]})
            )
        except _SCHEMA_ERRORS as exc:
            return f"schema {schema_id} is not a usable Avro schema: {_describe(exc)}"
        written = {f["name"]: f for f in expanded}
        for field in self._fields:
            problem = unreadable(field, written.get(field["name"]))
            if problem is not None:
                return f"schema {schema_id} {problem}, which the {self.record.name} record cannot read"
        columns: list[Column] = []
        for field in expanded:
            if field["name"] in own:
                continue
            column = added_column(field)
            if isinstance(column, str):
                return f"schema {schema_id} {column}"
            known = self._added.get(column.name)
            if known is not None and known.arrow_type() != column.arrow_type():
                return (
                    f"schema {schema_id} adds field {column.name} as {column.arrow_type()}, "
                    f"an earlier schema added it as {known.arrow_type()}"
                )
            columns.append(column)
        if not columns:
            return _Writer(physical, self._physical)
        added = tuple(columns)
        refused = self._accept_columns(added) if self._accept_columns is not None else None
        if refused is not None:
            return f"schema {schema_id}: {refused}"
        for column in added:
            self._added.setdefault(column.name, column)
        return _Writer(physical, reader, added)

    def _table(
        self, records: list[dict[str, Any]], added: list[Column]
    ) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The decoded records as an Arrow table with the record's columns and ``added``, and the
        positions of those with a value that does not fit it (a decimal beyond its precision),
        with the reason.
        """
        schema = self._arrow
        for column in added:
            schema = schema.append(pa.field(column.name, column.arrow_type()))
        arrays: list[pa.Array] = []
        bad: dict[int, str] = {}
        for column in (*self.record.columns, *added):
            arrow_type = schema.field(column.name).type
            array, misfit = from_physical(column.kind, [r.get(column.name) for r in records], arrow_type)
            for position in np.flatnonzero(misfit).tolist():
                bad.setdefault(position, f"{column.name} does not fit {arrow_type}")
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=schema), sorted(bad.items())


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
