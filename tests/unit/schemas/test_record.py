import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
from pyiceberg.io.pyarrow import schema_to_pyarrow

from k2.schemas import RECORDS, Record, load_avro
from k2.schemas.avsc import avsc_name, render_avsc

AVRO_DIR = Path(__file__).resolve().parents[3] / "src" / "k2" / "schemas" / "avro"


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.name)
def test_shipped_avsc_matches_the_declaration(record: Record) -> None:
    """The .avsc files are generated from the one declaration and must not drift (make schemas)."""
    assert (AVRO_DIR / avsc_name(record)).read_text() == render_avsc(record)


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.name)
def test_three_forms_agree_on_names_and_optionality(record: Record) -> None:
    """Arrow, Avro and Iceberg forms list the same fields in the same order with the same nullability."""
    arrow = record.arrow_schema()
    iceberg = record.iceberg_schema()
    avro = load_avro(record.name, record.version)
    assert arrow.names == [f.name for f in iceberg.fields] == [f["name"] for f in avro["fields"]]
    for field, nested, avro_field in zip(arrow, iceberg.fields, avro["fields"], strict=True):
        assert field.nullable == (not nested.required)
        assert isinstance(avro_field["type"], list) == field.nullable


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.name)
def test_iceberg_form_converts_to_the_arrow_form(record: Record) -> None:
    """pyiceberg's own Arrow conversion of the Iceberg schema has the declared Arrow types
    (pyiceberg picks the large_ variants of strings and lists, which hold the same values)."""
    converted = schema_to_pyarrow(record.iceberg_schema(), include_field_ids=False)
    for declared, derived in zip(record.arrow_schema(), converted, strict=True):
        assert str(declared.type) == str(derived.type).replace("large_", ""), declared.name


def test_trade_avro_round_trips_a_record() -> None:
    """A v2 trade with decimals, micros timestamps, enum, list and map encodes and decodes with Avro."""
    schema = fastavro.parse_schema(load_avro("trade", 2))
    when = datetime(2014, 3, 9, 23, 0, 0, 123456, tzinfo=UTC)
    record = {
        "message_id": "m",
        "trade_id": "ASX-BHP-20140310-1",
        "symbol": "BHP",
        "exchange": "ASX",
        "asset_class": "equities",
        "timestamp": when,
        "price": Decimal("36.66700000"),
        "quantity": Decimal("100.00000000"),
        "currency": "AUD",
        "side": "UNKNOWN",
        "trade_conditions": ["3"],
        "source_sequence": 1,
        "ingestion_timestamp": when,
        "platform_sequence": None,
        "vendor_data": {"venue": "X"},
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    buffer.seek(0)
    assert fastavro.schemaless_reader(buffer, schema, None) == record
