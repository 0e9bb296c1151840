"""Write one partition's rows as Iceberg data files: Parquet written by pyarrow, described for
the manifest by pyiceberg's own statistics helpers.

The rows arrive arranged (one partition, sorted by the table's sort order), so no partition
split or copy happens here: each file is written straight from the rows' buffers. Files carry
what pyiceberg's writer puts in them (field ids and docs in the Arrow schema, zstd, the table's
row-group limit) with encodings chosen per column: the key columns that change on every row are
not dictionary-encoded (``message_id`` stays plain, venue ids share prefixes, times and sequences
are delta-encoded), which makes files smaller and faster to write. Bounds, counts and split
offsets come from the Parquet footer through pyiceberg's ``data_file_statistics_from_parquet_metadata``,
as for files pyiceberg writes or adds.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    schema_to_pyarrow,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.schema import Schema
from pyiceberg.table import TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.types import IcebergType, ListType, MapType, NestedField

FIELD_ID_KEY = b"PARQUET:field_id"
DOC_KEY = b"doc"

#: Encodings per column where they beat a dictionary (which only adds an index to values that
#: change on every row): message ids are random text of one length, so their lengths pack away and
#: zstd sees the bare text; event times and source sequences rise by small steps within each
#: symbol's sorted run.
COLUMN_ENCODINGS = {
    "message_id": "DELTA_LENGTH_BYTE_ARRAY",
    "timestamp": "DELTA_BINARY_PACKED",
    "source_sequence": "DELTA_BINARY_PACKED",
}
#: Columns written plain (every leaf, nested ones included): venue ids are unique per row and zstd
#: finds their shared prefixes; the rest repeat one or a few values per file, which zstd packs as
#: small as a dictionary would, for less work.
PLAIN_COLUMNS = frozenset(
    {"trade_id", "quote_id", "trade_conditions", "vendor_data", "ingestion_timestamp", "platform_sequence"}
)


def _field_metadata(field: NestedField) -> dict[bytes, bytes]:
    metadata = {DOC_KEY: field.doc.encode()} if field.doc else {}
    metadata[FIELD_ID_KEY] = str(field.field_id).encode()
    return metadata


def _arrow_type(kind: IcebergType) -> pa.DataType:
    """The Arrow type K2's rows use for ``kind``, nested fields carrying their ids."""
    if isinstance(kind, ListType):
        return pa.list_(file_field(kind.element_field))
    if isinstance(kind, MapType):
        return pa.map_(file_field(kind.key_field), file_field(kind.value_field))
    arrow_type = schema_to_pyarrow(kind)
    if pa.types.is_large_string(arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type):
        return pa.binary()
    return arrow_type


def file_field(field: NestedField) -> pa.Field:
    """``field`` as a data file's Arrow field: field id and doc in its metadata, as pyiceberg
    writes them (Parquet takes its field ids from there).
    """
    return pa.field(
        field.name, _arrow_type(field.field_type), nullable=field.optional, metadata=_field_metadata(field)
    )


def _int(properties: dict[str, str], name: str, default: int) -> int:
    return int(properties.get(name, default))


def _column(rows: pa.Table, field: pa.Field) -> pa.ChunkedArray:
    """The column of ``rows`` for ``field``, typed as ``field`` (nulls if the rows lack it)."""
    if field.name not in rows.column_names:
        return pa.chunked_array([pa.nulls(rows.num_rows, field.type)], field.type)
    values = rows[field.name]
    if values.type == field.type:
        # Equal types may still differ in nested field names and metadata: relabel, no copy.
        return pa.chunked_array([chunk.view(field.type) for chunk in values.chunks], field.type)
    return values.cast(field.type)


class DataFileWriter:
    """Writes data files of one table for one commit; safe to use from several threads."""

    def __init__(
        self, metadata: TableMetadata, io: FileIO, commit_uuid: uuid.UUID, counter: itertools.count[int]
    ) -> None:
        self._metadata = metadata
        self._io = io
        self._commit_uuid = commit_uuid
        self._counter = counter
        self._schema: Schema = metadata.schema()
        self._locations = load_location_provider(metadata.location, metadata.properties)
        properties = metadata.properties
        self._row_group_rows = _int(
            properties,
            TableProperties.PARQUET_ROW_GROUP_LIMIT,
            TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT,
        )
        self._target_bytes = _int(
            properties,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
        )
        self._fields = [file_field(field) for field in self._schema.fields]
        self._stats_plan = compute_statistics_plan(self._schema, properties)
        self._leaf_ids = parquet_path_to_id_mapping(self._schema)
        self._options = self._writer_options(properties)

    def _writer_options(self, properties: dict[str, str]) -> dict[str, Any]:
        codec = properties.get(
            TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT
        )
        level = properties.get(TableProperties.PARQUET_COMPRESSION_LEVEL)
        encodings = {name: how for name, how in COLUMN_ENCODINGS.items() if name in self._leaf_ids}
        dictionary = [
            path
            for path in self._leaf_ids
            if path not in encodings and path.split(".")[0] not in PLAIN_COLUMNS
        ]
        return {
            "compression": "none" if codec == "uncompressed" else codec,
            "compression_level": int(level) if level is not None else None,
            "data_page_size": _int(
                properties,
                TableProperties.PARQUET_PAGE_SIZE_BYTES,
                TableProperties.PARQUET_PAGE_SIZE_BYTES_DEFAULT,
            ),
            "dictionary_pagesize_limit": _int(
                properties,
                TableProperties.PARQUET_DICT_SIZE_BYTES,
                TableProperties.PARQUET_DICT_SIZE_BYTES_DEFAULT,
            ),
            "write_batch_size": _int(
                properties,
                TableProperties.PARQUET_PAGE_ROW_LIMIT,
                TableProperties.PARQUET_PAGE_ROW_LIMIT_DEFAULT,
            ),
            "use_dictionary": dictionary,
            "column_encoding": encodings or None,
            "store_decimal_as_integer": True,
        }

    def file_rows(self, rows: pa.Table) -> pa.Table:
        """``rows`` in the data files' Arrow schema (field ids and docs, nested ids included)."""
        return pa.Table.from_arrays(
            [_column(rows, field) for field in self._fields], schema=pa.schema(self._fields)
        )

    def write(self, rows: pa.Table) -> list[DataFile]:
        """Write the rows of one partition as one or more data files (by target size)."""
        if rows.num_rows == 0:
            return []
        key = self._partition_key(rows)
        table = self.file_rows(rows)
        per_file = max(
            self._row_group_rows, int(self._target_bytes / max(1.0, table.nbytes / table.num_rows))
        )
        return [
            self._write_file(table.slice(start, per_file), key)
            for start in range(0, table.num_rows, per_file)
        ]

    def _partition_key(self, rows: pa.Table) -> PartitionKey:
        """The partition of ``rows``, read from their first row (the rows share it)."""
        spec = self._metadata.spec()
        values = []
        for field in spec.fields:
            source = self._schema.find_field(field.source_id)
            first = rows[source.name].slice(0, 1)
            value = field.transform.pyarrow_transform(source.field_type)(first).to_pylist()[0]
            values.append(PartitionFieldValue(field, value))
        return PartitionKey(field_values=values, partition_spec=spec, schema=self._schema)

    def _write_file(self, table: pa.Table, key: PartitionKey) -> DataFile:
        name = f"00000-{next(self._counter)}-{self._commit_uuid}.parquet"
        partitioned = not self._metadata.spec().is_unpartitioned()
        path = self._locations.new_data_location(
            data_file_name=name, partition_key=key if partitioned else None
        )
        output = self._io.new_output(path)
        footers: list[pq.FileMetaData] = []
        with output.create(overwrite=True) as stream:
            writer = pq.ParquetWriter(stream, table.schema, metadata_collector=footers, **self._options)
            writer.write_table(table, row_group_size=self._row_group_rows)
            writer.close()
        statistics = data_file_statistics_from_parquet_metadata(footers[0], self._stats_plan, self._leaf_ids)
        return DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=path,
            file_format=FileFormat.PARQUET,
            partition=key.partition,
            file_size_in_bytes=len(output),
            sort_order_id=None,
            spec_id=self._metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **statistics.to_serialized_dict(),
        )
