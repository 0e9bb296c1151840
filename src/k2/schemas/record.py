"""One declaration per record, from which its Arrow, Avro and Iceberg forms are derived.

A :class:`Record` lists :class:`Column` s with a :class:`Kind` each; ``arrow_schema``,
``avro_schema`` and ``iceberg_schema`` turn that one list into the three forms, so they cannot
drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pyarrow as pa
from pyiceberg import types as it
from pyiceberg.schema import Schema

from k2.domain.events import PRICE_PRECISION, PRICE_SCALE

AVRO_NAMESPACE = "com.k2.marketdata"


class Kind(StrEnum):
    """The value kinds K2 records use."""

    STRING = "string"
    LONG = "long"
    BOOLEAN = "boolean"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    DATE = "date"
    STRING_LIST = "string_list"
    STRING_MAP = "string_map"
    ENUM = "enum"


@dataclass(frozen=True, slots=True)
class Column:
    """One field of a record. ``symbols`` lists an enum's values (stored as strings);
    ``precision`` and ``scale`` size a decimal (prices by default).
    """

    name: str
    kind: Kind
    doc: str
    required: bool = True
    symbols: tuple[str, ...] = ()
    enum_name: str = ""
    precision: int = PRICE_PRECISION
    scale: int = PRICE_SCALE

    def arrow_type(self) -> pa.DataType:
        """The Arrow type of this column."""
        match self.kind:
            case Kind.STRING | Kind.ENUM:
                return pa.string()
            case Kind.LONG:
                return pa.int64()
            case Kind.BOOLEAN:
                return pa.bool_()
            case Kind.DECIMAL:
                return pa.decimal128(self.precision, self.scale)
            case Kind.TIMESTAMP:
                return pa.timestamp("us", tz="UTC")
            case Kind.DATE:
                return pa.date32()
            case Kind.STRING_LIST:
                return pa.list_(pa.field("element", pa.string(), nullable=False))
            case Kind.STRING_MAP:
                return pa.map_(pa.string(), pa.field("value", pa.string(), nullable=False))

    def avro_type(self) -> Any:
        """The Avro type of this column, without the null union."""
        match self.kind:
            case Kind.STRING:
                return "string"
            case Kind.ENUM:
                return {"type": "enum", "name": self.enum_name, "symbols": list(self.symbols)}
            case Kind.LONG:
                return "long"
            case Kind.BOOLEAN:
                return "boolean"
            case Kind.DECIMAL:
                return {
                    "type": "bytes",
                    "logicalType": "decimal",
                    "precision": self.precision,
                    "scale": self.scale,
                }
            case Kind.TIMESTAMP:
                return {"type": "long", "logicalType": "timestamp-micros"}
            case Kind.DATE:
                return {"type": "int", "logicalType": "date"}
            case Kind.STRING_LIST:
                return {"type": "array", "items": "string"}
            case Kind.STRING_MAP:
                return {"type": "map", "values": "string"}

    def iceberg_type(self, next_id: int) -> tuple[it.IcebergType, int]:
        """The Iceberg type of this column, and the next free field id after nested ones."""
        match self.kind:
            case Kind.STRING | Kind.ENUM:
                return it.StringType(), next_id
            case Kind.LONG:
                return it.LongType(), next_id
            case Kind.BOOLEAN:
                return it.BooleanType(), next_id
            case Kind.DECIMAL:
                return it.DecimalType(self.precision, self.scale), next_id
            case Kind.TIMESTAMP:
                return it.TimestamptzType(), next_id
            case Kind.DATE:
                return it.DateType(), next_id
            case Kind.STRING_LIST:
                return it.ListType(next_id, it.StringType(), element_required=True), next_id + 1
            case Kind.STRING_MAP:
                return (
                    it.MapType(next_id, it.StringType(), next_id + 1, it.StringType(), value_required=True),
                    next_id + 2,
                )


@dataclass(frozen=True, slots=True)
class Record:
    """A record declaration: name, version, documentation and columns in order."""

    name: str
    version: int
    doc: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow form."""
        return pa.schema([pa.field(c.name, c.arrow_type(), nullable=not c.required) for c in self.columns])

    def avro_schema(self) -> dict[str, Any]:
        """The Avro form; an enum is declared in full the first time it is used."""
        fields: list[dict[str, Any]] = []
        for c in self.columns:
            avro: Any = c.avro_type()
            entry: dict[str, Any] = {"name": c.name, "doc": c.doc}
            if c.required:
                entry["type"] = avro
            else:
                entry["type"] = ["null", avro]
                entry["default"] = None
            fields.append(entry)
        return {
            "type": "record",
            "name": self.name,
            "namespace": AVRO_NAMESPACE,
            "doc": self.doc,
            "fields": fields,
        }

    def iceberg_schema(self) -> Schema:
        """The Iceberg form, with field ids 1..n for columns and nested ids after them."""
        next_id = len(self.columns) + 1
        fields = []
        for field_id, c in enumerate(self.columns, start=1):
            iceberg_type, next_id = c.iceberg_type(next_id)
            fields.append(it.NestedField(field_id, c.name, iceberg_type, required=c.required, doc=c.doc))
        return Schema(*fields)
