"""Record declarations and their Arrow, Avro and Iceberg forms."""

from k2.schemas.avsc import load_avro
from k2.schemas.market import DIVIDEND, INSTRUMENT, QUOTE, RECORDS, SPLIT, TRADE
from k2.schemas.record import Column, Kind, Record

__all__ = [
    "DIVIDEND",
    "INSTRUMENT",
    "QUOTE",
    "RECORDS",
    "SPLIT",
    "TRADE",
    "Column",
    "Kind",
    "Record",
    "load_avro",
]
